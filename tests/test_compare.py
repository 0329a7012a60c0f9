"""The peer comparison (matsense.compare) on a tiny grid: outputs, fields, HTML, CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from matsense import compare as C
from matsense import report
from matsense.compare import figures
from matsense.compare.reference import reference_check, reference_figure
from matsense.compare.running import aggregate

TINY = C.CompareSettings(
    n=8, r=1, m_factor=8, kappas=(1.0, 10.0), k_multipliers=(1, 2), max_iters=150, name="test"
)
REQUIRED = (
    "method",
    "kappa",
    "k",
    "iterations_to_tol",
    "seconds",
    "final_rel_error",
    "status",
    "seeds",
    "per_seed",
    "n_converged",
    "reference",
    "reference_check",
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    records = C.compare(out, settings=TINY, seeds=[0, 1])
    return out, records


def test_compare_writes_json_with_required_fields(tiny_run):
    out, records = tiny_run
    data = json.loads((out / "compare.json").read_text())
    assert data["seeds"] == [0, 1]
    assert data["settings"]["n"] == 8 and data["settings"]["m"] == 64
    recs = data["records"]
    assert len(recs) == len(records) == len(C.ENTRIES) * 2 * 2
    for rec in recs:
        for key in REQUIRED:
            assert key in rec, key
        assert rec["status"] in ("converged", "not_reached", "diverged", "mixed")
        assert len(rec["per_seed"]) == 2
        assert rec["seconds"] >= 0
        if rec["status"] == "converged":
            assert rec["iterations_to_tol"] is not None and rec["final_rel_error"] <= TINY.tol
        else:
            assert rec["iterations_to_tol"] is None
        for ps in rec["per_seed"]:
            assert ps["status"] != "converged" or ps["iterations_to_tol"] == ps["iterations"]
    keys = {(r["method"], r["kappa"], r["k"]) for r in recs}
    assert ("precgd", 10.0, 2) in keys and ("gd", 1.0, 1) in keys
    # Well-conditioned, exactly parameterized: the preconditioned methods converge.
    by = {(r["method"], r["kappa"], r["k"]): r for r in recs}
    for name in ("scaledgd", "precgd", "apgd"):
        assert by[(name, 1.0, 1)]["status"] == "converged", by[(name, 1.0, 1)]


def test_compare_writes_table_curves_and_figures(tiny_run):
    out, _ = tiny_run
    md = (out / "compare.md").read_text()
    assert md.startswith("# Peer comparison")
    assert "| method |" in md and "ScaledGD" in md and "PrecGD" in md
    for kappa in (1, 10):
        for k in (1, 2):
            for ext in ("png", "svg"):
                path = out / f"compare_kappa{kappa}_k{k}.{ext}"
                assert path.exists() and path.stat().st_size > 1000
    header = (out / "compare_curves.csv").read_text().splitlines()[0]
    assert header == "method,kappa,k,seed,iteration,time,rel_error"
    lines = (out / "compare_runs.jsonl").read_text().splitlines()
    assert len(lines) == len(C.ENTRIES) * 2 * 2 * 2


def test_html_section(tiny_run):
    out, records = tiny_run
    figs = sorted(p.name for p in out.glob("compare_kappa*"))
    html = C.compare_html_section(records, figs)
    assert html.startswith('<section id="peer-comparison">') and html.rstrip().endswith(
        "</section>"
    )
    assert html.count("<tr>") == len(records) + 1
    assert html.count("<img") == 4  # SVG preferred over the PNG of the same stem
    assert ".svg" in html and ".png" not in html
    assert "X Xᵀ" not in html or "&" in html  # escaped text is fine either way
    assert C.compare_html_section([], []).count("<tr>") == 1


def test_reference_figures_and_checks():
    ref = reference_figure(C.FULL, "scaledgd", 10.0, 5)
    assert ref["iterations"] == (252, 271)
    rec = {"iterations_to_tol": 300.0, "status": "converged", "final_rel_error": 9e-11}
    assert reference_check(ref, rec) == "within ±20%"
    rec["iterations_to_tol"] = 400.0
    assert reference_check(ref, rec) == "outside ±20%"
    gd100 = reference_figure(C.FULL, "gd", 100.0, 5)
    assert (
        reference_check(
            gd100, {"iterations_to_tol": None, "status": "not_reached", "final_rel_error": 1e-4}
        )
        == "agrees (not reached)"
    )
    assert reference_figure(C.FULL, "precgd", 1.0, 10)["iterations"] == (264, 281)
    assert reference_figure(C.FULL, "precgd", 1.0, 5) is None
    assert reference_figure(C.QUICK, "scaledgd", 1.0, 2) is None


def test_settings_and_seeds_validated(tmp_path):
    with pytest.raises(ValueError, match="methods must be"):
        C.CompareSettings(methods=("nope",))
    with pytest.raises(ValueError, match="kappa"):
        C.CompareSettings(kappas=(0.5,))
    with pytest.raises(ValueError, match="seeds"):
        C.compare(tmp_path, settings=TINY, seeds=0)
    with pytest.raises(ValueError, match="seed"):
        C.compare(tmp_path, settings=TINY, seeds=[-1])


def test_cli_register_and_handler(tmp_path, monkeypatch, capsys):
    small = C.CompareSettings(
        n=6,
        r=1,
        m_factor=8,
        kappas=(1.0,),
        k_multipliers=(1,),
        max_iters=60,
        methods=("scaledgd", "precgd"),
        name="quick",
    )
    monkeypatch.setattr(C, "QUICK", small)
    parser = argparse.ArgumentParser(prog="matsense")
    sub = parser.add_subparsers(dest="command")
    C.register(sub)
    args = parser.parse_args(["compare", "--out", str(tmp_path / "c"), "--quick", "--seeds", "1"])
    assert args.func(args) == 0
    assert (tmp_path / "c" / "compare.json").exists()
    assert "compare.json" in capsys.readouterr().out
    # bad input: the handler raises ValueError, the CLI prints one line and exits 2
    from matsense import cli

    assert cli.main(["compare", "--out", str(tmp_path / "d"), "--quick", "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert "seeds" in err and len(err.strip().splitlines()) == 1


def test_compare_and_reproduce_share_one_report(tmp_path):
    from matsense import experiments

    experiments.reproduce(tmp_path, quick=True, seeds=1, claims="C1")
    C.compare(tmp_path, settings=TINY, seeds=[0])
    page = (tmp_path / "report.html").read_text()
    assert 'id="peer-comparison"' in page and "C1" in page
    assert page.index("C1") < page.index('id="peer-comparison"')  # claims first, whatever ran last
    # re-running a producer replaces its section instead of adding a second copy
    C.compare(tmp_path, settings=TINY, seeds=[0])
    assert (tmp_path / "report.html").read_text().count('<section id="peer-comparison">') == 1


def test_final_error_ignores_diverged_seeds():
    """A diverged seed's last finite iterate (error ~1e5) must not be reported as the error."""
    entry = C.ENTRIES[0]
    method = entry.make_method(1.0)

    def seed(i, status, err):
        return {
            "seed": i,
            "status": status,
            "iterations": 40,
            "iterations_to_tol": None,
            "seconds": 0.1,
            "seconds_per_iteration": 0.0025,
            "final_rel_error": err,
            "budget": 150,
        }

    rec = aggregate(
        entry, method, TINY, 1.0, 1, [seed(0, "diverged", 3e5), seed(1, "not_reached", 2e-3)]
    )
    assert rec["status"] == "mixed" and rec["final_rel_error"] == 2e-3
    assert [p["final_rel_error"] for p in rec["per_seed"]] == [3e5, 2e-3]  # kept per seed
    rec = aggregate(
        entry, method, TINY, 1.0, 1, [seed(0, "diverged", 3e5), seed(1, "diverged", 1e6)]
    )
    assert rec["status"] == "diverged" and rec["final_rel_error"] is None
    row = [ln for ln in C.markdown_table([rec], TINY, [0, 1], 1.0).splitlines() if ln][-1]
    assert "| — | diverged |" in row and "e+05" not in row and "e+06" not in row


