"""Core identities and driver behaviour (conventions: docs/conventions.md).

Symbols follow the paper: F, G, X factors; S = 𝒜*(𝒜(P) − y); eta the step size η;
Δ = FᵀF − GᵀG the imbalance.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import matsense as ms
from matsense.diagnostics import imbalance
from matsense.methods import rebalance

ETA = 0.3


@pytest.fixture(scope="module")
def rect_problem():
    """A small non-square problem with its raw measurement matrices."""
    rng = np.random.default_rng(11)
    m, n1, n2, r = 90, 6, 5, 2
    A = rng.standard_normal((m, n1, n2))
    M_star = rng.standard_normal((n1, r)) @ rng.standard_normal((r, n2))
    M_star /= np.linalg.norm(M_star, 2)  # σ_1 = 1, so η = 0.3 is stable
    y = np.einsum("mij,ij->m", A, M_star) / math.sqrt(m)
    return ms.Problem.from_arrays(A, y, M_star), A


@pytest.fixture(scope="module")
def small():
    """The workhorse problem for dynamics: 10×10, rank 2, well conditioned."""
    return ms.Problem.gaussian(10, r=2, m=200, singular_values=[1, 0.5], seed=0)


@pytest.fixture(scope="module")
def small_psd():
    return ms.Problem.gaussian(8, r=2, m=200, singular_values=[1, 0.5], symmetric=True, seed=1)


def _loss(problem, factors):
    """f = ½‖𝒜(FGᵀ) − y‖² for (F, G), ¼‖𝒜(XXᵀ) − y‖² for (X,)."""
    P = ms.methods.product(tuple(f[None] for f in factors))
    r, _ = problem.residual_and_adjoint(P)
    return float(np.sum(r**2)) / (2 if len(factors) == 2 else 4)


def _gd_direction(problem, factors, eta=ETA):
    """The GD update direction (X − X_new)/η of one ``GD.step``, i.e. the gradient."""
    method = ms.GD(step_size=eta)
    state = method.init(problem, tuple(f[None] for f in factors))
    new, _ = method.step(problem, state)
    return tuple((f - g[0]) / eta for f, g in zip(factors, method.factors(new)))


def _taylor_slope(problem, factors, direction, grad):
    """Slope of log|f(x + h d) − f(x) − h<∇f, d>| against log h (2 for a correct gradient)."""
    f0 = _loss(problem, factors)
    dot = sum(float(np.sum(g * d)) for g, d in zip(grad, direction))
    hs = np.logspace(-1, -3.5, 8)
    rem = [
        abs(_loss(problem, tuple(x + h * d for x, d in zip(factors, direction))) - f0 - h * dot)
        for h in hs
    ]
    return np.polyfit(np.log(hs), np.log(rem), 1)[0]


# ------------------------------------------------------------------ operator
def test_adjoint_identity(rect_problem):
    problem, _ = rect_problem
    op = problem.operator
    rng = np.random.default_rng(0)
    M = rng.standard_normal((3, *op.shape))
    z = rng.standard_normal((3, op.m))
    lhs = np.sum(op.apply(M) * z, axis=1)
    rhs = np.sum(M * op.adjoint(z), axis=(1, 2))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_residual_and_adjoint_match_dense_formula(rect_problem):
    problem, A = rect_problem
    m = A.shape[0]
    rng = np.random.default_rng(1)
    P = rng.standard_normal((2, *problem.shape))
    r, S = problem.residual_and_adjoint(P)
    r_dense = np.einsum("mij,bij->bm", A, P) / math.sqrt(m) - problem.y
    S_dense = np.einsum("bm,mij->bij", r_dense, A) / math.sqrt(m)
    np.testing.assert_allclose(r, r_dense, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(S, S_dense, rtol=1e-12, atol=1e-12)


def test_isotropic_limit_of_the_symmetric_step():
    """With many measurements 𝒜*𝒜 ≈ I: the GD direction tends to (XXᵀ − M*)X."""
    diffs = []
    for m in (500, 5000):
        problem = ms.Problem.gaussian(5, r=1, m=m, symmetric=True, seed=2)
        X = np.random.default_rng(3).standard_normal((5, 2)) * 0.5
        (D,) = _gd_direction(problem, (X,))
        ideal = (X @ X.T - problem.M_star) @ X
        diffs.append(np.linalg.norm(D - ideal) / np.linalg.norm(ideal))
    assert diffs[1] < diffs[0]
    assert diffs[1] < 0.2


# ----------------------------------------------------------------- gradients
def test_asymmetric_gradient_taylor_slope_2(rect_problem):
    problem, _ = rect_problem
    rng = np.random.default_rng(4)
    n1, n2 = problem.shape
    F, G = rng.standard_normal((n1, 3)), rng.standard_normal((n2, 3))
    grad = _gd_direction(problem, (F, G))
    # ∇_F f = S G, ∇_G f = Sᵀ F
    _, S = problem.residual_and_adjoint((F @ G.T)[None])
    np.testing.assert_allclose(grad[0], S[0] @ G, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad[1], S[0].T @ F, rtol=1e-10, atol=1e-12)
    direction = (rng.standard_normal(F.shape), rng.standard_normal(G.shape))
    assert _taylor_slope(problem, (F, G), direction, grad) == pytest.approx(2, abs=0.1)


def test_symmetric_gradient_taylor_slope_2(small_psd):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((small_psd.shape[0], 3))
    grad = _gd_direction(small_psd, (X,))
    _, S = small_psd.residual_and_adjoint((X @ X.T)[None])
    np.testing.assert_allclose(grad[0], (S[0] + S[0].T) / 2 @ X, rtol=1e-10, atol=1e-12)
    direction = (rng.standard_normal(X.shape),)
    assert _taylor_slope(small_psd, (X,), direction, grad) == pytest.approx(2, abs=0.1)


def test_wrong_gradient_fails_the_taylor_check(small_psd):
    """The check has teeth: the unsymmetrized S X (half the gradient) gives slope 1."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((small_psd.shape[0], 3))
    (grad,) = _gd_direction(small_psd, (X,))
    direction = (rng.standard_normal(X.shape),)
    assert _taylor_slope(small_psd, (X,), direction, (2 * grad,)) == pytest.approx(1, abs=0.1)


