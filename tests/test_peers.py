"""Peer methods (docs/methods.md): ScaledGD, ScaledGD(λ), PrecGD, alternating preconditioned GD,
SVP, nuclear-norm minimization, and the spectral initialization.

Every update rule is checked against an independent dense NumPy implementation
written here from the equations (explicit m × n1·n2 matrix of 𝒜, np.linalg.inv /
pinv / svd), never through the package's helpers.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import matsense as ms
from matsense import GD, Problem, RebalancedGD, init, run
from matsense.config import RunConfig
from matsense.methods import (
    METHODS,
    SVP,
    AlternatingPrecGD,
    PrecGD,
    ScaledGD,
    ScaledGDLambda,
    get_method,
)


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def asym():
    return Problem.gaussian(12, 10, r=2, m=300, kappa=2.0, seed=3)


@pytest.fixture(scope="module")
def psd():
    return Problem.gaussian(12, r=2, m=300, kappa=2.0, symmetric=True, seed=4)


def dense(problem):
    """(A, y, n1, n2) with 𝒜(M) = A @ vec_C(M)."""
    A = np.asarray(problem.operator.as_matrix())
    return A, np.asarray(problem.y), *problem.shape


def dense_S(problem, P):
    """r = 𝒜(P) − y and S = 𝒜*(r), densely."""
    A, y, n1, n2 = dense(problem)
    r = A @ P.reshape(-1) - y
    return r, (A.T @ r).reshape(n1, n2)


def rand_factors(problem, k, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    n1, n2 = problem.shape
    return scale * rng.standard_normal((n1, k)), scale * rng.standard_normal((n2, k))


def rand_X(problem, k, seed=0, scale=0.3):
    return scale * np.random.default_rng(seed).standard_normal((problem.shape[0], k))


def one_step(problem, method, factors):
    """One step through the method's own init/step on a batch of one; returns (factors, rnorm)."""
    f = tuple(np.asarray(x)[None] for x in factors)
    state, rnorm = method.step(problem, method.init(problem, f))
    return tuple(x[0] for x in method.factors(state)), float(np.asarray(rnorm)[0])


# --------------------------------------------------------- dense references
def ref_scaled_asym(problem, F, G, eta, lam=0.0):
    r, S = dense_S(problem, F @ G.T)
    k = F.shape[1]
    Fn = F - eta * S @ G @ np.linalg.inv(G.T @ G + lam * np.eye(k))
    Gn = G - eta * S.T @ F @ np.linalg.inv(F.T @ F + lam * np.eye(k))
    return (Fn, Gn), np.linalg.norm(r)


def ref_scaled_sym(problem, X, eta, lam=0.0):
    r, S = dense_S(problem, X @ X.T)
    k = X.shape[1]
    grad = 0.5 * (S + S.T) @ X  # ∇ of ¼‖𝒜(XXᵀ) − y‖²
    return (X - eta * grad @ np.linalg.inv(X.T @ X + lam * np.eye(k)),), np.linalg.norm(r)


def ref_apgd(problem, F, G, eta):
    r, S = dense_S(problem, F @ G.T)
    F = F - eta * S @ G @ np.linalg.pinv(G.T @ G)
    _, S2 = dense_S(problem, F @ G.T)
    G = G - eta * S2.T @ F @ np.linalg.pinv(F.T @ F)
    return (F, G), np.linalg.norm(r)


def ref_svp(problem, M, eta, k):
    r, S = dense_S(problem, M)
    U, s, Vt = np.linalg.svd(M - eta * S)
    return (U[:, :k] * s[:k]) @ Vt[:k], np.linalg.norm(r)


def ref_svp_psd(problem, M, eta, k):
    r, S = dense_S(problem, M)
    Z = M - eta * S
    w, Q = np.linalg.eigh((Z + Z.T) / 2)
    idx = np.argsort(w)[::-1][:k]
    w = np.maximum(w[idx], 0)
    return (Q[:, idx] * w) @ Q[:, idx].T, np.linalg.norm(r)


