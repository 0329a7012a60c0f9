"""Figures from a results store: one column of the runs table against another."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._files import atomic_write
from .store import load

LABELS = {
    "rate": "linear rate  −d log‖P − M*‖/dt",
    "alpha": "initialization scale α",
    "k": "factor columns k",
    "iterations": "iterations",
    "final_rel_error": "final ‖P − M*‖_F / ‖M*‖_F",
    "final_error": "final ‖P − M*‖_F",
    "wall_time": "wall time per run (s)",
    "step_size": "step size η",
}


def _numeric(series, name: str):
    import pandas as pd

    values = pd.to_numeric(series, errors="coerce")
    if values.notna().sum() == 0 and series.notna().any():
        raise ValueError(
            f"column {name!r} is not numeric (e.g. {series.dropna().iloc[0]!r}); "
            "use it as --hue instead"
        )
    return values.to_numpy(dtype=float)


def plot_store(
    out_dir,
    x: str,
    y: str,
    hue: str | None = None,
    logx: bool = False,
    logy: bool = False,
    out=None,
):
    """Plot column ``y`` against column ``x`` of a store's runs table.

    Every finished run (not 'failed') with finite values is a point; a line
    joins the median of ``y`` at each ``x``, one per value of ``hue``. With
    both axes logarithmic, the legend gives each line's log-log slope (for
    the paper's C4 claim, rate ∝ α²: slope ≈ 2).

    Parameters
    ----------
    out_dir : path
        A store written by :func:`run_sweep`.
    x, y : str
        Column names of the runs table (e.g. 'alpha', 'rate').
    hue : str, optional
        Column whose values get one line each (e.g. 'k').
    logx, logy : bool
        Logarithmic axes (non-positive values are dropped).
    out : path, optional
        Write the figure there (.png, .pdf or .svg).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if out is not None and Path(out).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ValueError(f"the figure file must end in .png, .pdf or .svg, got {str(out)!r}")
    xs, ys, hues = _points(out_dir, x, y, hue, logx, logy)
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    _draw(ax, xs, ys, hues, hue, logx, logy)
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(f"{y} vs {x} — {Path(out_dir).name} ({xs.size} runs)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=9)
    if out is not None:
        _save(fig, Path(out))
    return fig


def _points(out_dir, x: str, y: str, hue, logx: bool, logy: bool):
    """(x, y, hue) of every finished run with finite values (positive on a log axis)."""
    runs = load(out_dir, history=False).runs
    if runs.empty or "status" not in runs:
        raise ValueError(f"no runs in {out_dir} to plot")
    for role, col in (("x", x), ("y", y), ("hue", hue)):
        if col is not None and col not in runs.columns:
            cols = ", ".join(c for c in runs.columns if c != "part")
            raise ValueError(f"{role} column {col!r} is not in the runs table; columns: {cols}")
    runs = runs[runs["status"] != "failed"]
    xs, ys = _numeric(runs[x], x), _numeric(runs[y], y)
    keep = np.isfinite(xs) & np.isfinite(ys)
    if logx:
        keep &= xs > 0
    if logy:
        keep &= ys > 0
    if not keep.any():
        raise ValueError(
            f"no finite {'positive ' if logx or logy else ''}values of {x!r} and "
            f"{y!r} to plot in {out_dir} ({len(runs)} finished runs)"
        )
    hues = (
        runs[hue].to_numpy()[keep]
        if hue is not None
        else np.array(["all"] * int(keep.sum()), dtype=object)
    )
    return xs[keep], ys[keep], hues


def _draw(ax, xs, ys, hues, hue, logx: bool, logy: bool) -> None:
    """The points and, per hue, the line through the median y at each x (with its log-log slope)."""
    for i, h in enumerate(_sorted_unique(hues)):
        sel = hues == h
        color = f"C{i % 10}"
        ax.scatter(xs[sel], ys[sel], s=14, alpha=0.45, color=color, linewidths=0)
        ux = np.unique(xs[sel])
        med = np.array([np.median(ys[sel][xs[sel] == v]) for v in ux])
        label = f"{hue}={h}" if hue is not None else None
        if logx and logy and ux.size >= 2:
            slope = np.polyfit(np.log(ux), np.log(med), 1)[0]
            label = f"{label}, slope {slope:.2f}" if label else f"slope {slope:.2f}"
        ax.plot(ux, med, "-o", color=color, ms=4, lw=1.4, label=label)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")


def _save(fig, out: Path) -> None:
    """Write the figure (atomically where the name has a suffix)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fmt = out.suffix.lstrip(".").lower()
    if fmt:  # atomic: a kill or a full disk (named) never leaves a truncated figure
        atomic_write(out, lambda fh: fig.savefig(fh, format=fmt, dpi=120))
    else:
        fig.savefig(out, dpi=120)


def _sorted_unique(values):
    uniq = list(dict.fromkeys(values.tolist()))
    try:
        return sorted(uniq)
    except TypeError:
        return uniq