# ----------------------------------------------------------------- imbalance
def test_one_gd_step_changes_imbalance_by_exactly_eta_squared_term(rect_problem):
    problem, _ = rect_problem
    rng = np.random.default_rng(7)
    n1, n2 = problem.shape
    F, G = 0.5 * rng.standard_normal((n1, 3)), 0.5 * rng.standard_normal((n2, 3))
    method = ms.GD(step_size=ETA)
    new, _ = method.step(problem, method.init(problem, (F[None], G[None])))
    F1, G1 = new.F[0], new.G[0]
    _, S = problem.residual_and_adjoint((F @ G.T)[None])
    S = S[0]
    lhs = imbalance(F1, G1) - imbalance(F, G)
    rhs = ETA**2 * (G.T @ S.T @ S @ G - F.T @ S @ S.T @ F)
    assert np.abs(rhs).max() > 1e-3  # the identity is not trivially 0 = 0
    np.testing.assert_allclose(lhs, rhs, atol=1e-12)


# --------------------------------------------------------------- rebalancing
def test_rebalance_keeps_product_and_sets_singular_values_of_F():
    rng = np.random.default_rng(8)
    F, G = rng.standard_normal((3, 7, 3)), rng.standard_normal((3, 6, 3))
    beta = np.array([0.5, 1.0, 2.0])
    F1, G1 = rebalance(F, G, beta)
    P, P1 = F @ G.transpose(0, 2, 1), F1 @ G1.transpose(0, 2, 1)
    assert np.abs(P1 - P).max() <= 1e-12 * np.abs(P).max()
    np.testing.assert_allclose(
        np.linalg.svd(F1, compute_uv=False), np.repeat(beta[:, None], 3, axis=1), rtol=1e-12
    )


def test_rebalanced_gd_switches_on_tau(small):
    F0, G0 = ms.init.small_random(small, k=3, alpha=0.05, seed=1)
    tau = 1e-2
    gd = ms.run(small, ms.GD(step_size=ETA), (F0, G0), iters=250)
    reb = ms.run(small, ms.RebalancedGD(step_size=ETA, tau=tau), (F0, G0), iters=250)
    t_switch = reb.extras["switch_iteration"]
    expected = int(np.flatnonzero(gd.history["residual_norm"] <= tau * small.y_norm)[0])
    assert t_switch == expected
    # identical to plain GD up to (and including the residual at) the switch
    np.testing.assert_array_equal(
        reb.history["error"][: t_switch + 1], gd.history["error"][: t_switch + 1]
    )
    assert not np.array_equal(
        reb.history["error"][t_switch + 1 :], gd.history["error"][t_switch + 1 :]
    )
    assert reb.config["method"] == "rebalanced_gd"