# ------------------------------------------------------- one step vs dense
@pytest.mark.parametrize("eta,lam", [(0.5, 0.0), (0.3, 1e-2)])
def test_scaled_asym_step_matches_dense(asym, eta, lam):
    F, G = rand_factors(asym, 3, seed=1)
    method = ScaledGD(eta) if lam == 0 else ScaledGDLambda(eta, lam)
    (Fn, Gn), rn = one_step(asym, method, (F, G))
    (Fr, Gr), rr = ref_scaled_asym(asym, F, G, eta, lam)
    np.testing.assert_allclose(Fn, Fr, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Gn, Gr, rtol=1e-10, atol=1e-12)
    assert rn == pytest.approx(rr, rel=1e-12)


@pytest.mark.parametrize("eta,lam", [(0.5, 0.0), (0.3, 1e-2)])
def test_scaled_sym_step_matches_dense(psd, eta, lam):
    X = rand_X(psd, 3, seed=2)
    method = ScaledGD(eta) if lam == 0 else ScaledGDLambda(eta, lam)
    (Xn,), rn = one_step(psd, method, (X,))
    (Xr,), rr = ref_scaled_sym(psd, X, eta, lam)
    np.testing.assert_allclose(Xn, Xr, rtol=1e-10, atol=1e-12)
    assert rn == pytest.approx(rr, rel=1e-12)


def test_precgd_steps_match_dense(asym, psd):
    # λ_t = √(½‖r_t‖²) (the reference runs' damping), times damping_scale.
    F, G = rand_factors(asym, 3, seed=5)
    (Fn, Gn), _ = one_step(asym, PrecGD(0.4), (F, G))
    r, _ = dense_S(asym, F @ G.T)
    (Fr, Gr), _ = ref_scaled_asym(asym, F, G, 0.4, np.sqrt(0.5 * r @ r))
    np.testing.assert_allclose(Fn, Fr, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Gn, Gr, rtol=1e-10, atol=1e-12)

    X = rand_X(psd, 4, seed=6)
    (Xn,), _ = one_step(psd, PrecGD(0.5, damping_scale=0.25), (X,))
    r, _ = dense_S(psd, X @ X.T)
    (Xr,), _ = ref_scaled_sym(psd, X, 0.5, 0.25 * np.sqrt(0.5 * r @ r))
    np.testing.assert_allclose(Xn, Xr, rtol=1e-10, atol=1e-12)