def test_section_is_a_report_section_with_the_markdown_cells(tiny_run):
    _, records = tiny_run
    sec = C.compare_section(records, ["a.png", "a.svg", "b.png"])
    assert isinstance(sec, report.Section) and sec.anchor == "peer-comparison"
    assert sec.table.header[0] == "method" and len(sec.table.rows) == len(records)
    assert [f.path for f in sec.figures] == ["a.svg", "b.png"]
    assert "1e-10" in sec.intro
    md = C.markdown_table(records, TINY, [0, 1], 1.0)
    assert all("| " + " | ".join(row) + " |" in md for row in sec.table.rows)


def test_figure_panels_cut_and_mark_a_diverged_curve():
    it = np.arange(6.0)
    run = {"kappa": 1.0, "k": 1, "seed": 0, "iteration": it, "time": it / 10}
    curves = [
        {**run, "method": "scaledgd", "rel_error": np.array([1, 0.5, 3, 50, 1e4, 1e7])},
        {**run, "method": "precgd", "rel_error": np.array([1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-11])},
        {**run, "method": "gd", "seed": 1, "rel_error": np.ones(6)},
    ]  # another seed: not shown
    by_it, by_time = figures.figure_panels(curves, TINY, 1.0, 1, 0)
    lines = [c for c in by_it.curves if c.marker is None]
    assert [c.label for c in lines] == ["ScaledGD (spectral)", "PrecGD on XXᵀ (small random)"]
    assert list(lines[0].y) == [1, 0.5, 3, 50] and lines[0].linestyle == "-"
    assert lines[1].linestyle == "--" and lines[0].color != lines[1].color
    marks = [c for c in by_it.curves if c.marker == "x"]
    assert len(marks) == 1 and list(marks[0].x) == [4.0] and list(marks[0].y) == [figures.Y_CLIP]
    assert [list(c.x) for c in by_time.curves if c.marker == "x"] == [[0.4]]
    assert by_it.hlines[0].y == TINY.tol == by_time.hlines[0].y


@pytest.mark.parametrize("kappa", [1.0, 10.0])
def test_stacked_cell_equals_one_method_at_a_time(kappa):
    """compare runs a cell's methods in lock-step (one stacked operator pass); every number of
    its table must be what each method gives when run alone (bitwise, timings aside)."""
    from matsense.compare.running import cell_runs, make_problem, one_run
    from matsense.operators import single_threaded

    settings = C.CompareSettings(
        n=10, r=2, m_factor=8, kappas=(kappa,), k_multipliers=(1, 2), max_iters=120, name="test"
    )
    stacked = cell_runs(settings, 0, kappa)
    entries = {e.key: e for e in settings.entries()}
    assert len(stacked) == 2 * len(entries)
    problems = {sym: make_problem(settings, kappa, sym, 0) for sym in (False, True)}
    with single_threaded():
        for key, k, res, curve, _ in stacked:
            entry = entries[key]
            alone, alone_curve, _ = one_run(entry, problems[entry.symmetric], settings, k, 0)
            for field in ("status", "iterations", "iterations_to_tol", "final_rel_error"):
                assert res[field] == alone[field], (key, k, field)
            for field in ("iteration", "rel_error"):
                np.testing.assert_array_equal(curve[field], alone_curve[field])
