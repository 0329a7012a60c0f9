"""The rebalancing switch on every ensemble: the truncated default, its report, the safeguards.

Issue #19: the previous default (the balanced lift) diverged on matrix completion from
n = 5000 on; the switch now reports r̂, the change of F Gᵀ and η·λ_max of the Gauss–Newton
blocks before and after it, and warns when it leaves GD's stable region.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import matsense as ms
from matsense import curvature
from matsense.methods.rebalance import product_change, rebalance_balanced, rebalance_truncated


def _tiny_problems():
    return {
        "completion": ms.Problem.completion(12, r=2, m=80, n2=9, seed=0),
        "gaussian": ms.Problem.gaussian(8, r=2, m=120, n2=7, seed=0),
        "rank-one": ms.Problem.rank_one(8, r=2, m=150, seed=0),
    }


def _dense_curvature(problem, F, G):
    H_FF, H_GG = curvature.dense_blocks(problem.operator, F, G)
    return max(np.linalg.eigvalsh(H_FF)[-1], np.linalg.eigvalsh(H_GG)[-1])


@pytest.mark.parametrize("ensemble", ["completion", "gaussian", "rank-one"])
def test_block_curvature_equals_dense_gauss_newton_blocks(ensemble):
    problem = _tiny_problems()[ensemble]
    rng = np.random.default_rng(1)
    F = rng.standard_normal((problem.shape[0], 3))
    G = rng.standard_normal((problem.shape[1], 3))
    dense = _dense_curvature(problem, F, G)
    # exact on completion (per-row k × k blocks); a converged power iteration elsewhere
    est = curvature.block_curvature(problem.operator, F[None], G[None], iters=5000, tol=1e-15)
    assert est.shape == (1,)
    assert est[0] == pytest.approx(dense, rel=1e-8)
    # the default (10 steps) is a lower bound
    quick = curvature.block_curvature(problem.operator, F[None], G[None])
    assert quick[0] <= dense * (1 + 1e-12)


def test_switch_report_equals_dense_quantities_on_a_tiny_problem():
    problem = ms.Problem.completion(12, r=2, m=100, n2=10, seed=3)
    F0, G0 = ms.init.small_random(problem, 4, 0.1, seed=2)
    t, eta = 60, 0.3
    before = ms.run(problem, ms.GD(eta), (F0, G0), iters=t)
    Ft, Gt = before.factors
    traj = ms.run(problem, ms.RebalancedGD(eta, switch_at=t), (F0, G0), iters=t + 1)
    ex = traj.extras
    assert ex["switch_iteration"] == t
    assert ex["curvature_before"] == pytest.approx(
        eta * _dense_curvature(problem, Ft, Gt), rel=1e-8
    )
    r, _, _ = problem.residual_and_grads(Ft[None], Gt[None])
    op = problem.operator
    F1, G1, rhat = rebalance_truncated(
        Ft[None], Gt[None], lambda V: op.adjoint_matmul(r, V), np.linalg.norm(r, axis=-1)
    )
    assert ex["signal_rank"] == rhat[0]
    assert ex["curvature_after"] == pytest.approx(
        eta * _dense_curvature(problem, F1[0], G1[0]), rel=1e-8
    )
    P0, P1 = Ft @ Gt.T, F1[0] @ G1[0].T
    assert ex["switch_change"] == pytest.approx(
        np.linalg.norm(P1 - P0) / np.linalg.norm(P0), rel=1e-8
    )


def _post_switch_rate(traj, t_switch, window=(1e-2, 1e-6)):
    t, err = traj.history["iteration"], traj.history["error"]
    sel = t >= t_switch
    return ms.rates.linear_rate(t[sel], err[sel], window=window)


@pytest.mark.slow
def test_completion_reproducer_converges_at_the_exact_parameterization_rate():
    """Issue #19's reproducer, CI-sized: n = 2000, m = 100n, r = 5, k = 10, α = 1e-3."""
    p = ms.Problem.completion(2000, r=5, m=200_000, seed=0)
    F0, G0 = ms.init.small_random(p, 10, 1e-3, normalization="sqrt_n", seed=1)
    traj = ms.run(p, ms.RebalancedGD(0.5), (F0, G0), iters=300, tol=1e-9)
    assert traj.status == "converged", traj.status
    t_sw = int(traj.extras["switch_iteration"])
    assert t_sw > 0 and traj.extras["signal_rank"] == 5
    assert traj.extras["curvature_after"] < curvature.STABLE_LIMIT
    exact = ms.run(p, ms.GD(0.5), (F0[:, :5], G0[:, :5]), iters=300, tol=1e-9)
    t = exact.history["iteration"]
    t_cross = int(t[np.flatnonzero(exact.history["residual_norm"] <= 1e-2 * p.y_norm)[0]])
    ours, ref = _post_switch_rate(traj, t_sw), _post_switch_rate(exact, t_cross)
    assert ours.ok and ref.ok
    assert ours.value >= 0.8 * ref.value, (ours.value, ref.value)
    # the error never rises after the switch
    err = traj.history["error"][traj.history["iteration"] >= t_sw]
    assert np.all(np.diff(err) <= 1e-12 * err[0])


