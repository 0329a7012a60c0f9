"""summary.json schema, report.html, the text table and the plotting helpers."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from matsense import plots, report
from matsense.experiments import ClaimResult, ClaimSettings, format_table, load_summary, reproduce

SMALL = ClaimSettings.quick().replace(n_seeds=1, exact_iters=400)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    results = reproduce(out, claims=["C1", "C3"], settings=SMALL, seeds=[0])
    return out, results


def test_summary_json_schema(out):
    out_dir, results = out
    data = json.loads((out_dir / "summary.json").read_text())
    assert set(data) == {"suite", "ensemble", "claims"} and data["ensemble"] == "gaussian"
    assert data["suite"] == "paper"
    assert [c["id"] for c in data["claims"]] == ["C1", "C3"]
    for c in data["claims"]:
        for key in (
            "id",
            "title",
            "measured",
            "expected",
            "holds",
            "details",
            "figures",
            "reason",
            "seeds",
            "settings",
            "seconds",
        ):
            assert key in c, key
        assert isinstance(c["holds"], bool) and c["holds"] is True
        assert isinstance(c["measured"], str) and isinstance(c["expected"], str)
        assert c["reason"] is None
        assert c["seeds"] == [0]
        assert c["settings"]["eta"] == 0.3 and c["settings"]["mode"] == "quick"
        rate = c["details"]["rate"]
        assert set(rate) == {"median", "min", "max", "n"} and rate["n"] == len(
            SMALL.resolve().alphas
        )
        assert {p.rsplit(".", 1)[1] for p in c["figures"]} == {"png", "svg"}
        assert all((out_dir / p).is_file() for p in c["figures"])
    # strict JSON: no NaN / Infinity tokens
    json.loads((out_dir / "summary.json").read_text(), parse_constant=lambda s: pytest.fail(s))


def test_summary_round_trip(out):
    out_dir, results = out
    loaded = load_summary(out_dir / "summary.json")
    assert [r.id for r in loaded] == [r.id for r in results]
    assert [r.measured for r in loaded] == [r.measured for r in results]


def test_report_html_has_table_and_figures(out):
    out_dir, results = out
    page = (out_dir / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<table>" in page
    for r in results:
        assert f"<td>{r.id}</td>" in page
        assert r.measured.replace("&", "&amp;") in page or r.measured in page
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert srcs and all(s.startswith("figures/") and s.endswith(".png") for s in srcs)
    assert all((out_dir / s).is_file() for s in srcs)
    hrefs = re.findall(r'href="([^"#]+)"', page)
    assert any(h.endswith(".svg") for h in hrefs)
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "2 of 2 claims hold" in page


def test_report_sections_can_be_appended(tmp_path, out):
    out_dir, results = out
    extra = report.Section(
        "Peer comparison",
        intro="methods side by side",
        table=report.Table(["method", "iterations"], [["GD", 300], ["ScaledGD", 40]]),
        html="<p>raw <b>html</b></p>",
    )
    path = report.write_report(tmp_path, [report.claims_section(results), extra], title="T")
    page = path.read_text()
    assert page.index("Claims C1–C8") < page.index("Peer comparison")
    assert "<td>ScaledGD</td>" in page and "<p>raw <b>html</b></p>" in page
    assert 'href="#peer-comparison"' in page


def test_failing_claim_shows_reason(tmp_path):
    r = ClaimResult("C9", "a claim", "1", "2", False, reason="because <x>")
    page = report.render([report.claims_section([r])])
    assert "does not hold" in page and "because &lt;x&gt;" in page


def test_format_table(out):
    _, results = out
    text = format_table(results)
    assert "claim" in text and "measured" in text and "holds" in text
    assert "C1" in text and "C3" in text and "2/2 claims hold" in text
    lines = text.splitlines()
    assert len({len(l) for l in lines if l.startswith(("|", "+"))}) == 1  # aligned columns


def test_plots_write_png_and_svg_and_tolerate_nan(tmp_path):
    x = np.arange(5000.0)
    panels = [
        plots.Panel(
            "ok",
            "t",
            "err",
            curves=[plots.Curve(x, np.exp(-x / 500), label="a")],
            vlines=[plots.VLine(100, label="switch")],
        ),
        plots.Panel(
            "empty", "t", "err", curves=[plots.Curve([1, 2], [np.nan, np.nan])], xscale="log"
        ),
    ]
    paths = plots.save_panels(panels, tmp_path / "sub" / "fig", suptitle="s")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(
        p.stat().st_size > 0 for p in paths
    )
    xt, yt = plots.thin(x, np.exp(-x), 100)
    assert xt.size <= 102 and xt[0] == 0 and xt[-1] == x[-1]
    xl, _ = plots.thin(x + 1, x, 50, log=True)
    assert np.all(np.diff(xl) > 0) and xl[-1] == x[-1] + 1


def test_plots_hline_shared_legend_and_dotted_stem(tmp_path):
    x = np.arange(1.0, 100.0)
    panels = [
        plots.Panel(
            "a",
            "t",
            "err",
            hlines=[plots.HLine(1e-2, label="target")],
            curves=[plots.Curve(x, 1 / x, label="one"), plots.Curve(x, 2 / x, label="two")],
        ),
        plots.Panel(
            "b", "t", "err", curves=[plots.Curve(x, 1 / x, label="one")], hlines=[plots.HLine(-1.0)]
        ),
    ]  # not drawable on a log axis: skipped
    fig = plots.figure(panels, "s", legend_columns=2)
    assert [ax.get_legend() for ax in fig.axes] == [None, None] and len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["one", "two", "target"]
    assert list(fig.axes[0].get_lines()[-1].get_ydata()) == [1e-2, 1e-2]
    assert len(fig.axes[1].get_lines()) == 1
    default = plots.figure(panels, "s")
    assert default.legends == [] and all(ax.get_legend() is not None for ax in default.axes)
    assert fig.get_size_inches()[1] > default.get_size_inches()[1]  # room for the legend
    paths = plots.save_panels(panels, tmp_path / "k2.5_fig", legend_columns=2)
    assert [p.name for p in paths] == ["k2.5_fig.png", "k2.5_fig.svg"]