def test_apgd_step_matches_dense_and_uses_two_passes(asym, monkeypatch):
    F, G = rand_factors(asym, 2, seed=7)
    calls = []
    orig = Problem.residual_and_grads
    monkeypatch.setattr(
        Problem, "residual_and_grads", lambda self, F, G: calls.append(1) or orig(self, F, G)
    )
    (Fn, Gn), rn = one_step(asym, AlternatingPrecGD(0.7), (F, G))
    assert len(calls) == 2
    (Fr, Gr), rr = ref_apgd(asym, F, G, 0.7)
    # Compare products: F and G are fixed only up to F → F Q, G → G Q^{-T}, but here the
    # update is explicit, so the factors themselves must agree too.
    np.testing.assert_allclose(Fn, Fr, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(Gn, Gr, rtol=1e-9, atol=1e-11)
    assert rn == pytest.approx(rr, rel=1e-12)


def test_svp_step_matches_dense(asym, psd):
    F, G = rand_factors(asym, 2, seed=8)
    (Fn, Gn), rn = one_step(asym, SVP(0.8), (F, G))
    Mr, rr = ref_svp(asym, F @ G.T, 0.8, 2)
    np.testing.assert_allclose(Fn @ Gn.T, Mr, rtol=1e-10, atol=1e-12)
    assert rn == pytest.approx(rr, rel=1e-12)
    # Stored as balanced factors U√Σ, V√Σ.
    np.testing.assert_allclose(Fn.T @ Fn, Gn.T @ Gn, atol=1e-12)

    X = rand_X(psd, 3, seed=9)
    (Xn,), _ = one_step(psd, SVP(0.8), (X,))
    Mr, _ = ref_svp_psd(psd, X @ X.T, 0.8, 3)
    np.testing.assert_allclose(Xn @ Xn.T, Mr, rtol=1e-10, atol=1e-12)


def test_svp_first_step_from_zero_is_projected_adjoint(asym):
    F0, G0 = init.zeros(asym, 2)
    (F1, G1), rn = one_step(asym, SVP(0.6), (F0, G0))
    A, y, n1, n2 = dense(asym)
    U, s, Vt = np.linalg.svd(0.6 * (A.T @ y).reshape(n1, n2))
    np.testing.assert_allclose(F1 @ G1.T, (U[:, :2] * s[:2]) @ Vt[:2], atol=1e-12)
    assert rn == pytest.approx(np.linalg.norm(y))


# ----------------------------------------------------------------- convergence
CONVERGENCE_CASES = [
    ("scaledgd asym spectral", ScaledGD(0.5), "asym", lambda p: init.spectral(p, 2)),
    ("scaledgd sym spectral", ScaledGD(0.5), "psd", lambda p: init.spectral_symmetric(p, 2)),
    (
        "scaledgd_lambda sym small",
        ScaledGDLambda(0.5, 1e-3),
        "psd",
        lambda p: init.symmetric_random(p, 2, 1e-3, normalization="sqrt_n"),
    ),
    (
        "scaledgd_lambda asym small",
        ScaledGDLambda(0.5, 1e-3),
        "asym",
        lambda p: init.small_random(p, 2, 1e-3, normalization="sqrt_n"),
    ),
    (
        "precgd sym small k>r",
        PrecGD(0.5),
        "psd",
        lambda p: init.symmetric_random(p, 4, 1e-3, normalization="sqrt_n"),
    ),
    ("precgd asym spectral k>r", PrecGD(0.5), "asym", lambda p: init.spectral(p, 4)),
    (
        "apgd small",
        AlternatingPrecGD(1.0),
        "asym",
        lambda p: init.small_random(p, 2, 1e-3, normalization="sqrt_n"),
    ),
    ("svp zeros", SVP(0.7), "asym", lambda p: init.zeros(p, 2)),
    ("svp psd zeros", SVP(0.7), "psd", lambda p: init.zeros_symmetric(p, 2)),
    ("gd spectral", GD(0.5), "asym", lambda p: init.spectral(p, 2)),
]


@pytest.mark.parametrize(
    "label,method,which,make", CONVERGENCE_CASES, ids=[c[0] for c in CONVERGENCE_CASES]
)
def test_each_method_converges(asym, psd, label, method, which, make):
    p = asym if which == "asym" else psd
    traj = run(p, method, make(p), 600, tol=1e-9)
    assert traj.status == "converged", (label, traj.status, traj.history["rel_error"][-1])
    assert np.all(np.isfinite(traj.history["rel_error"]))


def test_scaledgd_lambda_overparameterized_reaches_alpha_dependent_floor(psd):
    # With k > r and a fixed λ the redundant directions are only damped like GD with
    # step η/λ: fast descent to a floor set by the initialization scale, then slow.
    X0 = init.symmetric_random(psd, 4, 1e-3, normalization="sqrt_n")
    traj = run(psd, ScaledGDLambda(0.5, 1e-3), X0, 300, tol=1e-5)
    assert traj.status == "converged"


# ---------------------------------------------------------------- batching
@pytest.mark.parametrize(
    "method",
    [ScaledGD(0.5), ScaledGDLambda(0.5, 1e-2), PrecGD(0.5), AlternatingPrecGD(0.8), SVP(0.7)],
    ids=lambda m: m.name,
)
def test_batched_equals_one_by_one(asym, method):
    seeds = [0, 1, 2]
    F0, G0 = init.small_random(asym, 2, [0.1, 0.2, 0.3], seed=seeds)
    batched = run(asym, method, (F0, G0), 15)
    for b in range(3):
        single = run(asym, method, (F0[b], G0[b]), 15)
        np.testing.assert_allclose(
            batched.factors[0][b] @ batched.factors[1][b].T,
            single.factors[0] @ single.factors[1].T,
            rtol=1e-10,
            atol=1e-13,
        )
        np.testing.assert_allclose(
            batched.history["rel_error"][:, b], single.history["rel_error"], rtol=1e-10
        )


def test_batched_symmetric_precgd_lambda_per_trajectory(psd):
    # PrecGD's λ_t is per trajectory: a batch mixing a near-solution and a far start
    # must agree with the two runs one by one.
    X0 = init.symmetric_random(psd, 3, [1e-3, 0.5], seed=[0, 1])
    batched = run(psd, PrecGD(0.5), X0, 20)
    for b in range(2):
        single = run(psd, PrecGD(0.5), X0[b], 20)
        np.testing.assert_allclose(batched.factors[0][b], single.factors[0], rtol=1e-10, atol=1e-13)


# ------------------------------------------------------ singular Gram matrices
@pytest.mark.parametrize(
    "method",
    [ScaledGD(0.5), ScaledGDLambda(0.5, 1e-3), PrecGD(0.5), AlternatingPrecGD(1.0), SVP(0.5)],
    ids=lambda m: m.name,
)
def test_singular_gram_matrices_give_finite_steps(asym, method):
    n1, n2 = asym.shape
    rng = np.random.default_rng(0)
    f = rng.standard_normal((n1, 1))
    F = np.hstack([f, f, np.zeros((n1, 1))])  # rank 1, FᵀF singular
    G = np.hstack([rng.standard_normal((n2, 1)), np.zeros((n2, 2))])  # GᵀG singular
    (Fn, Gn), rn = one_step(asym, method, (F, G))
    assert np.all(np.isfinite(Fn)) and np.all(np.isfinite(Gn)) and np.isfinite(rn)
    # Exactly zero factors: zero Gram matrices (tiny-init limit), still finite.
    (Fz, Gz), _ = one_step(asym, method, (np.zeros((n1, 2)), np.zeros((n2, 2))))
    assert np.all(np.isfinite(Fz)) and np.all(np.isfinite(Gz))
    traj = run(asym, method, (F, G), 30)
    assert traj.status in ("max_iters", "converged")
    assert np.all(np.isfinite(traj.history["residual_norm"]))


def test_singular_gram_uses_pseudo_inverse(asym):
    # With GᵀG singular the ScaledGD F step is F − η S G (GᵀG)^†.
    n1, n2 = asym.shape
    rng = np.random.default_rng(1)
    F = rng.standard_normal((n1, 2))
    g = rng.standard_normal((n2, 1))
    G = np.hstack([g, 2 * g])
    (Fn, _), _ = one_step(asym, ScaledGD(0.5), (F, G))
    _, S = dense_S(asym, F @ G.T)
    np.testing.assert_allclose(Fn, F - 0.5 * S @ G @ np.linalg.pinv(G.T @ G), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    "method", [ScaledGD(0.5), PrecGD(0.5), ScaledGDLambda(0.5, 1e-4)], ids=lambda m: m.name
)
def test_tiny_symmetric_init_is_finite(psd, method):
    X0 = init.symmetric_random(psd, 4, 1e-12, normalization="sqrt_n")
    traj = run(psd, method, X0, 50)
    assert traj.status != "diverged" or np.all(np.isfinite(traj.factors[0]))
    assert np.all(np.isfinite(traj.factors[0]))


# --------------------------------------------------------------- divergence
@pytest.mark.parametrize(
    "method,which",
    [
        (ScaledGD(50.0), "asym"),
        (ScaledGDLambda(50.0, 1e-3), "psd"),
        (PrecGD(50.0), "psd"),
        (SVP(20.0), "asym"),
        (AlternatingPrecGD(1.99), "asym_hard"),
    ],
    ids=lambda x: getattr(x, "name", x),
)
def test_huge_step_diverges(asym, psd, method, which):
    if which == "asym_hard":
        # Few measurements: the preconditioned step overshoots without the isotropy.
        p = Problem.gaussian(12, r=2, m=40, seed=0)
        x0 = init.spectral(p, 2)
    else:
        p = asym if which == "asym" else psd
        x0 = init.spectral(p, 2) if which == "asym" else init.spectral_symmetric(p, 2)
    traj = run(p, method, x0, 300)
    assert traj.status == "diverged"
    assert all(np.all(np.isfinite(f)) for f in traj.factors)


# --------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "cls,kwargs,fragment",
    [
        (ScaledGD, dict(step_size=-1.0), "step_size"),
        (ScaledGD, dict(step_size=0.5, rcond=1.5), "rcond must be in [0, 1)"),
        (ScaledGDLambda, dict(damping=0.0), "damping"),
        (ScaledGDLambda, dict(damping=float("nan")), "damping"),
        (PrecGD, dict(damping_scale=-2.0), "damping_scale"),
        (PrecGD, dict(step_size="a"), "step_size"),
        (AlternatingPrecGD, dict(step_size=2.5), "(0, 2)"),
        (SVP, dict(step_size=0.0), "step_size"),
    ],
)
def test_hyper_parameters_validated(cls, kwargs, fragment):
    with pytest.raises(ValueError) as info:
        cls(**kwargs)
    assert fragment in str(info.value)
    bad = list(kwargs.values())[-1]
    assert repr(bad) in str(info.value) or str(bad) in str(info.value)