def test_rebalanced_gd_switches_at_given_iteration(small):
    F0, G0 = ms.init.small_random(small, k=3, alpha=0.05, seed=1)
    reb = ms.run(small, ms.RebalancedGD(step_size=ETA, switch_at=7), (F0, G0), iters=20)
    assert reb.extras["switch_iteration"] == 7
    never = ms.run(small, ms.RebalancedGD(step_size=ETA, switch_at=50), (F0, G0), iters=20)
    assert never.extras["switch_iteration"] == -1


def test_rebalanced_gd_rejects_symmetric_init(small_psd):
    X0 = ms.init.symmetric_random(small_psd, k=2, alpha=0.05, seed=0)
    with pytest.raises(ValueError, match="F Gᵀ"):
        ms.run(small_psd, ms.RebalancedGD(), X0, iters=2)


# ------------------------------------------------------------------ batching
@pytest.mark.parametrize(
    "method", [ms.GD(step_size=ETA), ms.RebalancedGD(step_size=ETA)], ids=["gd", "rebalanced_gd"]
)
def test_batched_run_equals_runs_one_by_one(small, method):
    alphas, seeds = [0.2, 0.05, 0.01], [1, 2, 3]
    F0, G0 = ms.init.small_random(small, k=2, alpha=alphas, seed=seeds)
    assert F0.shape == (3, 10, 2)
    batch = ms.run(small, method, (F0, G0), iters=400, tol=1e-8)
    assert len(set(batch.iterations.tolist())) > 1  # they stop at different times
    for b, (a, s) in enumerate(zip(alphas, seeds)):
        init = ms.init.small_random(small, k=2, alpha=a, seed=s)
        np.testing.assert_array_equal(init[0], F0[b])
        one = ms.run(small, method, init, iters=400, tol=1e-8)
        assert one.status == batch.status[b]
        assert one.iterations == batch.iterations[b]
        for f_one, f_batch in zip(one.factors, batch.factors):
            np.testing.assert_allclose(f_one, f_batch[b], rtol=1e-9, atol=1e-13)
        for key, val in one.extras.items():
            if np.issubdtype(np.asarray(val).dtype, np.integer):  # events: exactly the same
                assert val == batch.extras[key][b]
            else:  # the switch's measurements (rounding differs between batch shapes)
                np.testing.assert_allclose(val, batch.extras[key][b], rtol=1e-9, atol=1e-15)
        rows = np.isfinite(batch.history["residual_norm"][:, b])
        np.testing.assert_array_equal(batch.history["iteration"][rows], one.history["iteration"])
        for key in ("error", "residual_norm", "imbalance_drift", "singular_values"):
            np.testing.assert_allclose(
                batch.history[key][rows, b], one.history[key], rtol=1e-8, atol=1e-14
            )


def test_batch_with_one_diverging_trajectory(small):
    F0, G0 = ms.init.small_random(small, k=2, alpha=[0.05, 30.0], seed=[1, 2])
    traj = ms.run(small, ms.GD(step_size=ETA), (F0, G0), iters=100)
    assert traj.status.tolist() == ["max_iters", "diverged"]
    assert all(np.isfinite(f).all() for f in traj.factors)
    for key in ("error", "residual_norm"):
        col = traj.history[key][:, 1]
        recorded = col[~np.isnan(col)]
        assert recorded.size >= 1 and np.isfinite(recorded).all()


# -------------------------------------------------------------- determinism
def test_same_seed_gives_bitwise_identical_results():
    def once():
        p = ms.Problem.gaussian(8, 7, r=2, m=120, kappa=3.0, noise=1e-3, seed=42)
        init = ms.init.small_random(p, k=3, alpha=0.1, seed=9)
        return p, init, ms.run(p, ms.GD(step_size=ETA), init, iters=30)

    (p1, i1, t1), (p2, i2, t2) = once(), once()
    for a, b in [
        (p1.operator.A_flat, p2.operator.A_flat),
        (p1.y, p2.y),
        (p1.M_star, p2.M_star),
        (i1[0], i2[0]),
        (i1[1], i2[1]),
        (t1.factors[0], t2.factors[0]),
        (t1.factors[1], t2.factors[1]),
    ]:
        np.testing.assert_array_equal(a, b)
    for key in t1.history:
        if key != "time":
            np.testing.assert_array_equal(t1.history[key], t2.history[key])
    other = ms.Problem.gaussian(8, 7, r=2, m=120, kappa=3.0, noise=1e-3, seed=43)
    assert not np.array_equal(other.y, p1.y)


