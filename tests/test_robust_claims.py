"""The robust suite R1–R5 (``matsense reproduce --suite robust``): the suite plumbing, each
claim in quick mode on tiny sizes (figures, summary, report), the criteria's judgement on
numbers that pass and fail, and bad values in one line."""

from __future__ import annotations

import json

import pytest

from matsense import cli
from matsense.experiments import ClaimSettings, declare, reproduce
from matsense.experiments.claims import CLAIMS, PAPER_CLAIMS, suite_ids, suite_names
from matsense.experiments.claims.base import Claim, Measurement, Verdict
from matsense.experiments.reproduction import claim_ids, settings_record

ROBUST = ["R1", "R2", "R3", "R4", "R5"]
#: Tiny sizes and short runs: the whole suite in a few seconds, one seed.
TINY = [
    "n1=12",
    "m=300",
    "r1_iters=300",
    "r1_alphas=1e-3",
    "r1_fractions=0.1",
    "r2_iters=300",
    "r3_iters=300",
    "r4_iters=80",
    "r4_kappas=1,10",
    "r5_iters=200",
    "r5_switch=50",
]


# ------------------------------------------------------------------ the suites
def test_suites_paper_is_c1_to_c8_and_robust_is_r1_to_r5():
    assert [c.id for c in PAPER_CLAIMS] == [f"C{i}" for i in range(1, 9)]
    assert suite_ids("paper")[:8] == [f"C{i}" for i in range(1, 9)]
    assert not set(ROBUST) & set(suite_ids("paper"))
    assert suite_ids("robust") == ROBUST
    assert {"paper", "robust"} <= set(suite_names())
    assert all(CLAIMS[cid].suite == "robust" for cid in ROBUST)


def test_default_claims_are_the_paper_suite_and_subsets_stay_in_their_suite():
    s = ClaimSettings.quick()
    assert claim_ids(None, s) == suite_ids("paper")
    assert claim_ids(None, s, "robust") == ROBUST
    assert claim_ids("r1,R3", s, "robust") == ["R1", "R3"]
    with pytest.raises(
        ValueError, match=r"claims \['R1'\] are not in suite 'paper'.*--suite robust"
    ):
        claim_ids(["R1"], s)
    with pytest.raises(ValueError, match="unknown suite 'nope'; known: paper, robust"):
        suite_ids("nope")


def test_each_suites_settings_record_holds_its_own_parameters_only():
    s = ClaimSettings.quick().resolve()
    paper, robust = settings_record(s, "paper"), settings_record(s, "robust")
    assert "c4_window" in paper and "r1_iters" not in paper and "robust_alpha" not in paper
    assert "r1_iters" in robust and "robust_alpha" in robust and "c4_window" not in robust
    assert paper["n1"] == robust["n1"] == 30


# ------------------------------------------------------------------ quick runs
@pytest.fixture(scope="module")
def robust_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("robust")
    results = reproduce(out, quick=True, suite="robust", overrides=TINY, seeds=1, workers=1)
    return out, results


def test_robust_suite_quick_writes_summary_figures_and_report(robust_run):
    out, results = robust_run
    assert [r.id for r in results] == ROBUST
    data = json.loads((out / "summary.json").read_text())
    assert data["suite"] == "robust" and data["ensemble"] == "gaussian"
    for claim in data["claims"]:
        assert "traceback" not in claim["details"], claim["details"].get("traceback")
        assert claim["measured"] != "n/a" and claim["expected"] != "n/a"
        assert isinstance(claim["holds"], bool)
        assert claim["figures"] and all((out / f).is_file() for f in claim["figures"])
        assert claim["settings"]["n1"] == 12 and "c4_window" not in claim["settings"]
    page = (out / "report.html").read_text()
    assert "Robust suite R1–R5" in page and "docs/robust.md" in page


def test_robust_claims_measure_what_they_say(robust_run):
    _, results = robust_run
    by = {r.id: r for r in results}
    r1 = by["R1"].details["records"]
    assert [(x["fraction"], x["alpha"]) for x in r1] == [(0.1, 1e-3)]
    assert 0 < r1[0]["final_rel_error"] < 1
    assert by["R2"].details["over"]["slope"]["n"] == 1
    assert set(by["R4"].details["rate"]) == {"scaledsm", "subgm"}
    assert set(by["R4"].details["rate"]["subgm"]) == {"1", "10"}
    r5 = by["R5"].details["records"][0]
    assert set(r5["status"]) == {"xxt", "fgt", "exact", "rebalanced"}
    assert by["R5"].details["switch"] == 50


# ------------------------------------------------------------------ verdicts
def test_r1_holds_only_when_every_error_is_below_its_bar():
    claim = CLAIMS["R1"]
    rec = {"seed": 0, "fraction": 0.1, "alpha": 1e-3, "status": "converged"}
    good = Measurement([dict(rec, final_rel_error=1e-9)], "", "", {})
    bad = Measurement(
        [dict(rec, final_rel_error=1e-9), dict(rec, final_rel_error=2e-6)], "", "", {}
    )
    assert claim.judge(good, None).holds
    verdict = claim.judge(bad, None)
    assert not verdict.holds and "final rel. error 2.00e-06 > 1e-06" in verdict.reason