def test_apgd_rejects_symmetric_factors(psd):
    with pytest.raises(ValueError, match="F Gᵀ"):
        run(psd, AlternatingPrecGD(), rand_X(psd, 2), 3)


def test_registry_and_unknown_name():
    for name in ("scaledgd", "scaledgd_lambda", "precgd", "apgd", "svp"):
        assert name in METHODS
        assert get_method(name).name == name
    with pytest.raises(ValueError, match="known methods:.*precgd.*scaledgd"):
        get_method("scaled_gd")


def test_runconfig_spectral_and_peers():
    cfg = RunConfig.from_dict(
        dict(
            n1=10,
            r=2,
            m=200,
            k=2,
            init="spectral",
            method="scaledgd",
            step_size=0.5,
            iters=200,
            tol=1e-8,
        )
    )
    p = cfg.build_problem()
    traj = run(p, cfg.build_method(), cfg.build_init(p), cfg.iters, tol=cfg.tol)
    assert traj.status == "converged"
    cfg = RunConfig.from_dict(dict(n1=10, r=2, m=200, k=2, init="zeros", method="svp", iters=5))
    assert cfg.build_method().name == "svp"
    with pytest.raises(ValueError, match="damping"):
        RunConfig.from_dict(dict(method="scaledgd_lambda", damping=-1.0))