# -------------------------------------------------------------------- driver
def test_tol_stops_with_status_converged(small):
    init = ms.init.small_random(small, k=2, alpha=0.05, seed=1)
    free = ms.run(small, ms.GD(step_size=ETA), init, iters=300)
    traj = ms.run(small, ms.GD(step_size=ETA), init, iters=300, tol=1e-6)
    assert traj.status == "converged"
    first = int(np.flatnonzero(free.history["rel_error"] <= 1e-6)[0])
    assert traj.iterations == first
    assert traj.history["iteration"][-1] == first
    assert traj.history["rel_error"][-1] <= 1e-6
    P = traj.factors[0] @ traj.factors[1].T
    assert np.linalg.norm(P - small.M_star) / np.linalg.norm(small.M_star) <= 1e-6


def test_max_iters_status_and_full_history(small):
    init = ms.init.small_random(small, k=4, alpha=0.05, seed=1)
    traj = ms.run(small, ms.GD(step_size=ETA), init, iters=20)
    assert traj.status == "max_iters" and traj.iterations == 20
    np.testing.assert_array_equal(traj.history["iteration"], np.arange(21))
    assert traj.history["singular_values"].shape == (21, 4)
    assert traj.history["imbalance_drift"][0] == 0.0


def test_huge_step_size_diverges_with_finite_factors(small):
    init = ms.init.small_random(small, k=2, alpha=0.05, seed=1)
    traj = ms.run(small, ms.GD(step_size=50.0), init, iters=200)
    assert traj.status == "diverged"
    assert traj.iterations < 200
    assert all(np.isfinite(f).all() for f in traj.factors)
    for key in ("error", "residual_norm", "loss", "rel_error"):
        assert np.isfinite(traj.history[key]).all(), key


def test_symmetric_gd_converges_for_exact_rank(small_psd):
    X0 = ms.init.symmetric_random(small_psd, k=2, alpha=0.05, seed=0)
    traj = ms.run(small_psd, ms.GD(step_size=ETA), X0, iters=600, tol=1e-10)
    assert traj.status == "converged"
    assert len(traj.factors) == 1 and traj.factors[0].shape == (8, 2)
    assert "imbalance_drift" not in traj.history


@pytest.mark.parametrize("tol", [None, 1e-6])
def test_record_every(small, tol):
    init = ms.init.small_random(small, k=2, alpha=0.05, seed=1)
    traj = ms.run(
        small, ms.GD(step_size=ETA), init, iters=300 if tol else 23, record_every=5, tol=tol
    )
    it = traj.history["iteration"]
    if tol is None:
        np.testing.assert_array_equal(it, [0, 5, 10, 15, 20, 23])
    else:
        assert traj.status == "converged"
        assert np.all(it[:-1] % 5 == 0) and it[-1] == traj.iterations
    assert len(traj.history["error"]) == len(it)


def test_callback_can_stop_the_run(small):
    init = ms.init.small_random(small, k=2, alpha=0.05, seed=1)
    seen = []

    def stop_at_5(t, info):
        seen.append((t, set(info)))
        return t == 5

    traj = ms.run(small, ms.GD(step_size=ETA), init, iters=100, callback=stop_at_5)
    assert traj.iterations == 5
    assert [t for t, _ in seen] == list(range(6))
    assert {"residual_norm", "error"} <= seen[0][1]
    assert traj.history["iteration"][-1] == 5


def test_zero_iterations_records_the_start(small):
    init = ms.init.small_random(small, k=2, alpha=0.05, seed=1)
    traj = ms.run(small, ms.GD(step_size=ETA), init, iters=0)
    assert traj.iterations == 0 and traj.status == "max_iters"
    np.testing.assert_array_equal(traj.factors[0], init[0])
    np.testing.assert_array_equal(traj.history["iteration"], [0])


def test_unknown_ground_truth_uses_the_residual(rect_problem):
    problem, A = rect_problem
    blind = ms.Problem.from_arrays(A, problem.y)
    init = ms.init.small_random(blind, k=2, alpha=0.1, seed=0)
    traj = ms.run(blind, ms.GD(step_size=ETA), init, iters=2000, tol=1e-6)
    assert traj.status == "converged"
    assert "error" not in traj.history
    assert traj.history["residual_norm"][-1] <= 1e-6 * blind.y_norm