@pytest.mark.slow
def test_lifting_coherent_directions_warns_instead_of_diverging_silently():
    p = ms.Problem.completion(2000, r=5, m=200_000, seed=0)
    F0, G0 = ms.init.small_random(p, 10, 1e-3, normalization="sqrt_n", seed=1)
    with pytest.warns(RuntimeWarning, match="stable limit"):
        traj = ms.run(p, ms.RebalancedGD(0.5, transform="balanced"), (F0, G0), iters=60)
    assert traj.extras["curvature_after"] > curvature.STABLE_LIMIT
    assert traj.extras["curvature_before"] < curvature.STABLE_LIMIT


def test_truncated_recovers_a_direction_the_rank_rule_missed():
    """The seed c·U_e lets GD grow back a signal direction dropped at the switch (r̂ = 1 < r)."""
    p = ms.Problem.gaussian(30, r=2, m=900, singular_values=[1, 0.5], seed=0)
    F0, G0 = ms.init.small_random(p, 4, 0.04, seed=1)
    seeded = ms.run(p, ms.RebalancedGD(0.3, rank=1), (F0, G0), iters=1500)
    dropped = ms.run(p, ms.RebalancedGD(0.3, rank=1, floor=0.0), (F0, G0), iters=1500)
    assert seeded.extras["switch_change"] > 0.1  # the second direction was dropped
    assert seeded.history["rel_error"][-1] < 1e-10
    assert dropped.history["rel_error"][-1] > 0.1  # without the seed it never comes back


def test_truncated_at_exact_parameterization_changes_nothing():
    p = ms.Problem.gaussian(30, r=2, m=900, singular_values=[1, 0.5], seed=0)
    F0, G0 = ms.init.small_random(p, 2, 0.04, seed=1)
    traj = ms.run(p, ms.RebalancedGD(0.3), (F0, G0), iters=400)
    assert traj.extras["signal_rank"] == 2
    assert traj.extras["switch_change"] < 1e-13


CASES = ("rank-deficient F", "F = 0", "rank-1 G", "tiny scale", "huge scale")