# ------------------------------------------------------------- spectral init
def test_spectral_init_is_top_k_svd_of_adjoint(asym):
    A, y, n1, n2 = dense(asym)
    S0 = (A.T @ y).reshape(n1, n2)
    F0, G0 = init.spectral(asym, 3)
    U, s, Vt = np.linalg.svd(S0)
    np.testing.assert_allclose(F0 @ G0.T, (U[:, :3] * s[:3]) @ Vt[:3], atol=1e-12)
    np.testing.assert_allclose(F0.T @ F0, np.diag(s[:3]), atol=1e-12)
    np.testing.assert_allclose(G0.T @ G0, np.diag(s[:3]), atol=1e-12)


def test_spectral_symmetric_is_psd_top_k(psd):
    A, y, n, _ = dense(psd)
    S0 = (A.T @ y).reshape(n, n)
    w, Q = np.linalg.eigh((S0 + S0.T) / 2)
    X0 = init.spectral_symmetric(psd, 2)
    idx = np.argsort(w)[::-1][:2]
    np.testing.assert_allclose(
        X0 @ X0.T, (Q[:, idx] * np.maximum(w[idx], 0)) @ Q[:, idx].T, atol=1e-12
    )
    with pytest.raises(ValueError, match="k must be"):
        init.spectral(psd, 0)
    with pytest.raises(ValueError, match="square"):
        init.spectral_symmetric(Problem.gaussian(6, 5, r=1, m=30), 1)