# ---------------------------------------------------------------- trajectory
def test_trajectory_frame_and_files(small, tmp_path):
    F0, G0 = ms.init.small_random(small, k=3, alpha=[0.1, 0.05], seed=[1, 2])
    traj = ms.run(small, ms.GD(step_size=ETA), (F0, G0), iters=300, tol=1e-5)
    df = traj.to_frame()
    assert {
        "trajectory",
        "iteration",
        "error",
        "rel_error",
        "residual_norm",
        "loss",
        "imbalance_drift",
        "sv_1",
        "sv_3",
    } <= set(df.columns)
    n_rows = [int(np.isfinite(traj.history["residual_norm"][:, b]).sum()) for b in range(2)]
    assert df.groupby("trajectory").size().tolist() == n_rows
    summary = traj.summary()
    assert [s["status"] for s in summary] == traj.status.tolist()
    for suffix, read in ((".csv", pd.read_csv), (".parquet", pd.read_parquet)):
        path = traj.save(tmp_path / f"traj{suffix}")
        back = read(path)
        assert list(back.columns) == list(df.columns)
        np.testing.assert_allclose(back.to_numpy(float), df.to_numpy(float), rtol=1e-15)
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        traj.save(tmp_path / "traj.txt")


# --------------------------------------------------------------------- rates
def test_linear_rate_recovers_an_exponential():
    t = np.arange(0, 1000)
    err = 2.0 * np.exp(-0.05 * t)
    fit = ms.rates.linear_rate(t, err)
    assert fit.value == pytest.approx(0.05, rel=1e-9)
    # window: err/err[0] from 1e-4 (t ≥ ln(1e4)/0.05 ≈ 184.2) down to 1e-12 (t ≤ 552.6)
    assert (fit.t_start, fit.t_end) == (185, 552)
    assert fit.n_points == 552 - 185 + 1
    assert fit.r2 == pytest.approx(1.0)
    assert set(fit.as_dict()) >= {"value", "t_start", "t_end", "n_points", "r2", "reason"}


def test_linear_rate_reports_why_it_cannot_fit():
    fit = ms.rates.linear_rate(np.arange(50), 1.0 / (1 + np.arange(50)))
    assert not fit.ok and "never fell below" in fit.reason


def test_power_law_recovers_one_over_t():
    t = np.arange(0, 2001)
    err = 3.0 / np.maximum(t, 1)
    fit = ms.rates.power_law(t, err)
    assert fit.value == pytest.approx(-1.0, abs=1e-9)
    assert (fit.t_start, fit.t_end) == (1000, 2000)


def test_callback_stop_records_the_stopping_iterate_with_status_stopped():
    p = ms.Problem.gaussian(10, r=2, m=200, seed=0)
    init = ms.init.small_random(p, k=2, alpha=0.1, seed=1)
    tr = ms.run(p, ms.GD(0.3), init, iters=100, record_every=10, callback=lambda t, info: t == 5)
    assert tr.status == "stopped" and tr.iterations == 5
    assert list(tr.history["iteration"]) == [0, 5]


def test_x_xt_on_a_known_asymmetric_problem_is_refused():
    p = ms.Problem.gaussian(10, r=2, m=200, seed=0)
    X0 = np.random.default_rng(0).standard_normal((10, 2)) * 0.1
    with pytest.raises(ValueError, match="can only fit a symmetric PSD M"):
        ms.run(p, ms.GD(0.3), X0, iters=3)


def test_small_numpy_operators_run_with_one_blas_thread(monkeypatch):
    from threadpoolctl import threadpool_info

    from matsense import threads

    p = ms.Problem.gaussian(8, r=1, m=50, seed=0)
    with threads.blas_threads_for(p.operator, p.y):
        blas = [d for d in threadpool_info() if d["user_api"] == "blas"]
        assert blas and all(d["num_threads"] == 1 for d in blas)
    monkeypatch.setenv("MATSENSE_BLAS_THREADS", " ")  # set but empty: the default, as unset
    with threads.blas_threads_for(p.operator, p.y):
        blas = [d for d in threadpool_info() if d["user_api"] == "blas"]
        assert blas and all(d["num_threads"] == 1 for d in blas)
    monkeypatch.setenv("MATSENSE_BLAS_THREADS", "many")
    with pytest.raises(ValueError, match="MATSENSE_BLAS_THREADS must be"):
        threads.blas_threads_for(p.operator, p.y)