@pytest.mark.parametrize("transform", ["truncated", "balanced"])
def test_transforms_finite_on_rank_deficient_factors(transform):
    rng = np.random.default_rng(0)
    B, n1, n2, k = len(CASES), 20, 15, 4
    F = rng.standard_normal((B, n1, k))
    G = rng.standard_normal((B, n2, k))
    F[0, :, 2:] = 0.0
    F[1] = 0.0
    G[2, :, 1:] = 0.0
    F[3] *= 1e-150
    F[4] *= 1e100
    S = rng.standard_normal((B, n1, n2)) * 1e-3
    rnorm = np.full(B, 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid-value warnings either
        if transform == "truncated":
            Fn, Gn, rhat = rebalance_truncated(F, G, S, rnorm)
        else:
            Fn, Gn, rhat = rebalance_balanced(F, G, S, rnorm, 0.3)
    assert np.isfinite(Fn).all() and np.isfinite(Gn).all()
    assert ((1 <= rhat) & (rhat <= k)).all()
    change = product_change(F, G, Fn, Gn)
    assert np.isfinite(change).all()
    if transform == "balanced":
        assert change[[0, 2, 3, 4]].max() < 1e-12  # product-preserving
    else:
        # truncated changes F Gᵀ by exactly its dropped directions
        U, s, V = np.linalg.svd(F @ G.mT)
        for b in (0, 2):
            dropped = np.sqrt(np.sum(s[b, rhat[b] :] ** 2)) / np.sqrt(np.sum(s[b] ** 2))
            assert change[b] == pytest.approx(dropped, abs=1e-12)


def test_product_change_is_accurate_for_tiny_changes():
    rng = np.random.default_rng(4)
    F, G = rng.standard_normal((1, 30, 4)), rng.standard_normal((1, 25, 4))
    Q = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    # an exact reparameterization: F Q, G Q (Q orthogonal) leaves F Gᵀ unchanged
    assert product_change(F, G, F @ Q, G @ Q)[0] < 1e-14
    G2 = G.copy()
    G2[0, 0, 0] += 1e-9
    expect = np.linalg.norm(F[0] @ (G2[0] - G[0]).T) / np.linalg.norm(F[0] @ G[0].T)
    assert product_change(F, G, F, G2)[0] == pytest.approx(expect, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lift=5.0), r"lift must be in \(0, 1\]"),
        (dict(lift=0.0), "lift"),
        (dict(floor=-1.0), "floor"),
        (dict(transform="lifted"), "transform must be one of"),
        (dict(diagnostics="yes"), "diagnostics must be True or False"),
    ],
)
def test_rebalanced_gd_refuses_out_of_range_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ms.RebalancedGD(0.3, **kwargs)


def test_diagnostics_off_leaves_curvature_unmeasured():
    p = ms.Problem.gaussian(20, r=2, m=500, seed=0)
    F0, G0 = ms.init.small_random(p, 4, 0.05, seed=1)
    traj = ms.run(p, ms.RebalancedGD(0.3, diagnostics=False), (F0, G0), iters=400)
    assert traj.extras["switch_iteration"] > 0
    assert np.isnan(traj.extras["curvature_after"])
    assert np.isfinite(traj.extras["switch_change"])


def test_the_step_after_a_truncating_switch_is_gd_from_the_new_point():
    """Truncation moves F Gᵀ, so the first step after it uses S at the new product."""
    p = ms.Problem.gaussian(20, r=2, m=500, seed=0)
    F0, G0 = ms.init.small_random(p, 4, 0.05, seed=1)
    t = 150
    F_t, G_t = ms.run(p, ms.GD(0.3), (F0, G0), iters=t).factors
    after = ms.run(p, ms.RebalancedGD(0.3, switch_at=t, diagnostics=False), (F0, G0), iters=t + 1)
    assert after.extras["switch_change"] > 1e-6  # the transform did move F Gᵀ
    r, _, _ = p.residual_and_grads(F_t[None], G_t[None])
    op = p.operator
    F1, G1, _ = rebalance_truncated(
        F_t[None], G_t[None], lambda V: op.adjoint_matmul(r, V), np.linalg.norm(r, axis=-1)
    )
    _, SG, StF = p.residual_and_grads(F1, G1)
    F_next, G_next = after.factors
    np.testing.assert_allclose(F_next, (F1 - 0.3 * SG)[0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(G_next, (G1 - 0.3 * StF)[0], rtol=1e-10, atol=1e-14)