# ------------------------------------------------------------------- backends
def test_torch_matches_numpy(asym):
    torch = pytest.importorskip("torch")
    A = np.asarray(asym.operator.as_matrix()).reshape(asym.m, *asym.shape) * np.sqrt(asym.m)
    pt = Problem.from_arrays(
        torch.from_numpy(A),
        torch.from_numpy(np.asarray(asym.y)),
        torch.from_numpy(np.asarray(asym.M_star)),
    )
    F0, G0 = init.small_random(asym, 2, 0.1, seed=0)
    for method in (
        ScaledGD(0.5),
        PrecGD(0.5),
        AlternatingPrecGD(1.0),
        SVP(0.7),
        ScaledGDLambda(0.5, 1e-2),
    ):
        a = run(asym, method, (F0, G0), 10)
        b = run(pt, method, (F0, G0), 10)
        np.testing.assert_allclose(b.history["rel_error"], a.history["rel_error"], rtol=1e-8)


def test_torch_matches_numpy_symmetric(psd):
    torch = pytest.importorskip("torch")
    A = np.asarray(psd.operator.as_matrix()).reshape(psd.m, *psd.shape) * np.sqrt(psd.m)
    pt = Problem.from_arrays(
        torch.from_numpy(A),
        torch.from_numpy(np.asarray(psd.y)),
        torch.from_numpy(np.asarray(psd.M_star)),
    )
    X0 = init.symmetric_random(psd, 3, 0.1, seed=0)
    for method in (ScaledGD(0.5), PrecGD(0.5), SVP(0.5), ScaledGDLambda(0.5, 1e-2)):
        a = run(psd, method, X0, 10)
        b = run(pt, method, X0, 10)
        np.testing.assert_allclose(b.history["rel_error"], a.history["rel_error"], rtol=1e-8)


# --------------------------------------------------------- nuclear norm (cvxpy)
def test_nuclear_norm_recovers_small_problem():
    pytest.importorskip("cvxpy")
    from matsense.methods.nuclear import nuclear_norm_solve

    p = Problem.gaussian(8, r=1, m=60, seed=2)
    res = nuclear_norm_solve(p)
    assert res.status in ("optimal", "optimal_inaccurate")
    assert res.exact == (res.status == "optimal")
    assert res.rel_error < 1e-3
    assert res.residual_norm < 1e-3 * np.linalg.norm(np.asarray(p.y))
    sym = Problem.gaussian(8, r=1, m=60, symmetric=True, seed=2)
    res = nuclear_norm_solve(sym)
    assert res.rel_error < 1e-3
    assert np.linalg.eigvalsh((res.M + res.M.T) / 2).min() > -1e-6


def test_nuclear_norm_refuses_large_and_flags_inaccurate():
    pytest.importorskip("cvxpy")
    from matsense.methods.nuclear import nuclear_norm_solve

    with pytest.raises(ValueError, match="max_size"):
        nuclear_norm_solve(Problem.gaussian(20, r=1, m=50, seed=0), max_size=100)
    # Starve SCS of iterations: whatever it returns must not be called exact.
    res = nuclear_norm_solve(Problem.gaussian(8, r=1, m=60, seed=2), solver="SCS", max_iters=5)
    assert res.status != "optimal"
    assert res.exact is False
    assert "NOT exact" in res.message or res.M is None


def test_nuclear_norm_without_cvxpy_says_how_to_install(monkeypatch):
    from matsense.methods.nuclear import nuclear_norm_solve

    monkeypatch.setitem(sys.modules, "cvxpy", None)
    with pytest.raises(ImportError, match=r"pip install matsense\[cvxpy\]"):
        nuclear_norm_solve(Problem.gaussian(5, r=1, m=30, seed=0))