# ------------------------------------------------------------ diagnostics from factors
def test_factored_error_equals_the_dense_one_and_stays_accurate_near_the_solution():
    p = ms.Problem.gaussian(20, 15, r=3, m=300, kappa=3.0, seed=0)
    assert not ms.diagnostics.Truth.of(p, np.zeros((1, 20, 3))).factored  # small: dense is cheaper
    truth = ms.diagnostics.Truth(U=p.U_star, S=p.S_star, V=p.V_star, norm=p.M_star_norm)
    assert truth.factored
    rng = np.random.default_rng(1)
    F, G = rng.standard_normal((4, 20, 5)), rng.standard_normal((4, 15, 5))
    np.testing.assert_allclose(
        truth.error((F, G)), ms.diagnostics.error(F @ G.mT, p.M_star), rtol=1e-12
    )
    # at the solution plus a perturbation of size 1e-9 · 1e-9 the error is ~1e-18 of ‖M*‖
    # in exact arithmetic; the factored formula stays at the rounding floor, not 1e-8
    root = np.sqrt(np.diag(p.S_star))
    Fs = np.c_[p.U_star * root, 1e-9 * rng.standard_normal((20, 2))][None]
    Gs = np.c_[p.V_star * root, 1e-9 * rng.standard_normal((15, 2))][None]
    assert truth.error((Fs, Gs))[0] <= 1e-15 * p.M_star_norm
    # imbalanced over-parameterized factors near the solution: F's extra column stays O(α),
    # G's is tiny; the error is |G's extra column| · O(α) and must be resolved to ~1e-16‖M*‖
    # (a formula in squared norms is off by ~1e-9 here)
    extra = rng.standard_normal((20, 2))
    for tiny in (1e-6, 1e-9, 1e-12):
        Fi = np.c_[p.U_star * root, 0.08 * extra][None]
        Gi = np.c_[p.V_star * root, tiny * rng.standard_normal((15, 2))][None]
        exact = np.linalg.norm(0.08 * extra @ Gi[0, :, 3:].T)
        assert abs(truth.error((Fi, Gi))[0] - exact) <= 1e-15 * p.M_star_norm + 1e-9 * exact
    X = rng.standard_normal((2, 20, 4))
    sym = ms.Problem.gaussian(20, r=3, m=300, symmetric=True, seed=2)
    t_sym = ms.diagnostics.Truth(U=sym.U_star, S=sym.S_star, V=sym.V_star, norm=sym.M_star_norm)
    np.testing.assert_allclose(
        t_sym.error((X,)), ms.diagnostics.error(X @ X.mT, sym.M_star), rtol=1e-12
    )


def test_record_selects_the_history_quantities(small):
    init = ms.init.small_random(small, k=2, alpha=0.05, seed=1)
    full = ms.run(small, ms.GD(step_size=ETA), init, iters=30)
    lean = ms.run(small, ms.GD(step_size=ETA), init, iters=30, record=["error"])
    assert set(lean.history) == {"iteration", "time", "residual_norm", "error"}
    np.testing.assert_array_equal(lean.history["error"], full.history["error"])
    np.testing.assert_array_equal(lean.factors[0], full.factors[0])
    with pytest.raises(ValueError, match=r"record: unknown quantities \['eror'\]"):
        ms.run(small, ms.GD(step_size=ETA), init, iters=3, record=["eror"])


def _spread_batch(problem, k, symmetric=False):
    """A batch of 5 starts of very different scales: under a tolerance they converge at
    different iterations, so the batch compacts and rows are recorded off the grid."""
    alphas = [0.3, 0.1, 0.03, 1e-3, 1e-5] if symmetric else [0.8, 0.5, 0.3, 0.2, 0.1]
    make = ms.init.symmetric_random if symmetric else ms.init.small_random
    inits = [make(problem, k, a, seed=i) for i, a in enumerate(alphas)]
    if symmetric:
        return np.stack(inits)
    return tuple(np.stack([init[j] for init in inits]) for j in range(2))


@pytest.mark.parametrize("symmetric", [False, True])
def test_history_rows_compiled_equal_numpy(symmetric, monkeypatch):
    """Every history quantity from the one compiled call per row (diagnostics.row_stats)
    equals the NumPy diagnostics' to rounding, with the same NaN pattern, statuses and
    iterations — through a tolerance stop, a compacted batch and off-grid records."""
    from matsense import diagnostics

    p = ms.Problem.gaussian(9, r=2, m=150, singular_values=[1, 0.6], symmetric=symmetric, seed=4)
    init = _spread_batch(p, 2 if symmetric else 3, symmetric)  # X Xᵀ: k = r (linear rate)
    method = ms.GD(step_size=0.25)
    fast = ms.run(p, method, init, iters=400, tol=1e-6, record_every=7)
    monkeypatch.setattr(diagnostics, "_row_kernel", lambda: None)
    slow = ms.run(p, method, init, iters=400, tol=1e-6, record_every=7)
    converged = fast.iterations[fast.status == ms.Status.CONVERGED]
    assert converged.size >= 3 and np.unique(converged).size >= 3  # the batch compacted
    np.testing.assert_array_equal(fast.iterations, slow.iterations)
    np.testing.assert_array_equal(fast.status, slow.status)
    np.testing.assert_array_equal(fast._record.recorded, slow._record.recorded)
    assert set(fast.history) == set(slow.history)
    expected = {
        "residual_norm",
        "loss",
        "error",
        "rel_error",
        "off_subspace",
        "singular_values",
    } | ({"imbalance_drift"} if not symmetric else set())
    assert expected <= set(fast.history)
    for key, val in fast.history.items():
        if key == "time":
            continue
        np.testing.assert_array_equal(np.isnan(val), np.isnan(slow.history[key]), err_msg=key)
        scale = np.nanmax(np.abs(slow.history[key]))
        np.testing.assert_allclose(
            val, slow.history[key], rtol=1e-9, atol=1e-13 * scale, err_msg=key
        )