def test_r4_fails_when_scaledsm_depends_on_kappa_or_subgm_does_not():
    claim = CLAIMS["R4"]
    s = ClaimSettings.quick().replace(r4_kappas=(1.0, 100.0))
    fit = {"value": 0.3, "r2": 0.999, "reason": None}

    def records(scaled, plain):
        return Measurement(
            [
                {
                    "seed": 0,
                    "method": m,
                    "kappa": k,
                    "status": "converged",
                    "rate": rate,
                    "fit": dict(fit, value=rate),
                }
                for m, rates in (("scaledsm", scaled), ("subgm", plain))
                for k, rate in zip((1.0, 100.0), rates)
            ],
            "",
            "",
            {},
        )

    assert claim.judge(records((0.3, 0.31), (0.3, 0.01)), s).holds
    assert "differ by more than" in claim.judge(records((0.3, 0.1), (0.3, 0.01)), s).reason
    assert "SubGM rate at κ = 100" in claim.judge(records((0.3, 0.3), (0.3, 0.29)), s).reason


# ------------------------------------------------------------------ the CLI
def test_cli_reproduce_robust_subset(tmp_path, capsys):
    args = [
        "reproduce",
        "--suite",
        "robust",
        "--claims",
        "R1,R3",
        "--quick",
        "--seeds",
        "1",
        "--workers",
        "1",
        "--no-progress",
        "--out",
        str(tmp_path),
    ]
    for item in TINY:
        args += ["--set", item]
    assert cli.main(args) == 0
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["suite"] == "robust" and [c["id"] for c in data["claims"]] == ["R1", "R3"]
    assert all("traceback" not in c["details"] for c in data["claims"])
    assert "R3 under dense noise" in capsys.readouterr().out


BAD = [
    (["--suite", "nope"], "unknown suite 'nope'; known: paper, robust"),
    (["--suite", "robust", "--ensemble", "all"], "--ensemble all runs the paper suite"),
    (["--claims", "R1"], "are not in suite 'paper'"),
    (
        ["--suite", "robust", "--setting", "large", "--ensemble", "completion"],
        "setting 'large' is defined for the paper suite only, not 'robust'",
    ),
    (
        ["--suite", "robust", "--set", "r1_fractions=0.1,1.5"],
        ("r1_fractions must be a number in [0, 1), got 1.5"),
    ),
    (["--suite", "robust", "--set", "geo_decay=2"], "geo_decay must be in (0, 1], got 2.0"),
    (
        ["--suite", "robust", "--set", "robust_fraction=-0.1"],
        ("robust_fraction must be a number in [0, 1)"),
    ),
]


@pytest.mark.parametrize("extra, message", BAD, ids=[" ".join(e) for e, _ in BAD])
def test_cli_bad_suite_values_are_one_line(extra, message, tmp_path, capsys):
    assert cli.main(["reproduce", "--quick", "--out", str(tmp_path), *extra]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_phase_spec_needs_outlier_fraction_and_m_or_k(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "robust_phase.py"
    spec = importlib.util.spec_from_file_location("robust_phase", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.x_key({"grid": {"outlier_fraction": [0.1], "k": [2]}}) == "k"
    with pytest.raises(ValueError, match=r"outlier_fraction and one of m, k, got \['alpha'\]"):
        module.x_key({"grid": {"alpha": [0.1]}})


# ------------------------------------------------------------------ a plugin's own suite
class _OwnSuiteClaim(Claim):
    """A claim (as a plugin would add one) that names a suite of its own and reads no run."""

    id, suite, title, caption, stem = "Z1", "mine", "a claim of its own suite", "", "z1"

    def measure(self, runs, settings):
        return Measurement([{"seed": sr.seed} for sr in runs], "seeds counted", "any", {})

    def judge(self, m, settings):
        return Verdict()

    def panels(self, m, runs, settings):
        from matsense import plots

        return [plots.Panel("seeds", "x", "y", curves=[plots.Curve([1, 2], [1, 2])])]


def test_a_claim_naming_a_new_suite_makes_one(tmp_path):
    claim = _OwnSuiteClaim()
    CLAIMS["Z1"] = declare.declare(claim)
    try:
        assert suite_names()[-1] == "mine" and suite_ids("mine") == ["Z1"]
        assert "Z1" not in suite_ids("paper") and "Z1" not in suite_ids("robust")
        results = reproduce(tmp_path, quick=True, suite="mine", seeds=1, workers=1)
        assert [r.id for r in results] == ["Z1"] and results[0].holds
        data = json.loads((tmp_path / "summary.json").read_text())
        assert data["suite"] == "mine" and "r1_iters" not in data["claims"][0]["settings"]
        assert "Claims of the suite mine" in (tmp_path / "report.html").read_text()
    finally:
        del CLAIMS["Z1"]
        declare.forget(claim)
