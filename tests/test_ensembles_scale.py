"""Rank-one and completion at scale: torch = NumPy trajectories, diagnostics from factors,
no n1 × n2 allocation above the dense limits, the tiled entry order, matrix-free spectral init.

Speed is measured in benchmarks/bench_ensembles.py, never asserted here.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import matsense as ms
from matsense import diagnostics, init, limits
from matsense.init import small_random
from matsense.operators import completion as completion_mod


def _rank_one(**kw):
    return ms.Problem.rank_one(24, r=2, m=700, seed=3, **kw)


def _completion(**kw):
    return ms.Problem.completion(40, n2=36, r=2, m=700, seed=3, **kw)


def _relmax(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ----------------------------------------------------------------- torch backend
@pytest.mark.parametrize("builder", [_rank_one, _completion])
def test_torch_cpu_trajectory_equals_numpy(builder):
    torch = pytest.importorskip("torch")
    p = builder()
    pt = p.to("torch", "cpu")
    assert isinstance(pt.y, torch.Tensor)
    op = pt.operator
    arrays = [op.a, op.b] if hasattr(op, "a") else [op.rows, op.cols]
    assert all(isinstance(a, torch.Tensor) for a in arrays)
    F0, G0 = small_random(p, 3, 0.05, normalization="sqrt_n", seed=2)
    ref = ms.run(p, ms.GD(0.4), (F0, G0), iters=150, record_every=10)
    got = ms.run(pt, ms.GD(0.4), (F0, G0), iters=150, record_every=10)
    for key in ("residual_norm", "error", "rel_error", "off_subspace", "imbalance_drift"):
        assert _relmax(got.history[key], ref.history[key]) <= 1e-10, key
    for a, b in zip(got.factors, ref.factors):
        assert _relmax(a.numpy(), b) <= 1e-10
    assert ref.history["rel_error"][-1] < 0.5 * ref.history["rel_error"][0]  # it moved


@pytest.mark.parametrize(
    "builder",
    [
        lambda: ms.Problem.rank_one(20, r=2, m=600, symmetric=True, seed=1),
        lambda: ms.Problem.completion(30, r=2, m=600, symmetric=True, seed=1),
    ],
)
def test_torch_cpu_symmetric_trajectory_equals_numpy(builder):
    """X Xᵀ on covariance sensing (b_i = a_i, stored once) and on symmetric completion."""
    pytest.importorskip("torch")
    p = builder()
    X0 = init.symmetric_random(p, 3, 0.05, normalization="sqrt_n", seed=2)
    ref = ms.run(p, ms.GD(0.1), X0, iters=150, record_every=10)
    got = ms.run(p.to("torch", "cpu"), ms.GD(0.1), X0, iters=150, record_every=10)
    for key in ("residual_norm", "error", "off_subspace"):
        assert _relmax(got.history[key], ref.history[key]) <= 1e-10, key
    assert _relmax(got.factors[0].numpy(), ref.factors[0]) <= 1e-10
    assert ref.history["rel_error"][-1] < 0.5 * ref.history["rel_error"][0]


def test_torch_completion_tiled_order(monkeypatch):
    """The chunked torch path on a problem stored in several column tiles."""
    pytest.importorskip("torch")
    monkeypatch.setattr(completion_mod, "TILE_COLUMNS", 8)
    p = _completion()
    assert not np.all(np.diff(p.operator.rows) >= 0)  # really tiled
    F0, G0 = small_random(p, 3, 0.05, normalization="sqrt_n", seed=2)
    ref = ms.run(p, ms.GD(0.4), (F0, G0), iters=60, record_every=10)
    got = ms.run(p.to("torch", "cpu"), ms.GD(0.4), (F0, G0), iters=60, record_every=10)
    assert _relmax(got.history["error"], ref.history["error"]) <= 1e-10


def test_to_keeps_the_factored_truth():
    torch = pytest.importorskip("torch")
    p = ms.Problem.completion(2100, r=2, m=30000, seed=0)  # n1·n2 > DENSE_TRUTH_LIMIT
    assert p.M_star is None and p.S_star is not None
    pt = p.to("torch", "cpu")
    assert pt.M_star is None and pt.S_star is not None and pt.M_star_norm == p.M_star_norm
    truth = diagnostics.Truth.of(pt, torch.zeros(1, dtype=torch.float64))
    assert truth.factored and isinstance(truth.U, torch.Tensor)
    F0, G0 = small_random(p, 2, 0.01, normalization="sqrt_n", seed=0)
    ref = ms.run(p, ms.GD(0.5), (F0, G0), iters=20, record_every=5)
    got = ms.run(pt, ms.GD(0.5), (F0, G0), iters=20, record_every=5)
    assert _relmax(got.history["rel_error"], ref.history["rel_error"]) <= 1e-10


# --------------------------------------------------------- diagnostics from factors
@pytest.mark.parametrize("builder", [_rank_one, _completion])
def test_recorded_diagnostics_from_factors_equal_dense(builder):
    """The same run recorded with the dense M* and with only its factors."""
    p = builder()
    assert p.M_star is not None and p.S_star is not None
    factored = p.replace(M_star=None)
    F0, G0 = small_random(p, 3, 0.05, normalization="sqrt_n", seed=4)
    a = ms.run(p, ms.GD(0.4), (F0, G0), iters=200, record_every=20)
    b = ms.run(factored, ms.GD(0.4), (F0, G0), iters=200, record_every=20)
    assert diagnostics.Truth.of(factored, F0).factored
    assert not diagnostics.Truth.of(p, F0).factored
    for key in ("error", "rel_error", "off_subspace", "singular_values"):
        assert _relmax(b.history[key], a.history[key]) <= 1e-12, key


@pytest.mark.parametrize("builder", [_rank_one, _completion])
def test_factored_error_equals_dense_formula(builder):
    p = builder()
    U, S, Vt = p.U_star, p.S_star, p.V_star
    truth = diagnostics.Truth(U=U, S=S, V=Vt, dense=None, norm=p.M_star_norm)
    assert truth.factored
    rng = np.random.default_rng(0)
    F = rng.standard_normal((4, p.shape[0], 3)) * 0.3
    G = rng.standard_normal((4, p.shape[1], 3)) * 0.3
    dense = diagnostics.error(F @ G.mT, p.M_star)
    assert _relmax(truth.error((F, G)), dense) <= 1e-12


@pytest.mark.parametrize("builder", [_rank_one, _completion])
def test_factored_error_accurate_at_1e_15(builder):
    """Near the solution (‖FGᵀ − M*‖ ~ 1e-15‖M*‖) the factored error keeps its digits:
    compared with the error computed in extended precision."""
    p = builder()
    U, S, Vb = p.U_star, p.S_star, p.V_star
    root = np.sqrt(np.diag(S))
    rng = np.random.default_rng(1)
    truth = diagnostics.Truth(U=U, S=S, V=Vb, dense=None, norm=p.M_star_norm)
    ld = np.longdouble
    M_ld = (U.astype(ld) * np.diag(S).astype(ld)) @ Vb.T.astype(ld)
    for delta in (1e-13, 1e-14, 1e-15):
        F = U * root + delta * rng.standard_normal(U.shape)
        G = Vb * root
        exact = np.sqrt(np.sum((F.astype(ld) @ G.T.astype(ld) - M_ld) ** 2))
        got = float(truth.error((F[None], G[None]))[0])
        assert abs(got - float(exact)) <= 0.05 * float(exact) + 1e-17 * p.M_star_norm, delta
        assert float(exact) < 1e-12 * p.M_star_norm


# -------------------------------------------------------- above the dense limits
def test_large_completion_never_forms_n1_by_n2():
    n, m = 20000, 200_000  # n1·n2 = 4·10⁸: one dense float64 matrix would be 3.2 GB
    tracemalloc.start()
    try:
        p = ms.Problem.completion(n, r=3, m=m, seed=0)
        assert p.M_star is None and p.S_star is not None
        F0, G0 = small_random(p, 3, 1e-3, normalization="sqrt_n", seed=0)
        traj = ms.run(p, ms.GD(0.5), (F0, G0), iters=5, record_every=1)
        X0 = init.spectral(p, 3)  # matrix-free (svds) above the dense limit
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20, peak  # O(m + n k): a few tens of MB, never 3.2 GB
    assert traj.history["rel_error"].shape == (6,)
    assert np.all(np.isfinite(traj.history["rel_error"]))
    assert X0[0].shape == (n, 3)
    with pytest.raises(ValueError, match="n1 × n2"):
        p.operator.adjoint(p.y[None])
    with pytest.raises(ValueError, match="n1 × n2"):
        p.dense_M_star()


# ------------------------------------------------------------- the tiled order
def test_tiled_order_gives_the_row_major_results_bitwise(monkeypatch):
    """The stored (tile, row, column) order changes the layout, not the numbers: r up to the
    permutation, S G and Sᵀ F bitwise those of the row-major order."""
    rng = np.random.default_rng(5)
    n1, n2, m = 30, 100, 900
    flat = rng.choice(n1 * n2, m, replace=False)
    rows, cols, vals = flat // n2, flat % n2, rng.standard_normal(m)
    monkeypatch.setattr(completion_mod, "TILE_COLUMNS", 8)
    tiled = ms.Problem.from_entries(rows, cols, vals, (n1, n2))
    monkeypatch.setattr(completion_mod, "TILE_COLUMNS", 4096)
    plain = ms.Problem.from_entries(rows, cols, vals, (n1, n2))
    assert np.all(np.diff(plain.operator.rows) >= 0)
    assert not np.all(np.diff(tiled.operator.rows) >= 0)
    # y in the operator's order: operator.order maps the user's order to it
    for q in (tiled, plain):
        np.testing.assert_array_equal(q.y, q.operator.scale * vals[q.operator.order])
    F = rng.standard_normal((2, n1, 4))
    G = rng.standard_normal((2, n2, 4))
    r_t, SG_t, StF_t = tiled.residual_and_grads(F, G)
    r_p, SG_p, StF_p = plain.residual_and_grads(F, G)
    key_t = tiled.operator.rows * n2 + tiled.operator.cols
    key_p = plain.operator.rows * n2 + plain.operator.cols
    np.testing.assert_array_equal(r_t[:, np.argsort(key_t)], r_p[:, np.argsort(key_p)])
    np.testing.assert_array_equal(SG_t, SG_p)
    np.testing.assert_array_equal(StF_t, StF_p)
    # the CSR single calls on the tiled storage
    S = plain.operator.adjoint(r_p)
    np.testing.assert_allclose(tiled.operator.adjoint_matmul(r_t, G), S @ G, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        tiled.operator.adjoint_rmatmul(r_t, F), S.mT @ F, rtol=1e-12, atol=1e-12
    )


# ------------------------------------------------------- matrix-free spectral init
@pytest.mark.parametrize(
    "builder",
    [
        lambda: ms.Problem.gaussian(20, r=2, m=300, seed=0),
        _rank_one,
        _completion,
        lambda: ms.Problem.completion(30, r=2, m=600, symmetric=True, seed=2),
    ],
)
def test_spectral_matrix_free_equals_dense(builder, monkeypatch):
    p = builder()
    F, G = init.spectral(p, 3)
    Fm, Gm = init.spectral(p, 3, matrix_free=True)
    assert _relmax(Fm @ Gm.T, F @ G.T) <= 1e-10
    np.testing.assert_allclose(np.abs(Fm), np.abs(F), atol=1e-10)  # vectors up to sign
    # the default switches at the operators' dense limit
    monkeypatch.setattr(limits, "DENSE", limits.DENSE.replace(operator=10))
    Fd, Gd = init.spectral(p, 3)
    assert _relmax(Fd @ Gd.T, F @ G.T) <= 1e-10
    if p.symmetric:
        monkeypatch.undo()
        X = init.spectral_symmetric(p, 3)
        Xm = init.spectral_symmetric(p, 3, matrix_free=True)
        assert _relmax(Xm @ Xm.T, X @ X.T) <= 1e-10


def test_spectral_matrix_free_validates():
    with pytest.raises(ValueError, match="matrix_free"):
        init.spectral(_completion(), 2, matrix_free="yes")
