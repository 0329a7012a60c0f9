"""``matsense compare`` with the robust methods and outliers (issue #22 part 6)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matsense import compare as C
from matsense.cli import main

TINY = C.CompareSettings(
    n=12,
    r=2,
    m_factor=5,
    kappas=(1.0, 10.0),
    k_multipliers=(1,),
    max_iters=400,
    name="test",
    methods=("gd", "scaledgd", "subgm", "scaledsm"),
    outlier_fraction=0.1,
)


@pytest.fixture(scope="module")
def robust_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rcompare")
    records = C.compare(out, settings=TINY, seeds=[0], figures=False, workers=1)
    return out, records


def _rec(records, key, kappa):
    return next(r for r in records if r["method"] == key and r["kappa"] == kappa)


def test_records_for_each_method_and_settings(robust_run):
    out, records = robust_run
    data = json.loads((out / "compare.json").read_text())
    assert [r["method"] for r in data["records"]] == ["gd", "scaledgd", "subgm", "scaledsm"] * 2
    s = data["settings"]
    assert s["outlier_fraction"] == 0.1 and s["outlier_scale"] == 10.0
    assert s["outlier_mode"] == "add"
    assert s["methods"] == ["gd", "scaledgd", "subgm", "scaledsm"]
    for rec in records:
        # No reference figure applies under outliers, for any method.
        assert rec["reference"] is None and rec["reference_check"] is None
    assert _rec(records, "scaledsm", 1.0)["init"] == "spectral_trimmed"
    assert "Polyak" in _rec(records, "subgm", 1.0)["hyper_parameters"]
    assert "Outliers (add) on a fraction 0.1" in (out / "compare.md").read_text()
    logged = (out / "compare_runs.jsonl").read_text().strip().splitlines()
    assert len(logged) == 8


def test_scaledsm_recovers_where_gd_does_not(robust_run):
    _, records = robust_run
    for kappa in TINY.kappas:
        sm = _rec(records, "scaledsm", kappa)
        assert sm["status"] == "converged" and sm["final_rel_error"] <= 1e-10
        for key in ("gd", "scaledgd"):
            err = _rec(records, key, kappa)["per_seed"][0]["final_rel_error"]
            assert not err < 1e-2, (key, kappa, err)  # ℓ2 fits the outliers (or diverges)


def test_outliers_change_the_problem_only_when_given():
    from matsense.compare.running import make_problem

    clean = make_problem(C.CompareSettings(n=12, r=2), 1.0, False, 0)
    dirty = make_problem(TINY, 1.0, False, 0)
    diff = np.asarray(dirty.y) - np.asarray(clean.y)
    assert np.count_nonzero(diff) == round(0.1 * TINY.m)
    assert C.CompareSettings(n=12, r=2).outliers() == {}
    assert "outlier_fraction" not in C.CompareSettings(n=12, r=2).as_dict()


def test_robust_entries_not_in_default():
    assert C.FULL.methods == C.ENTRY_KEYS == tuple(e.key for e in C.ENTRIES)
    assert {"subgm", "scaledsm"} <= set(C.ALL_KEYS) - set(C.ENTRY_KEYS)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--methods", "gd,foo"], "--methods: unknown foo; allowed: gd, rebalanced_gd"),
        (["--methods", ","], "--methods: unknown empty list"),
        (["--outlier-fraction", "1.5"], "outlier_fraction must be a number in [0, 1), got 1.5"),
        (["--outlier-fraction", "0.1", "--outlier-scale", "-1"], "outlier_scale"),
        (["--outlier-fraction", "0.1", "--outlier-mode", "swap"], "add, replace, got 'swap'"),
        (["--outlier-scale", "3"], "need --outlier-fraction"),
    ],
)
def test_bad_values_one_line(tmp_path, capsys, argv, words):
    assert main(["compare", "--quick", "--out", str(tmp_path / "o"), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err, err


def test_outliers_and_methods_refused_with_data(tmp_path, capsys):
    path = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(path, A=rng.standard_normal((40, 6, 6)), y=rng.standard_normal(40))
    for flag, value in (("--outlier-fraction", "0.1"), ("--methods", "gd")):
        argv = ["compare", "--data", str(path), "--k", "1", "--out", str(tmp_path / "o")]
        assert main([*argv, flag, value, "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"{flag} cannot be used with it" in err, err
