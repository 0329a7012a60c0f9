"""The ``ensemble`` key from the configuration to the commands: run, sweep, compare, reproduce."""

from __future__ import annotations

import json

import pytest

from matsense import cli
from matsense.config import RunConfig
from matsense.experiments import ClaimSettings
from matsense.problems import ENSEMBLES

TINY = ["--n1", "10", "--r", "1", "--k", "2", "--iters", "30", "--no-figure", "--no-progress"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("matsense: error: ") and err.count("\n") == 1, err
    return err


# --------------------------------------------------------------- the config key
@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_config_builds_each_ensemble(ensemble):
    cfg = RunConfig.from_dict({"ensemble": ensemble, "n1": 8, "r": 1, "m": 40, "k": 2})
    problem = cfg.build_problem()
    assert problem.meta["ensemble"] == ensemble and problem.m == 40
    assert cfg.to_dict()["ensemble"] == ensemble


def test_unknown_ensemble_lists_the_allowed_ones():
    with pytest.raises(
        ValueError,
        match="unknown ensemble 'gauss'; known: gaussian, symmetric-gaussian, rank-one, completion",
    ):
        RunConfig.from_dict({"ensemble": "gauss"})


def test_p_is_for_completion_only_and_in_range():
    cfg = RunConfig.from_dict({"ensemble": "completion", "n1": 10, "r": 1, "p": 0.5})
    problem = cfg.build_problem()
    assert 20 < problem.m < 80 and cfg.p == 0.5
    with pytest.raises(ValueError, match="completion ensemble only"):
        RunConfig.from_dict({"p": 0.5})
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\]"):
        RunConfig.from_dict({"ensemble": "completion", "p": 1.5})


def test_gaussian_run_ids_do_not_change_with_the_new_keys():
    """Stores keyed by run id before the ensemble key existed keep resuming."""
    cfg = RunConfig.from_dict({"n1": 12, "alpha": 0.02})
    import hashlib

    d = {k: v for k, v in cfg.to_dict().items() if k not in ("ensemble", "p")}
    old = hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert cfg.run_id() == old
    assert cfg.replace(ensemble="rank-one").run_id() != old
    assert cfg.replace(ensemble="rank-one").problem_key() != cfg.problem_key()


