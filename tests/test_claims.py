"""Fast versions of the claims C1–C8 (docs/claims.md), with assertions on the measured numbers.

The claim functions are the ones :func:`matsense.experiments.reproduce` runs,
on one seed and shorter horizons (``TINY``); the criteria are the same
(each claim's ``criteria``). Figures are skipped here (out_dir=None) except in the
divergence test, which draws every figure from mostly-NaN data.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import matsense as ms
from matsense.experiments import CLAIMS, ClaimSettings, format_table, init_seed, reproduce
from matsense.experiments import claims as C
from matsense.experiments.drift import DriftBoundGD, run_checkpoints
from matsense.experiments.runs import SeedRuns

TINY = ClaimSettings.quick().replace(
    n_seeds=1,
    exact_iters=500,
    c2_iters=2000,
    c4_alphas=(0.08, 0.04),
    c4_iters=4000,
    c4_window=(1e-3, 1e-5),
    c5_iters=1000,
    c7_iters=1500,
    c8_alphas=(0.08, 0.04),
    c8_iters=200,
    c8_checkpoints=10,
)


@pytest.fixture(scope="module")
def runs():
    return [SeedRuns(TINY, 0)]


def _records(result):
    return result.details["records"]


def test_c1_symmetric_exact_is_linear_to_machine_precision(runs):
    res = C.claim_c1(runs, TINY)
    assert res.holds, res.reason
    for rec in _records(res):
        assert rec["fit"]["r2"] >= CLAIMS["C1"].criteria.min_r2
        assert 0.05 < rec["rate"] < 0.2
        assert rec["final_rel_error"] <= 1e-12
    assert res.details["window"] == list(TINY.exact_window)


def test_c2_symmetric_over_is_one_over_t(runs):
    res = C.claim_c2(runs, TINY)
    assert res.holds, res.reason
    (rec,) = _records(res)
    assert -1.15 <= rec["slope"] <= -0.85
    assert 0.5 <= rec["ratio_to_prediction"] <= 2.0
    assert rec["T"] == TINY.c2_iters
    # the prediction is our isotropic formula √(k−r)/(2ηt)
    assert rec["prediction_T"] == pytest.approx(math.sqrt(2) / (2 * 0.3 * TINY.c2_iters))


def test_c3_asymmetric_exact_is_linear(runs):
    res = C.claim_c3(runs, TINY)
    assert res.holds, res.reason
    assert all(r["final_rel_error"] <= 1e-12 for r in _records(res))


def test_c4_rate_scales_as_alpha_squared(runs):
    res = C.claim_c4(runs, TINY)
    assert res.holds, res.reason
    (slope,) = res.details["slopes"]
    assert 1.7 <= slope["slope"] <= 2.3
    r08, r04 = (r["rate"] for r in _records(res))
    assert r08 / r04 == pytest.approx(4.0, rel=0.25)
    for rec in _records(res):
        assert 1 / 3 <= rec["rate_over_eta_lambda_min"] <= 3
        assert rec["fit"]["t_start"] < rec["fit"]["t_end"]


def test_c5_asymmetric_beats_symmetric_by_orders_of_magnitude(runs):
    res = C.claim_c5(runs, TINY)
    assert res.holds, res.reason
    (rec,) = _records(res)
    assert rec["asym_rate"] > 0
    assert rec["error_ratio_T"] >= 1e4
    assert -1.15 <= rec["sym_slope"] <= -0.85


def test_c6_balanced_start_is_sublinear_like_xxt(runs):
    res = C.claim_c6(runs, TINY)
    assert res.holds, res.reason
    (rec,) = _records(res)
    assert -1.3 <= rec["balanced_slope"] <= -0.7
    assert 0.5 <= rec["balanced_over_xxt_min"] <= rec["balanced_over_xxt_max"] <= 2.0
    assert rec["imbalanced_rate"] > 0 and rec["balanced_over_imbalanced"] >= 1e4
    # the window ends at the predicted onset of the speed-up, or at T when none is predicted
    t0, t1 = rec["window"]
    assert t1 == (rec["predicted_onset"] or rec["T"]) and t0 == TINY.c6_tail * t1


def test_speedup_onset_is_the_first_checkpoint_past_one_over_eta_t():
    from matsense.experiments.claims.symmetry import speedup_onset

    t = np.array([10, 100, 1000, 10000])
    assert speedup_onset(t, [1e-3, 1e-3, 1e-2, 1e-2], eta=0.3) == 1000  # 0.3·1000·0.01 = 3
    assert speedup_onset(t, [1e-6] * 4, eta=0.3) is None


def test_redundant_imbalance_sees_the_unused_directions():
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.standard_normal((20, 3)))[0]
    # two signal columns shared by F and G; a third, unused one with |f|² − |g|² = 0.04 − 0.01
    F = np.c_[U[:, :2] * [1.0, 0.8], 0.2 * U[:, 2]]
    G = np.c_[U[:, :2] * [1.0, 0.8], 0.1 * U[:, 2]]
    got = ms.diagnostics.redundant_imbalance(F[None], G[None], r=2)
    assert got[0] == pytest.approx(0.03, rel=1e-10)
    balanced = ms.diagnostics.redundant_imbalance(F[None], F[None], r=2)
    assert balanced[0] == pytest.approx(0.0, abs=1e-14)


def test_c7_rebalancing_removes_alpha_dependence(runs):
    res = C.claim_c7(runs, TINY)
    assert res.holds, res.reason
    recs = _records(res)
    assert all(r["switch_iteration"] >= 0 for r in recs)
    rates = np.array([r["rate_after_switch"] for r in recs])
    assert (rates.max() - rates.min()) / np.median(rates) <= 0.2
    # plain GD, same problem and init, depends strongly on α
    assert res.details["plain_gd_spread"]["median"] > 0.5


def test_c8_drift_is_bounded_and_first_order_in_eta(runs):
    res = C.claim_c8(runs, TINY)
    assert res.holds, res.reason
    for rec in _records(res):
        assert rec["bound_holds"]
        assert 1.6 <= rec["eta_ratio_fine"] <= 2.4
        assert abs(rec["eta_ratio_fine"] - 2) <= abs(rec["eta_ratio"] - 2) + 0.05
        assert rec["max_drift"] < 0.1 * rec["max_gram_change"]


# ------------------------------------------------------------------ building blocks
def test_drift_bound_gd_is_plain_gd_and_checkpoints_equal_one_run():
    p = ms.Problem.gaussian(12, r=1, m=200, singular_values=[1.0], seed=3)
    F0, G0 = ms.init.small_random(p, 2, [0.1, 0.05], seed=[1, 1])
    a = ms.run(p, ms.GD(0.3), (F0, G0), 60)
    b = ms.run(p, DriftBoundGD(0.3), (F0, G0), 60)
    for x, y in zip(a.factors, b.factors):
        np.testing.assert_array_equal(x, y)
    ck = run_checkpoints(p, (F0, G0), 0.3, [10, 30, 60])
    assert np.all(ck.drift <= ck.bound + 1e-15)
    np.testing.assert_allclose(ck.drift[-1], a.history["imbalance_drift"][-1], rtol=1e-10)
    np.testing.assert_allclose(ck.bound[-1], b.extras["drift_bound"], rtol=1e-12)
    assert np.all(np.diff(ck.bound, axis=0) >= 0)


def test_init_seed_is_deterministic_and_role_specific():
    assert init_seed(0, "symmetric") == init_seed(0, "symmetric")
    assert init_seed(0, "symmetric") != init_seed(0, "asymmetric")
    assert init_seed(0, "asymmetric") != init_seed(1, "asymmetric")
    assert init_seed(0, "symmetric") != 0


def test_batched_runs_share_the_init_draw():
    sr = SeedRuns(TINY, 0)
    F0, G0 = ms.init.small_random(
        sr.problem(False), TINY.k, [0.08, 0.04], seed=[sr.init_seed("asymmetric")] * 2
    )
    np.testing.assert_allclose(F0[0] / 0.08, F0[1] / 0.04)
    X0 = ms.init.symmetric_random(
        sr.problem(True), TINY.k, sr.settings.c5_alpha, seed=sr.init_seed("symmetric")
    )
    from matsense.experiments.claims.symmetry import asym_on_sym_inits

    F, G = asym_on_sym_inits(sr)
    np.testing.assert_array_equal(F[1], X0)  # balanced F₀ is the X₀ of the C2 run
    np.testing.assert_array_equal(G[1], X0)
    np.testing.assert_allclose(G[2], X0 / 3)


def test_seed_list():
    from matsense.experiments.reproduction import seed_list

    assert seed_list(None, 3) == [0, 1, 2]
    assert seed_list(2, 3) == [0, 1]
    assert seed_list([5, 7], 3) == [5, 7]
    for bad in (0, -1, [1, 1], [-2], "x"):
        with pytest.raises(ValueError):
            seed_list(bad, 3)


def test_settings_validation():
    with pytest.raises(ValueError, match="c5_alpha"):
        ClaimSettings(c2_alphas=(0.04,), c5_alpha=0.08)
    with pytest.raises(ValueError, match="c5_iters"):
        ClaimSettings(c2_iters=100, c5_iters=200)
    with pytest.raises(ValueError, match="need 1 <= r < k"):
        ClaimSettings(k=2)
    with pytest.raises(ValueError, match="singular_values needs r=2 entries"):
        ClaimSettings(singular_values=(1.0,))
    q = ClaimSettings.quick()
    assert q.mode == "quick" and q.n_seeds == 2 and ClaimSettings.full().n_seeds == 3
    assert json.dumps(q.resolve().as_dict())


def test_default_setting_resolves_to_the_papers_numbers():
    s = ClaimSettings.full().resolve()
    assert s.alphas == (0.08, 0.04, 0.02) and s.c4_alphas == s.alphas
    assert s.c2_alphas == (0.08,) and s.c5_alpha == 0.08 and s.shape == (30, 30)
    assert s.c2_iters == 10000 and s.c8_iters == 1000 and s.c5_iters == s.c2_iters
    q = ClaimSettings.quick().resolve()
    assert q.c4_alphas == (0.08, 0.04) and q.c2_iters == 3000
    assert s.resolve() == s  # idempotent


def test_budgets_and_alphas_follow_the_predicted_rates():
    from matsense.experiments import predict

    base = ClaimSettings.full().resolve()
    ill = ClaimSettings.preset("ill-conditioned").resolve()
    # σ_r five times smaller: α shrinks by √5, k = r budgets grow about 5×
    assert ill.alphas[0] == pytest.approx(base.alphas[0] / np.sqrt(5), rel=0.05)
    assert 4 <= ill.exact_iters / base.exact_iters <= 6
    # the imbalance rate at α_max is the same fraction of the signal rate in every setting
    for name in ("default", "paper", "ill-conditioned", "rectangular"):
        s = ClaimSettings.preset(name).resolve()
        frac = predict.imbalance_rate(s, s.alphas[0]) / (s.eta * predict.sigma_r(s))
        assert frac == pytest.approx(predict.ALPHA_RULE, rel=0.05), name


def test_presets_and_overrides():
    p = ClaimSettings.preset("paper", quick=True)
    assert (p.n1, p.r, p.m, p.k, p.singular_values, p.mode) == (
        50,
        3,
        1500,
        5,
        (1.0, 0.75, 0.5),
        "quick",
    )
    r = ClaimSettings.preset("rectangular").resolve()
    assert r.shape == (40, 25) and r.n == 40
    s = ClaimSettings.full().with_overrides(
        ["n1=40", "n2=25", "singular_values=1,0.2", "k=5", "m=1200"]
    )
    assert (s.shape, s.singular_values, s.k, s.m) == ((40, 25), (1.0, 0.2), 5, 1200)
    assert ClaimSettings.full().with_overrides({"n": 20}).shape == (20, 20)
    assert ClaimSettings.full().with_overrides(["alphas=0.1,0.05"]).resolve().c4_alphas == (
        0.1,
        0.05,
    )
    with pytest.raises(ValueError, match="unknown setting 'huge'; known settings: default, paper"):
        ClaimSettings.preset("huge")
    with pytest.raises(ValueError, match="unknown setting key 'kapa'; allowed: n, n1"):
        ClaimSettings.full().with_overrides(["kapa=3"])
    with pytest.raises(ValueError, match="k must be an integer, got '2.5'"):
        ClaimSettings.full().with_overrides(["k=2.5"])
    with pytest.raises(ValueError, match="expected KEY=VALUE, got 'k'"):
        ClaimSettings.full().with_overrides(["k"])
    with pytest.raises(ValueError, match="singular_values: cannot read"):
        ClaimSettings.full().with_overrides(["singular_values=1;2"])


def test_unknown_claim_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="C9"):
        reproduce(tmp_path, claims=["C9"], settings=TINY)


# ---------------------------------------------------------------------- divergence
def test_diverging_step_size_makes_claims_fail_with_a_reason(tmp_path):
    bad = TINY.replace(
        eta=50.0,
        exact_iters=20,
        c2_iters=40,
        c4_iters=40,
        c5_iters=40,
        c7_iters=40,
        c8_iters=20,
        c8_checkpoints=4,
    )
    results = reproduce(tmp_path, settings=bad)
    assert [r.id for r in results] == C.suite_ids("paper")  # the default suite: C1–C8
    for r in results:
        assert r.holds is False
        assert r.reason and "diverged" in r.reason, (r.id, r.reason)
        assert "traceback" not in r.details, r.details.get("traceback")
        assert r.figures and all((tmp_path / f).exists() for f in r.figures)
    data = json.loads((tmp_path / "summary.json").read_text())
    assert [c["holds"] for c in data["claims"]] == [False] * 8
    table = format_table(results)
    assert "0/8 claims hold" in table and "NO" in table


# ---------------------------------------------------------------------- parallel runs
SMALL = TINY.replace(
    n_seeds=2,
    exact_iters=60,
    c2_iters=200,
    c4_iters=300,
    c5_iters=100,
    c7_iters=200,
    c8_iters=40,
    c8_checkpoints=4,
)


def _history_equal(a, b):
    if isinstance(a, dict):  # drift: {"eta": DriftCheckpoints, "half": ..., "labels": ...}
        return all(_history_equal(a[k], b[k]) for k in a)
    if isinstance(a, tuple):  # labels
        return a == b
    if hasattr(a, "labels"):  # a LabeledRun
        return a.labels == b.labels and _history_equal(a.traj, b.traj)
    if hasattr(a, "history"):
        return (
            a.history.keys() == b.history.keys()
            and all(
                np.array_equal(a.history[k], b.history[k], equal_nan=True)
                for k in a.history
                if k != "time"
            )
            and all(np.array_equal(x, y) for x, y in zip(a.factors, b.factors))
        )
    return all(
        np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True)
        for f in ("iterations", "drift", "bound", "growth", "rel_error")
    )


def test_runs_in_worker_processes_are_bitwise_equal_to_serial_runs():
    from matsense.experiments.runs import compute_runs

    names = ["asym_over", "rebalanced", "drift", "sym_exact"]
    serial = [SeedRuns(SMALL, s) for s in (0, 1)]
    assert compute_runs(serial, names, workers=1) == 1
    parallel = [SeedRuns(SMALL, s) for s in (0, 1)]
    assert compute_runs(parallel, names, workers=2) == 2
    for a, b in zip(serial, parallel):
        assert set(b._runs) == set(names) and set(b.seconds) == set(names)
        for name in names:
            assert _history_equal(a._runs[name], b._runs[name]), name


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_run_fails_its_claim_with_the_error(tmp_path, workers):
    bad = SMALL.replace(long_record_every=0)  # C4's long run: run() rejects record_every=0
    results = reproduce(tmp_path, claims=["C3", "C4"], settings=bad, workers=workers)
    by_id = {r.id: r for r in results}
    assert "record_every" not in (by_id["C3"].reason or "")  # the other claim is unaffected
    assert by_id["C4"].holds is False
    assert "record_every must be >= 1, got 0" in by_id["C4"].reason


def test_workers_must_be_positive(tmp_path):
    from matsense.experiments.runs import compute_runs

    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        compute_runs([SeedRuns(SMALL, 0)], ["sym_exact"], workers=0)


def test_runs_are_built_here_when_worker_processes_are_unavailable(monkeypatch):
    import concurrent.futures

    from matsense.experiments.runs import compute_runs

    def refuse(*args, **kwargs):
        raise OSError("daemonic processes are not allowed to have children")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", refuse)
    messages = []
    here = [SeedRuns(SMALL, s, messages.append) for s in (0, 1)]
    assert compute_runs(here, ["sym_exact", "asym_exact"], workers=2) == 1
    assert any("worker processes unavailable" in m for m in messages)
    serial = [SeedRuns(SMALL, s) for s in (0, 1)]
    compute_runs(serial, ["sym_exact", "asym_exact"], workers=1)
    for a, b in zip(here, serial):
        for name in ("sym_exact", "asym_exact"):
            assert _history_equal(a._runs[name], b._runs[name])


def test_a_script_without_main_guard_runs_its_work_once(tmp_path):
    """Spawned workers re-import the calling script; without a guard its top level must not
    run reproduce again in every worker (duplicated work, races on the output folder)."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "noguard.py"
    script.write_text(
        textwrap.dedent(f"""
        from matsense.experiments import reproduce, ClaimSettings
        s = ClaimSettings.quick().replace(n_seeds=2, exact_iters=60)
        res = reproduce({str(tmp_path / "out")!r}, claims=["C1", "C3"], settings=s, workers=2)
        print("DONE", len(res))
    """)
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("DONE 2") == 1
    assert 'guard the script\'s entry point with `if __name__ == "__main__":`' in proc.stderr
    assert (tmp_path / "out" / "summary.json").exists()
