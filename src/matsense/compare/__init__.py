"""Side-by-side comparison of the paper's GD / rebalanced GD with the peer methods (docs/methods.md).

On a grid κ ∈ {1, 10, 100} × k ∈ {r, 2r} every method runs from its usual
initialization until the relative error ‖P − M*‖_F/‖M*‖_F reaches ``tol``
(1e-10) or the iteration budget ends, over several seeds (seed s draws the
problem and the random initialization). Measured: iterations and wall time to
``tol`` (or the error reached), per seed and as medians.

Outputs (``compare(out_dir)``): ``compare.json`` (settings, records), a
Markdown table ``compare.md``, the curves ``compare_curves.csv``, one line
per finished run in ``compare_runs.jsonl`` (written as the runs end) and one
figure per setting (error vs iteration and vs time, PNG and SVG).
:func:`compare_section` / :func:`compare_html_section` turn records and figure
paths into the report's section; :func:`register` adds the ``matsense compare``
subcommand to an argparse parser.

The package, one job per module:

=============  ==============================================================
entries        the methods with their starts (:data:`ENTRIES`), the grid
               (:class:`CompareSettings`) and its presets :data:`FULL`, :data:`QUICK`
reference      the reference figures of docs/methods.md and the ±20% check
running        the runs of the grid and the records (medians over seeds)
outputs        compare.json, compare.md, compare_curves.csv
figures        error vs iteration / time per (κ, k), drawn with matsense.plots
section        the report section (a matsense.report.Section)
cli            ``matsense compare``
=============  ==============================================================

Settings of the full comparison (the reference runs of docs/methods.md): n = 100,
r = 5, m = 5nr, σ_i linearly spaced from 1 to 1/κ. The n = 100 operator holds
2500 × 10⁴ float64 (200 MB); every method and width k of a problem share one
stacked operator pass per iteration, so the full comparison (3 seeds) takes
≈ 10 min on two CPU cores (555–587 s measured, docs/methods.md); ``quick`` runs
a small problem in ≈ 10 s.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from .. import report
from .._files import atomic_write_text
from .cli import register
from .entries import (
    ALL_ENTRIES,
    ALL_KEYS,
    DEFAULT_SEEDS,
    ENTRIES,
    ENTRY_KEYS,
    FULL,
    QUICK,
    ROBUST_ENTRIES,
    CompareSettings,
    Entry,
)
from .figures import write_figures
from .outputs import markdown_table, write_curves, write_json
from .running import log, run_grid, seed_list
from .section import compare_html_section, compare_section


def compare(
    out_dir,
    *,
    quick: bool = False,
    seeds=None,
    progress: bool = False,
    settings: CompareSettings | None = None,
    figures: bool = True,
    workers: int | None = None,
    ensemble: str | None = None,
    methods=None,
    outliers: dict | None = None,
) -> list[dict]:
    """Run the comparison grid and write compare.json, compare.md, curves and figures.

    Parameters
    ----------
    out_dir : path
        Output folder (created).
    quick : bool
        Small problem (n = 30, r = 2, budget 1500; ≈ 10 s); default the full reference setting.
    seeds : int or sequence of int, optional
        A count N (seeds 0..N−1) or the seeds to draw with; default 3 (full) or 1 (quick).
    progress : bool
        Log each run to stderr.
    settings : CompareSettings, optional
        Overrides the preset chosen by ``quick`` (e.g. a tiny grid in tests).
    figures : bool
        Write the figures (PNG and SVG).
    workers : int, optional
        Processes for the (seed, κ) cells (default: the usable cores; 1: this process); the
        records do not depend on it. Scripts need an ``if __name__ == "__main__":`` guard.
    ensemble : str, optional
        The measurement ensemble (default gaussian, to which alone the reference figures apply).
    methods : sequence of str, optional
        Entries to run (keys of :data:`ALL_KEYS`); default the ℓ2 methods of :data:`ENTRIES`.
    outliers : dict, optional
        ``outlier_fraction`` (``outlier_scale``, ``outlier_mode``) on every problem (robust.md).

    Returns
    -------
    list of dict: one record per method × (κ, k), with per-seed results and medians.
    """
    from .._validate import not_in_worker_bootstrap

    not_in_worker_bootstrap("matsense.compare.compare()")
    settings = _settings(settings, quick, ensemble, methods, outliers)
    seeds = seed_list(seeds, settings.name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    log_path = out / "compare_runs.jsonl"
    log_path.write_text("")
    records, curves = run_grid(settings, seeds, log_path, progress, workers)
    run_seconds = time.perf_counter() - start
    total = _write_outputs(
        out, settings, seeds, records, curves, figures=figures, start=start, run_seconds=run_seconds
    )
    log(progress, f"done in {total:.1f} s; wrote {out / 'compare.json'}")
    return records


def _settings(settings: CompareSettings | None, quick: bool, ensemble, methods, outliers):
    """The grid to run: ``settings``, else the preset of ``quick``; with ``ensemble``,
    ``methods`` and ``outliers`` where given."""
    settings = settings if settings is not None else (QUICK if quick else FULL)
    changes = dict(outliers or {})
    unknown = sorted(set(changes) - {"outlier_fraction", "outlier_scale", "outlier_mode"})
    if unknown:
        raise ValueError(
            f"outliers takes outlier_fraction, outlier_scale, outlier_mode, got {unknown}"
        )
    if ensemble is not None:
        changes["ensemble"] = ensemble
    if methods is not None:
        changes["methods"] = tuple(methods)
    return dataclasses.replace(settings, **changes) if changes else settings


def _write_outputs(
    out: Path, settings, seeds, records, curves, *, figures: bool, start: float, run_seconds: float
) -> float:
    """Figures, compare_curves.csv, compare.json, compare.md and the report section; returns
    the seconds since ``start`` that compare.json and compare.md record."""
    figure_paths = write_figures(curves, settings, out, seeds[0]) if figures else []
    write_curves(curves, out / "compare_curves.csv")
    total = time.perf_counter() - start
    write_json(
        out / "compare.json",
        settings,
        seeds,
        records,
        run_seconds=run_seconds,
        total_seconds=total,
        figure_paths=figure_paths,
    )
    atomic_write_text(out / "compare.md", markdown_table(records, settings, seeds, total))
    report.publish_section(
        out, "compare", compare_section(records, [p.name for p in figure_paths]), order=2
    )
    return total


__all__ = [
    "compare",
    "compare_section",
    "compare_html_section",
    "register",
    "CompareSettings",
    "Entry",
    "FULL",
    "QUICK",
    "ENTRIES",
    "ENTRY_KEYS",
    "ROBUST_ENTRIES",
    "ALL_ENTRIES",
    "ALL_KEYS",
    "DEFAULT_SEEDS",
    "markdown_table",
    "write_curves",
    "write_figures",
]