def test_toml_ensemble_error_names_file_and_line(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[problem]\nn1 = 10\nensemble = "sparse"\n')
    with pytest.raises(ValueError, match=r"run\.toml:3: unknown ensemble 'sparse'"):
        RunConfig.from_toml(path)
    path.write_text('[problem]\nensemble = "completion"\nn1 = 10\nr = 1\np = 0.6\n')
    cfg = RunConfig.from_toml(path)
    assert (cfg.ensemble, cfg.p) == ("completion", 0.6)


# ------------------------------------------------------------------ matsense run
@pytest.mark.parametrize(
    "ensemble,extra",
    [
        ("rank-one", ["--m", "80"]),
        ("completion", ["--p", "0.6"]),
        ("symmetric-gaussian", ["--m", "60"]),
    ],
)
def test_run_with_an_ensemble_exits_0(ensemble, extra, capsys, tmp_path):
    out = tmp_path / "run.csv"
    assert cli.main(["run", "--ensemble", ensemble, *extra, *TINY, "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert f": {ensemble}, n1=10" in stdout and "rel. error" in stdout
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["ensemble"] == ensemble


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--ensemble", "bogus"], "unknown ensemble 'bogus'; known: gaussian, symmetric-gaussian"),
        (["--p", "0.5"], "completion ensemble only"),
        (["--ensemble", "completion", "--m", "500"], "m must be in [1, 100]"),
        (["--ensemble", "symmetric-gaussian", "--n2", "12", "--m", "20"], "n1 == n2"),
    ],
)
def test_run_ensemble_errors_are_one_line(argv, needle, capsys):
    assert cli.main(["run", *argv, *TINY]) == 2
    assert needle in _one_line_error(capsys)


# ------------------------------------------------------------------------ sweeps
def test_sweep_over_ensembles_batches_them_apart(tmp_path):
    from matsense.sweep import load, load_spec, run_sweep
    from matsense.sweep.runner import plan_batches

    spec = tmp_path / "ens.toml"
    spec.write_text(
        "[base]\nn1 = 10\nr = 1\nm = 60\nk = 2\niters = 20\n"
        '[grid]\nensemble = ["gaussian", "rank-one", "completion"]\n'
        "alpha = [0.04, 0.02]\n"
    )
    configs = load_spec(spec).configs
    assert len(plan_batches(configs, max_batch=128)) == 3
    summary = run_sweep(spec, tmp_path / "store", workers=1, progress=False)
    assert summary.failed == 0
    runs = load(tmp_path / "store", history=False).runs
    assert sorted(set(runs["ensemble"])) == ["completion", "gaussian", "rank-one"]


def test_sweep_spec_with_a_bad_ensemble_names_the_key(tmp_path):
    from matsense.sweep import load_spec

    spec = tmp_path / "bad.toml"
    spec.write_text('[base]\nn1 = 10\n[grid]\nensemble = ["gaussian", "lowrank"]\n')
    with pytest.raises(ValueError, match="unknown ensemble 'lowrank'"):
        load_spec(spec)


# ----------------------------------------------------------------------- compare
def test_compare_unknown_ensemble_is_one_line(capsys, tmp_path):
    assert cli.main(["compare", "--quick", "--ensemble", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown ensemble 'nope'" in _one_line_error(capsys)


def test_compare_records_the_ensemble(tmp_path):
    from matsense.compare import CompareSettings, compare

    settings = CompareSettings(
        n=8,
        r=1,
        m_factor=8,
        kappas=(1.0,),
        k_multipliers=(1,),
        max_iters=40,
        methods=("gd",),
        name="tiny",
    )
    records = compare(
        tmp_path, settings=settings, seeds=1, figures=False, workers=1, ensemble="completion"
    )
    assert records[0]["ensemble"] == "completion" and records[0]["reference"] is None
    assert "completion measurements" in (tmp_path / "compare.md").read_text()


# --------------------------------------------------------------------- reproduce
def test_claim_settings_sizes_per_ensemble():
    s = ClaimSettings.preset("default", quick=True, ensemble="completion").resolve()
    assert s.shape == (60, 60) and s.p == pytest.approx(2 / 3) and s.measurements(60, 60) == 2400
    assert "60×60" in s.describe() and "p = 0.667" in s.describe()
    assert ClaimSettings.preset("rectangular", ensemble="completion").shape == (80, 50)
    assert ClaimSettings.preset("default", ensemble="completion").with_overrides(
        ["n=30"]
    ).shape == (30, 30)
    g = ClaimSettings.preset("default", quick=True).resolve()
    assert g.ensemble == "gaussian" and g.p is None and g.measurements(30, 30) == 900
    with pytest.raises(ValueError, match="n1 == n2"):
        ClaimSettings.preset("rectangular", ensemble="symmetric-gaussian")
    with pytest.raises(ValueError, match="completion ensemble only"):
        ClaimSettings.preset("default", ensemble="rank-one").with_overrides(["p=0.5"])


def test_reproduce_completion_quick_names_the_ensemble(tmp_path):
    out = tmp_path / "res"
    assert (
        cli.main(
            [
                "reproduce",
                "--ensemble",
                "completion",
                "--quick",
                "--claims",
                "C3",
                "--seeds",
                "1",
                "--workers",
                "1",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ensemble"] == "completion"
    assert summary["claims"][0]["settings"]["ensemble"] == "completion"
    assert "completion measurements" in (out / "report.html").read_text()


def test_reproduce_unknown_ensemble_is_one_line(capsys, tmp_path):
    assert cli.main(["reproduce", "--ensemble", "dense", "--out", str(tmp_path)]) == 2
    err = _one_line_error(capsys)
    assert "unknown ensemble 'dense'" in err and "completion, all" in err


def test_reproduce_all_writes_the_verdict_table(tmp_path):
    from matsense.experiments.ensembles import format_verdicts, reproduce_ensembles

    table = reproduce_ensembles(
        tmp_path, ("gaussian", "rank-one"), quick=True, seeds=1, claims=["C1"], workers=1
    )
    data = json.loads((tmp_path / "ensembles.json").read_text())
    assert [row["ensemble"] for row in data["ensembles"]] == ["gaussian", "rank-one"]
    assert set(data["ensembles"][0]["claims"]) == {"C1"}
    html = (tmp_path / "report.html").read_text()
    assert "Claims across ensembles" in html and 'href="rank-one/report.html"' in html
    assert (tmp_path / "rank-one" / "summary.json").exists()
    text = format_verdicts(table)
    assert text.splitlines()[0].split() == ["claim", "gaussian", "rank-one"]


def test_reproduce_all_checks_every_ensemble_before_running(capsys, tmp_path):
    assert (
        cli.main(
            ["reproduce", "--ensemble", "all", "--quick", "--set", "p=0.5", "--out", str(tmp_path)]
        )
        == 2
    )
    assert "completion ensemble only" in _one_line_error(capsys)
    assert not (tmp_path / "gaussian").exists()


def test_key_number_adds_the_reason_when_a_claim_fails():
    from matsense.experiments import ClaimResult
    from matsense.experiments.ensembles import key_number

    ok = ClaimResult("C3", "t", "rate 0.07 /iter; final rel. error 1e-13", "e", True)
    assert key_number(ok) == "rate 0.07 /iter"
    bad = ClaimResult(
        "C3",
        "t",
        "rate n/a /iter; final rel. error 0.47",
        "e",
        False,
        reason="seed 0: no valid linear fit; seed 1: ...",
    )
    assert key_number(bad) == "rate n/a /iter; final rel. error 0.47 — seed 0: no valid linear fit"