def test_row_stats_columns_and_refusals():
    """row_stats: each column equals its NumPy diagnostic (F Gᵀ and X Xᵀ, a batch, strided
    inputs), NaN where not asked; None for what it does not take (float32, 2-D factors)."""
    from matsense import diagnostics as D

    rng = np.random.default_rng(5)
    B, n1, n2, k, r = 3, 11, 8, 4, 2
    U = np.linalg.qr(rng.standard_normal((n1, r)))[0]
    V = np.linalg.qr(rng.standard_normal((n2, r)))[0]
    M = U @ np.diag([2.0, 0.5]) @ V.T
    F = rng.standard_normal((B, k, n1)).transpose(0, 2, 1)  # not C-contiguous
    G = rng.standard_normal((B, n2, k))
    Delta0 = D.imbalance(F, G) + 0.1
    out, Delta = D.row_stats(
        (F, G), M_star=M, U=U, V=V, Delta0=Delta0, delta=True, singular_values=True
    )
    np.testing.assert_allclose(out[:, 0], D.error(F @ G.mT, M), rtol=1e-12)
    np.testing.assert_allclose(out[:, 1], D.off_subspace((F, G), U, V), rtol=1e-12)
    np.testing.assert_allclose(out[:, 2], D.imbalance_drift(F, G, Delta0), rtol=1e-12)
    np.testing.assert_allclose(Delta, D.imbalance(F, G), rtol=1e-12, atol=1e-13)
    dense_sv = np.linalg.svd(F @ G.mT, compute_uv=False)[:, :k]
    np.testing.assert_allclose(out[:, 3:], dense_sv, rtol=1e-10)
    only_err, none = D.row_stats((F, G), M_star=M)
    assert none is None and np.isnan(only_err[:, 1:]).all()
    np.testing.assert_array_equal(only_err[:, 0], out[:, 0])
    X = rng.standard_normal((B, n1, k))
    sym, _ = D.row_stats((X,), M_star=U @ U.T, U=U, singular_values=True)
    np.testing.assert_allclose(sym[:, 0], D.error(X @ X.mT, U @ U.T), rtol=1e-12)
    np.testing.assert_allclose(sym[:, 1], D.off_subspace((X,), U, U), rtol=1e-12)
    np.testing.assert_allclose(sym[:, 3:], np.linalg.svd(X, compute_uv=False) ** 2, rtol=1e-10)
    assert np.isnan(sym[:, 2]).all()
    assert D.row_stats((F.astype(np.float32), G.astype(np.float32)), M_star=M) is None
    assert D.row_stats((F[0], G[0]), M_star=M) is None
    with np.errstate(invalid="ignore"):
        G_nan = G.copy()
        G_nan[1, 0, 0] = np.nan
        err = D.row_stats((F, G_nan), M_star=M)[0][:, 0]
    assert np.isnan(err[1]) and np.isfinite(err[[0, 2]]).all()


def test_run_together_equals_the_runs_one_by_one(small):
    from matsense.methods import PrecGD, ScaledGD
    from matsense.operators import single_threaded

    init = ms.init.small_random(small, k=2, alpha=0.05, seed=1)
    wide = ms.init.small_random(small, k=3, alpha=0.05, seed=2)
    runs = [
        (ms.GD(step_size=ETA), init),
        (ScaledGD(0.5), ms.init.spectral(small, 2)),
        (PrecGD(0.5), init),
        (ms.RebalancedGD(step_size=ETA), init),
        (ms.methods.AlternatingPrecGD(), init),
        (ms.methods.SVP(0.5), ms.init.zeros(small, 2)),
        (ms.GD(step_size=ETA), wide),
        (ms.methods.SVP(0.5), ms.init.zeros(small, 3)),
    ]
    with single_threaded():
        together = ms.run_together(small, runs, 300, tol=1e-10, record_every=7)
        alone = [ms.run(small, m, x0, 300, tol=1e-10, record_every=7) for m, x0 in runs]
    for a, b in zip(together, alone):
        assert (a.status, a.iterations) == (b.status, b.iterations)
        for x, y in zip(a.factors, b.factors):
            np.testing.assert_array_equal(x, y)
        for key in b.history:
            if key != "time":
                np.testing.assert_array_equal(a.history[key], b.history[key])
        assert a.extras == b.extras


