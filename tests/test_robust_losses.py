"""Losses as a component (issue #22 part 1): the ℓ1 / Huber residual maps through every
ensemble's factored call and every kernel, against the dense formula; the sub-gradient
against finite differences; ℓ2 untouched."""

from __future__ import annotations

import math

import numpy as np
import pytest

import matsense as ms
from matsense.losses import Loss, ResidualMap, check_loss
from matsense.operators import completion as completion_mod
from matsense.operators.kernels import numba_kernel

L1 = "l1"


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _problems():
    """One small problem per ensemble (and the packed symmetric operator)."""
    sym = ms.Problem.gaussian(9, r=2, m=150, symmetric=True, seed=3)
    return {
        "gaussian": ms.Problem.gaussian(9, 7, r=2, m=150, seed=1),
        "symmetric-operator": sym.with_symmetric_operator(),
        "rank-one": ms.Problem.rank_one(9, n2=7, r=2, m=200, seed=2),
        "rank-one-symmetric": ms.Problem.rank_one(9, r=2, m=200, symmetric=True, seed=4),
        "completion": ms.Problem.completion(12, n2=10, r=2, m=90, seed=5),
    }


def _dense(op, y, F, G, rmap):
    """r, D G, Dᵀ F from the (m, n1·n2) matrix of 𝒜 (the definition)."""
    n1, n2 = op.shape
    A = np.asarray(op.as_matrix())
    r = (F @ G.mT).reshape(F.shape[0], -1) @ A.T - y
    D = (rmap(r) @ A).reshape(F.shape[0], n1, n2)
    return r, D @ G, D.mT @ F


def _factors(p, k, B, seed=0, same=False):
    rng = np.random.default_rng(seed)
    n1, n2 = p.shape
    F = rng.standard_normal((B, n1, k))
    return F, (F if same else rng.standard_normal((B, n2, k)))


MAPS = [ResidualMap("sign", 1 / math.sqrt(150)), ResidualMap("clip", 1.0, 0.3)]


@pytest.mark.parametrize("kernel", ["auto", "numba", "numpy", "two-pass"])
@pytest.mark.parametrize("rmap", MAPS, ids=["l1", "huber"])
@pytest.mark.parametrize("B", [1, 2, 3, 5])
def test_every_ensemble_with_a_map_equals_the_dense_formula(kernel, rmap, B, monkeypatch):
    monkeypatch.setenv("MATSENSE_KERNEL", kernel)
    for name, p in _problems().items():
        same = name in ("symmetric-operator", "rank-one-symmetric")
        F, G = _factors(p, 3, B, seed=B, same=same)
        got = p.operator.residual_and_grads(F, G, p.y, rmap)
        ref = _dense(p.operator, p.y, F, G, rmap)
        for a, b in zip(got, ref):
            assert a.shape == b.shape
            assert _rel(a, b) <= 1e-12, (name, kernel)
        r, S = (
            p.operator.residual_and_adjoint(F @ G.mT, p.y, rmap)
            if name != "rank-one"
            else (None, None)
        )
        if r is not None:
            assert _rel(S @ G, ref[1]) <= 1e-12, name


def test_the_residual_returned_is_the_plain_one_and_sign_zero_is_zero(monkeypatch):
    monkeypatch.setenv("MATSENSE_KERNEL", "numba")  # not the planner's pick per call
    p = ms.Problem.gaussian(6, r=1, m=40, seed=0)
    F, G = _factors(p, 1, 1)
    r, _, _ = p.operator.residual_and_grads(F, G, p.y, MAPS[0])
    r2, _, _ = p.operator.residual_and_grads(F, G, p.y)
    assert np.array_equal(r, r2)
    phi = ResidualMap("sign", 0.5)
    assert phi(np.array([[-2.0, 0.0, 3.0]])).tolist() == [[-0.5, 0.0, 0.5]]
    # the compiled kernel: residuals that are exactly 0 add nothing to S
    A = np.eye(8)
    y = np.zeros(8)
    r, s = numba_kernel.fused_numba(A, np.zeros((1, 8)), y, 1, phi)
    assert not r.any() and not s.any()


