"""benchmarks/study_rebalance.py: the recommended transform and the study's bookkeeping.

The study's numbers are in docs/rebalance_study.md; these tests pin what the
recommendation promises (F Gᵀ unchanged, finite on degenerate input, the rank rule,
the lift level) so that a port into src/ can be checked against the same cases.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import matsense as ms

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import study_rebalance as S  # noqa: E402


def test_transforms_keep_the_product_and_stay_finite():
    checks = S.transform_checks(S.candidates(False))
    for name, c in checks.items():
        if name.startswith(("zero extra", "paper")):
            continue  # the diagnostic drops directions; the paper's transform is checked below
        assert c["finite"], name
        assert c["max_rel_product_change"] < 1e-12, (name, c["max_rel_product_change"])
    ref = checks["rebalance_balanced (reference implementation)"]
    assert ref["same_as_study_candidate"]
    if ref["torch_max_abs_diff"] is not None:
        assert ref["torch_max_abs_diff"] < 1e-12
    # the 'paper' transform divided by β = √‖FGᵀ‖ = 0 when F Gᵀ = 0; it now keeps the factors
    paper = checks["paper (PAPER §3)"]["per_case"]
    assert [c for c, v in paper.items() if not v["finite"]] == []


def test_rank_rule_pull_separates_extra_from_weak_signal():
    rho = np.array([1.0, 1.0, 1.0])
    s = np.array(
        [
            [70.0, 69.0, 2.9, 2.2],  # weak sensing: extra directions at 2–3 ρ …
            [100.0, 3.0, 0.5, 0.4],  # … and a weak signal direction at 3 ρ
            [100.0, 0.5, 0.45, 0.2],
        ]
    )  # the weakest signal not learned yet
    pull = np.array(
        [
            [0.0, 0.0, 0.08, 0.1],  # … which GD is shrinking
            [0.0, -0.07, 0.5, 0.4],  # … which GD is still growing
            [0.0, 0.5, 0.5, 0.3],
        ]
    )
    assert S.numerical_rank(s, "pull", 4.0, rho, 2, pull).tolist() == [2, 2, 1]
    assert S.numerical_rank(s, "resid", 2.0, rho, 2).tolist() == [4, 2, 1]
    assert S.numerical_rank(s, "resid", 4.0, rho, 2).tolist() == [2, 1, 1]


def test_recommended_levels():
    rng = np.random.default_rng(1)
    U, _ = np.linalg.qr(rng.standard_normal((20, 4)))
    V, _ = np.linalg.qr(rng.standard_normal((15, 4)))
    sig = np.array([1.0, 0.1, 1e-3, 1e-4])
    # an arbitrary split of the same product
    A = rng.standard_normal((4, 4))
    F = (U * sig) @ A
    G = V @ np.linalg.inv(A).T
    for eta in (0.1, 0.3, 1.0):
        Fn, Gn, rhat = S.rebalance_balanced(
            F[None], G[None], np.zeros((1, 20, 15)), np.array([1e-2]), eta
        )
        assert rhat.tolist() == [2]
        np.testing.assert_allclose(Fn[0] @ Gn[0].T, F @ G.T, rtol=0, atol=1e-14)
        sF = np.linalg.svd(Fn[0], compute_uv=False)
        sG = np.linalg.svd(Gn[0], compute_uv=False)
        L = max(1.0, 0.75 / eta)
        np.testing.assert_allclose(sorted(sF), sorted([L**0.5, L**0.5, 1.0, 0.1**0.5]), rtol=1e-10)
        np.testing.assert_allclose(sG[:2], [1.0, 0.1**0.5], rtol=1e-10)
        assert sG[2] < 2e-3  # the extra directions of G are σ_e/√L


def test_study_method_switches_once_and_converges():
    problem = ms.Problem.gaussian(12, r=1, m=300, seed=3)
    F0, G0 = ms.init.small_random(problem, 2, [0.05, 0.05], seed=[1, 1])
    method = S.MultiRebalancedGD((S.Transform("rec", **S.REC),), (-1, 0), 0.3, 1)
    traj = ms.run(problem, method, (F0, G0), iters=400, tol=1e-12, record_every=5)
    ex = traj.extras
    assert ex["switch_iteration"][0] == -1 and ex["switch_iteration"][1] > 0
    assert ex["n_applied"].tolist() == [0, 1] and ex["rhat"][1] == 1
    assert ex["prod_err"][1] < 1e-12
    assert ex["etaF2"][1] == pytest.approx(0.75, rel=1e-9)
    assert traj.status[1] == "converged"
    fit, how = S.post_switch_rate(
        traj.history, 1, int(ex["switch_iteration"][1]), float(ex["err_switch"][1])
    )
    assert how == "window" and fit["value"] > 0.05


def test_scale_group_rows_and_report_on_a_tiny_completion_problem():
    """The --only scale bookkeeping: one row per run and α, ratios to both k = r references,
    the switch report of the shipped transforms, and the Markdown table."""
    st = S.ScaleSetting(
        "completion n=300",
        "completion",
        300,
        30_000,
        3,
        6,
        0.5,
        (1e-3, 1e-4),
        (0,),
        300,
        transforms=("truncated", "balanced"),
        plain=False,
    )
    rows = S.run_scale_setting(st, log=lambda msg: None)
    names = [r["row"] for r in rows]
    assert names.count("truncated") == 2 and names.count("k = r GD") == 2
    trunc = [r for r in rows if r["row"] == "truncated"]
    for r in trunc:
        assert r["status"] == "converged" and r["rhat"] == 3
        assert r["ratio"] >= 0.8 and r["ratio_bal"] >= 0.8
        assert r["curvature_after"] < 2 and 0 < r["switch_change"] < 0.05
        assert r["max_rel_error_after_switch"] <= r["err_switch_rel"] * (1 + 1e-9)
    table = S.scale_report(rows)
    assert "| completion n=300 | truncated |" in table and "conv 2/2" in table