# ------------------------------------------------------------ rebalancing transforms
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_rebalancing_transforms_keep_the_product(dtype, tol):
    from matsense.methods.rebalance import rebalance, rebalance_balanced

    rng = np.random.default_rng(0)
    F = rng.standard_normal((5, 20, 4)).astype(dtype)
    G = rng.standard_normal((5, 15, 4)).astype(dtype)
    S = rng.standard_normal((5, 20, 15)).astype(dtype)
    F[1, :, 2:] = 0.0  # rank-deficient F
    G[2, :, 1:] = 0.0  # a singular value of F Gᵀ exactly 0
    F[3] = 0.0  # F Gᵀ = 0
    P = F @ G.mT
    rn = np.full(5, 0.1, dtype=dtype)
    for Fn, Gn in (
        rebalance_balanced(F, G, S, rn, 0.3)[:2],
        rebalance_balanced(F, G, S, rn, 0.3, rank=2)[:2],
        rebalance(F, G, np.linalg.norm(P, 2, axis=(1, 2)) ** 0.5),
    ):
        assert np.isfinite(Fn).all() and np.isfinite(Gn).all()
        np.testing.assert_allclose(Fn @ Gn.mT, P, atol=tol * np.abs(P).max())
    # r̂ estimated vs given: two clear signal directions out of four
    U = np.linalg.qr(rng.standard_normal((20, 4)))[0][None]
    V = np.linalg.qr(rng.standard_normal((15, 4)))[0][None]
    Fs, Gs = U * [1.0, 0.5, 1e-3, 1e-4], V * [1.0, 1.0, 1.0, 1.0]
    Fb, Gb, rhat = rebalance_balanced(Fs, Gs, np.zeros((1, 20, 15)), np.array([1e-2]), 0.3)
    assert rhat.tolist() == [2]
    # the redundant directions of F are lifted to √(0.75/η), the signal balanced
    sv_F = np.linalg.svd(Fb[0], compute_uv=False)
    np.testing.assert_allclose(sorted(sv_F)[-2:], [np.sqrt(0.75 / 0.3)] * 2, rtol=1e-12)


def test_rebalanced_gd_recovers_the_exact_parameterization_rate():
    """Dynamics (CI-sized): κ = 4, post-switch rate ≥ 0.8× the k = r rate from the same start."""
    p = ms.Problem.gaussian(20, r=2, m=600, singular_values=[1.0, 0.25], seed=1)
    F0, G0 = init.small_random(p, 4, [0.04, 0.02], seed=[3, 3])
    reb = run(p, RebalancedGD(step_size=0.3), (F0, G0), 3000, tol=1e-12, record_every=2)
    exact = run(p, GD(0.3), (F0[..., :2], G0[..., :2]), 3000, tol=1e-12, record_every=2)
    for b in range(2):
        assert reb[b].extras["switch_iteration"] >= 0 and reb[b].extras["signal_rank"] == 2
        fit, _ = ms.rates.method_rate(
            RebalancedGD(),
            reb[b].history["iteration"],
            reb[b].history["error"],
            reb[b].extras,
            window=(1e-2, 1e-10),
        )
        ref = ms.rates.linear_rate(exact[b].history["iteration"], exact[b].history["error"])
        assert fit.value >= 0.8 * ref.value, (b, fit.value, ref.value)
    old = run(
        p, RebalancedGD(step_size=0.3, transform="paper"), (F0, G0), 3000, tol=1e-12, record_every=2
    )
    fit_old, _ = ms.rates.method_rate(
        RebalancedGD(),
        old[0].history["iteration"],
        old[0].history["error"],
        old[0].extras,
        window=(1e-2, 1e-10),
    )
    assert fit_old.value < 0.5 * fit.value  # the first reconstruction is markedly slower here
