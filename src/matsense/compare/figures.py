"""The comparison's figures: relative error vs iteration and vs wall time, one figure per (κ, k).

Drawn with :mod:`matsense.plots` (its palette, panels and savers): one curve per
method, solid for F Gᵀ and dashed for X Xᵀ, the target error dotted, one legend
under both panels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import plots
from .entries import ALL_ENTRIES, ALL_KEYS, CompareSettings

#: Relative errors above this (divergence) are cut, and the first one is marked ×.
Y_CLIP = 1e2
ERROR_LABEL = "‖P − M*‖_F / ‖M*‖_F"


def _curves(c: dict, x_key: str) -> list[plots.Curve]:
    """The error curve of run ``c`` against ``x_key``, clipped at :data:`Y_CLIP`, with a × where it diverged."""
    entry = ALL_ENTRIES[ALL_KEYS.index(c["method"])]
    x, err = c[x_key], c["rel_error"]
    color = plots.color(ALL_KEYS.index(entry.key))
    linestyle = "--" if entry.symmetric else "-"
    ok = np.isfinite(err) & (err > 0)
    shown = ok & (err <= Y_CLIP)
    out = [plots.Curve(x[shown], err[shown], label=entry.label, color=color, linestyle=linestyle)]
    above = np.flatnonzero(ok & (err > Y_CLIP))
    if above.size:
        out.append(
            plots.Curve([x[above[0]]], [Y_CLIP], color=color, marker="x", markersize=8, zorder=3)
        )
    return out


def figure_panels(
    curves, settings: CompareSettings, kappa: float, k: int, seed: int
) -> list[plots.Panel]:
    """Error vs iteration and error vs wall time of every method at (κ, k) on seed ``seed``."""
    runs = [c for c in curves if c["kappa"] == float(kappa) and c["k"] == k and c["seed"] == seed]
    target = [plots.HLine(settings.tol, color="k", linewidth=0.6)]
    by_iteration = plots.Panel(
        "error vs iteration",
        "iteration",
        ERROR_LABEL,
        hlines=target,
        curves=[cv for c in runs for cv in _curves(c, "iteration")],
    )
    by_time = plots.Panel(
        "error vs wall time",
        "wall time (s)",
        ERROR_LABEL,
        hlines=target,
        curves=[cv for c in runs for cv in _curves(c, "time")],
    )
    return [by_iteration, by_time]


def write_figures(curves, settings: CompareSettings, out: Path, seed: int) -> list[Path]:
    """One figure per (κ, k): relative error vs iteration and vs time (seed ``seed``), PNG and SVG."""
    paths = []
    for kappa, mult, k in settings.grid():
        kname = "r" if mult == 1 else f"{mult}r"
        title = (
            f"κ = {kappa:g}, k = {kname} = {k}  (n = {settings.n}, r = {settings.r}, "
            f"m = {settings.m}; seed {seed}; solid: F Gᵀ, dashed: X Xᵀ; × diverged)"
        )
        paths += plots.save_panels(
            figure_panels(curves, settings, kappa, k, seed),
            Path(out) / f"compare_kappa{kappa:g}_k{k}",
            title,
            legend_columns=4,
        )
    return paths
