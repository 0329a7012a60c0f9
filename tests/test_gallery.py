"""Every example of the documentation's gallery (examples/gallery/plot_*.py) runs, at the tiny
sizes it takes under MATSENSE_GALLERY_TINY=1, and draws at least one figure; the gallery has
the 8–12 examples the site promises, each with a title."""

from __future__ import annotations

import ast
import runpy
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

GALLERY = Path(__file__).resolve().parents[1] / "examples" / "gallery"
EXAMPLES = sorted(GALLERY.glob("plot_*.py"))


def test_the_gallery_has_eight_to_twelve_titled_examples():
    assert 8 <= len(EXAMPLES) <= 12
    for path in EXAMPLES:
        doc = ast.get_docstring(ast.parse(path.read_text()))
        lines = (doc or "").strip().splitlines()
        # sphinx-gallery's title: the docstring's first line, underlined with '='.
        assert len(lines) >= 3 and set(lines[1]) == {"="}, path.name
        assert "MATSENSE_GALLERY_TINY" in path.read_text(), f"{path.name} has no tiny size"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_and_draws(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MATSENSE_GALLERY_TINY", "1")
    monkeypatch.chdir(tmp_path)
    plt.close("all")
    try:
        runpy.run_path(str(path), run_name="__main__")
        figures = [plt.figure(num) for num in plt.get_fignums()]
        assert figures, f"{path.name} drew no figure"
        assert all(fig.axes and any(ax.has_data() for ax in fig.axes) for fig in figures)
    finally:
        plt.close("all")