def test_run_together_shares_one_pass_across_widths_and_with_svp(small, monkeypatch):
    """On a flat operator, GD at k = 2 and k = 3 and SVP (which asks for S itself) take one
    operator pass per iteration between them, and each run is bitwise what it is alone."""
    from matsense.operators import single_threaded

    runs = [
        (ms.GD(step_size=ETA), ms.init.small_random(small, k=2, alpha=0.05, seed=1)),
        (ms.GD(step_size=ETA), ms.init.small_random(small, k=3, alpha=0.05, seed=2)),
        (ms.methods.SVP(0.5), ms.init.zeros(small, 3)),
    ]
    op = small.operator
    calls = []
    original = type(op).residual_and_adjoint

    def counting(self, P, y):
        calls.append(P.shape[0])
        return original(self, P, y)

    with single_threaded():
        alone = [ms.run(small, m, x0, 40) for m, x0 in runs]
        monkeypatch.setattr(type(op), "residual_and_adjoint", counting)
        together = ms.run_together(small, runs, 40)
    assert calls == [3] * 41  # iterates 0..40, each one stacked pass of the three runs
    for a, b in zip(together, alone):
        for x, y in zip(a.factors, b.factors):
            np.testing.assert_array_equal(x, y)
        assert a.config["kernel"] == b.config["kernel"]


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("shapes", [((3, 12, 4), (3, 12, 4)), ((2, 12, 4), (2, 9, 4))])
def test_product_singular_values_from_the_k_by_k_cores(shapes, compiled, monkeypatch):
    """σ(F Gᵀ) from the R factors of F and G — the compiled kernel (Householder R, Jacobi on
    the k × k core) or NumPy's QR and SVD — equals the SVD of the n1 × n2 product, also for
    singular values 1e-9 of the largest and for a zero column."""
    from matsense import diagnostics

    if not compiled:
        monkeypatch.setattr(diagnostics, "_row_kernel", lambda: None)
    rng = np.random.default_rng(3)
    F = rng.standard_normal(shapes[0]) * np.array([1.0, 1e-3, 1e-6, 1e-9])
    G = rng.standard_normal(shapes[1])
    F[0, :, 2] = 0.0
    sv = diagnostics.product_singular_values((F, G))
    dense = np.linalg.svd(F @ G.transpose(0, 2, 1), compute_uv=False)[:, :4]
    assert sv.shape == dense.shape and sv.dtype == F.dtype
    np.testing.assert_allclose(sv, dense, rtol=1e-9, atol=1e-14 * dense.max())
    assert np.all(np.diff(sv, axis=-1) <= 0)


@pytest.mark.parametrize("compiled", [True, False])
def test_recorded_off_subspace_and_drift_equal_the_diagnostics(compiled, monkeypatch):
    """The recorder computes off-subspace and imbalance drift in one compiled call where it can
    (diagnostics.factor_stats); the history equals the plain NumPy diagnostics to rounding."""
    from matsense import diagnostics

    if not compiled:
        monkeypatch.setattr(diagnostics, "_row_kernel", lambda: None)
    p = ms.Problem.gaussian(12, 9, r=2, m=200, seed=0)
    F0, G0 = ms.init.small_random(p, 3, 0.1, seed=1)
    traj = ms.run(p, ms.GD(step_size=0.3), (F0, G0), iters=6, record_every=3)
    F, G = (x[None] for x in traj.factors)
    Delta0 = diagnostics.imbalance(F0[None], G0[None])
    np.testing.assert_allclose(
        traj.history["imbalance_drift"][-1],
        diagnostics.imbalance_drift(F, G, Delta0)[0],
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        traj.history["off_subspace"][-1],
        diagnostics.off_subspace((F, G), p.U_star, p.V_star)[0],
        rtol=1e-12,
    )
    if compiled:  # bitwise: the recorder takes Δ₀ from the same compiled code
        Delta0 = diagnostics.factor_stats(F0[None], G0[None], p.U_star, p.V_star)[2]
        off, drift, _ = diagnostics.factor_stats(F, G, p.U_star, p.V_star, Delta0)
        assert traj.history["imbalance_drift"][0] == 0.0
        assert off[0] == traj.history["off_subspace"][-1]
        assert drift[0] == traj.history["imbalance_drift"][-1]