@pytest.mark.parametrize("tile", [64, 4096])
@pytest.mark.parametrize("k", [1, 3, 8, 10, 17])
def test_completion_kernel_with_a_map_every_thread_count(tile, k, monkeypatch):
    """Many column tiles (the threaded wavefront) and one; kp unrolled and the loop."""
    monkeypatch.setattr(completion_mod, "TILE_COLUMNS", tile)
    rng = np.random.default_rng(k)
    n1, n2, m = 120, 400, 6000
    flat = rng.choice(n1 * n2, m, replace=False)
    p = ms.Problem.from_entries(flat // n2, flat % n2, rng.standard_normal(m), (n1, n2))
    F, G = _factors(p, k, 2, seed=k)
    rmap = ResidualMap("sign", 1 / math.sqrt(m))
    ref = _dense(p.operator, p.y, F, G, rmap)
    runs = []
    for threads in (1, 2):
        monkeypatch.setenv("MATSENSE_THREADS", str(threads))
        monkeypatch.setattr(
            completion_mod.EntryOperator,
            "_kernel_threads",
            lambda self, t=threads: t if len(self._tile_starts()) > 2 else 1,
        )
        runs.append(p.operator.residual_and_grads(F, G, p.y, rmap))
        for a, b in zip(runs[-1], ref):
            assert _rel(a, b) <= 1e-12
    for a, b in zip(*runs):
        assert np.array_equal(a, b)  # bitwise independent of the thread count


def test_completion_float32_and_sparse_fallback_with_a_map(monkeypatch):
    p = ms.Problem.completion(12, n2=10, r=2, m=90, seed=5)
    F, G = _factors(p, 3, 2)
    rmap = ResidualMap("sign", 1 / math.sqrt(90))
    ref = _dense(p.operator, p.y, F, G, rmap)
    got = p.operator.residual_and_grads(
        F.astype(np.float32), G.astype(np.float32), p.y.astype(np.float32), rmap
    )
    assert all(_rel(a, b) <= 1e-5 for a, b in zip(got, ref))
    monkeypatch.setattr(completion_mod, "_entries_kernel", lambda: None)
    got = p.operator.residual_and_grads(F, G, p.y, rmap)
    assert all(_rel(a, b) <= 1e-12 for a, b in zip(got, ref))


@pytest.mark.parametrize("kernel", ["numba", "numpy", "two-pass"])
def test_an_identity_map_gives_the_plain_kernels_bits(kernel, monkeypatch):
    """clip(r, −∞, ∞)·1 = r exactly: the mapped tiles and the mapped completion kernel do the
    plain kernels' arithmetic in the same order, so the bits are the same; and rmap=None is
    the plain call itself."""
    monkeypatch.setenv("MATSENSE_KERNEL", kernel)
    ident = ResidualMap("clip", 1.0, math.inf)
    for name, p in _problems().items():
        for B in (1, 3, 6):
            F, G = _factors(p, 4, B, seed=B)
            plain = p.operator.residual_and_grads(F, G, p.y)
            mapped = p.operator.residual_and_grads(F, G, p.y, ident)
            for a, b in zip(plain, mapped):
                assert np.array_equal(a, b), (name, B)
            for a, b in zip(plain, p.operator.residual_and_grads(F, G, p.y, None)):
                assert np.array_equal(a, b)


def test_torch_two_pass_with_a_map():
    torch = pytest.importorskip("torch")
    p = ms.Problem.gaussian(8, r=2, m=100, seed=0)
    F, G = _factors(p, 2, 2)
    rmap = MAPS[0]
    ref = _dense(p.operator, p.y, F, G, rmap)
    pt = p.to("torch")
    got = pt.operator.residual_and_grads(torch.from_numpy(F), torch.from_numpy(G), pt.y, rmap)
    assert all(_rel(a.numpy(), b) <= 1e-12 for a, b in zip(got, ref))


# ---------------------------------------------------------------- the sub-gradient
@pytest.mark.parametrize("name", ["l1", "huber"])
@pytest.mark.parametrize("ensemble", ["gaussian", "rank-one", "completion"])
def test_subgradient_matches_a_finite_difference_away_from_kinks(name, ensemble):
    p = _problems()[ensemble]
    loss = Loss(name, delta=0.05)
    rmap = loss.rmap(p.m)
    F, G = _factors(p, 3, 1, seed=11)
    dF, dG = _factors(p, 3, 1, seed=12)

    def f(t):
        r, _, _ = p.operator.residual_and_grads(F + t * dF, G + t * dG, p.y)
        return float(loss.value(r)[0]), r

    eps = 1e-6
    (fp, rp), (fm, rm) = f(eps), f(-eps)
    r0 = f(0.0)[1]
    assert np.array_equal(np.sign(rp), np.sign(r0)) and np.array_equal(np.sign(rm), np.sign(r0))
    if name == "huber":  # no residual crosses ±δ either
        assert np.array_equal(np.abs(rp) > 0.05, np.abs(rm) > 0.05)
    _, DG, DtF = p.operator.residual_and_grads(F, G, p.y, rmap)
    predicted = float(np.sum(DG * dF) + np.sum(DtF * dG))
    assert abs((fp - fm) / (2 * eps) - predicted) <= 1e-6 * max(1.0, abs(predicted))


def test_loss_values():
    r = np.array([[3.0, -4.0, 0.0, 0.5]])
    assert Loss("l2").value(r)[0] == pytest.approx(12.625)
    assert Loss("l1").value(r)[0] == pytest.approx(7.5 / 2)
    assert Loss("huber", delta=1.0).value(r)[0] == pytest.approx(2.5 + 3.5 + 0 + 0.125)
    assert Loss("l2").rmap(4) is None


@pytest.mark.parametrize("bad", ["l3", "L1", None, 1])
def test_unknown_loss_is_one_clear_error(bad):
    with pytest.raises(ValueError, match=r"loss must be one of l2, l1, huber, got"):
        check_loss("loss", bad)
    with pytest.raises(ValueError, match="huber_delta must be a finite number > 0"):
        Loss("huber", delta=-1.0)


def test_bench_loss_tiny(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_loss.py"
    out = tmp_path / "loss.json"
    proc = subprocess.run(
        [sys.executable, str(script), "--tiny", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "l1/l2" in proc.stdout and "last-level cache" in proc.stdout
    data = json.loads(out.read_text())
    assert data["host"]["llc_bytes"] > 0 and data["host"]["gemm_gflops_float64"] > 0
    kinds = {(row["case"].split()[0], row["kernel"]) for row in data["rows"]}
    assert {
        ("gaussian", "numba"),
        ("gaussian", "two-pass"),
        ("completion", "auto"),
        ("rank-one", "auto"),
    } <= kinds
    for row in data["rows"]:
        assert np.isclose(row["l1_over_l2"], row["seconds"]["l1"] / row["seconds"]["l2"])
