"""Figures as plain data: curves on panels, saved as PNG and SVG (matplotlib, Agg).

A figure is a list of :class:`Panel` s, each with :class:`Curve` s (a line or
markers), optional vertical and horizontal markers (:class:`VLine`,
:class:`HLine`) and axis scales.
:func:`save_panels` draws them side by side and writes ``<stem>.png`` and
``<stem>.svg``. Nothing here knows about the claims or the methods: the
experiments build the panels from their trajectories (see
:mod:`matsense.experiments.claims`), and any other module (a peer comparison,
a sweep) can reuse the same functions.

No pyplot state is touched: figures are ``matplotlib.figure.Figure`` objects
rendered with the Agg canvas, so plotting is safe in threads and in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ._files import atomic_write

FORMATS = ("png", "svg")


def color(i: int) -> str:
    """The i-th colour of a fixed, colour-blind-friendly cycle (matplotlib's tab10)."""
    palette = [
        "#1f77b4",
        "#d62728",
        "#2ca02c",
        "#ff7f0e",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    return palette[i % len(palette)]


@dataclass
class Curve:
    """One line (or set of markers). Non-finite and, on log axes, non-positive points are dropped."""

    x: object
    y: object
    label: str | None = None
    color: str | None = None
    linestyle: str = "-"
    linewidth: float = 1.6
    alpha: float = 1.0
    marker: str | None = None
    markersize: float = 5.0
    zorder: float = 2.0


@dataclass
class VLine:
    """A vertical marker at ``x`` (e.g. the iteration of a switch)."""

    x: float
    label: str | None = None
    color: str = "0.4"
    linestyle: str = ":"


@dataclass
class HLine:
    """A horizontal marker at ``y`` (e.g. a target error)."""

    y: float
    label: str | None = None
    color: str = "0.4"
    linestyle: str = ":"
    linewidth: float = 1.0


@dataclass
class Panel:
    """One set of axes."""

    title: str
    xlabel: str
    ylabel: str
    curves: list = field(default_factory=list)
    vlines: list = field(default_factory=list)
    xscale: str = "linear"
    yscale: str = "log"
    legend_loc: str | None = "best"  # None: no legend in this panel
    note: str | None = None  # small text in the lower-left corner
    max_points: int = 400  # longer curves are thinned (evenly in x, or in log x on log axes)
    xticks: list | None = None  # explicit x ticks (e.g. the α values on a log axis)
    hlines: list = field(default_factory=list)


def _finite(curve: Curve, xscale: str, yscale: str):
    x = np.asarray(curve.x, dtype=float).ravel()
    y = np.asarray(curve.y, dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    if xscale == "log":
        keep &= x > 0
    if yscale == "log":
        keep &= y > 0
    return x[keep], y[keep]


def thin(x, y, max_points: int, log: bool = False):
    """At most ``max_points`` points of (x, y), evenly spread in x (in log x when ``log``), ends kept."""
    if x.size <= max_points:
        return x, y
    u = np.log(x) if log and np.all(x > 0) else x
    targets = np.linspace(u[0], u[-1], max_points)
    idx = np.unique(np.clip(np.searchsorted(u, targets), 0, x.size - 1))
    idx = np.unique(np.r_[0, idx, x.size - 1])
    return x[idx], y[idx]


def _decade_label(value, _pos=None) -> str:
    # Plain-text tick labels ("1e-08"): mathtext ("10^{-8}") costs most of the drawing time.
    if value <= 0 or not np.isfinite(value):
        return ""
    exponent = np.log10(value)
    if abs(exponent - round(exponent)) < 1e-9:
        return f"1e{int(round(exponent))}" if abs(exponent) >= 3 else f"{value:g}"
    return f"{value:.2g}"


def _plain_log_ticks(axis) -> None:
    from matplotlib import ticker

    class MinorLabels(ticker.Formatter):
        # Label the 2× and 5× minor ticks, but only on a short axis (< 2 decades), where
        # the decades alone would leave one or no labelled tick.
        def __call__(self, value, pos=None):
            lo, hi = sorted(self.axis.get_view_interval())
            if lo <= 0 or hi / lo >= 100 or value <= 0:
                return ""
            mantissa = value / 10 ** np.floor(np.log10(value))
            return f"{value:.2g}" if np.isclose(mantissa, 2) or np.isclose(mantissa, 5) else ""

    axis.set_major_formatter(ticker.FuncFormatter(_decade_label))
    axis.set_minor_formatter(MinorLabels())


def _null_formatter():
    from matplotlib import ticker

    return ticker.NullFormatter()


def draw_panel(ax, panel: Panel) -> None:
    """Draw ``panel`` on matplotlib axes ``ax``."""
    ax.set_xscale(panel.xscale)
    ax.set_yscale(panel.yscale)
    if panel.xscale == "log":
        _plain_log_ticks(ax.xaxis)
    if panel.yscale == "log":
        _plain_log_ticks(ax.yaxis)
    drawn = _draw_curves(ax, panel)
    _draw_reference_lines(ax, panel)
    if panel.xticks is not None:
        ticks = [float(v) for v in panel.xticks]
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.xaxis.set_minor_formatter(_null_formatter())
    if not drawn:
        ax.text(
            0.5,
            0.5,
            "no finite data",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="0.5",
        )
    ax.set_title(panel.title, fontsize=11)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.grid(True, which="major", alpha=0.3)
    if panel.note:
        ax.text(
            0.02,
            0.02,
            panel.note,
            transform=ax.transAxes,
            fontsize=8,
            color="0.3",
            va="bottom",
            ha="left",
        )
    handles, labels = ax.get_legend_handles_labels()
    if labels and panel.legend_loc is not None:
        ax.legend(loc=panel.legend_loc, fontsize=8, framealpha=0.85)


def _draw_curves(ax, panel: Panel) -> bool:
    """Plot the panel's curves (finite points, thinned); whether any was drawn."""
    drawn = False
    for c in panel.curves:
        x, y = _finite(c, panel.xscale, panel.yscale)
        if x.size == 0:
            continue
        if c.marker is None and np.all(np.diff(x) > 0):
            x, y = thin(x, y, panel.max_points, log=panel.xscale == "log")
        ax.plot(
            x,
            y,
            label=c.label,
            color=c.color,
            linestyle=c.linestyle,
            linewidth=c.linewidth,
            alpha=c.alpha,
            marker=c.marker,
            markersize=c.markersize,
            zorder=c.zorder,
        )
        drawn = True
    return drawn


def _draw_reference_lines(ax, panel: Panel) -> None:
    """The panel's vertical and horizontal reference lines (finite ones; > 0 on a log y axis)."""
    for v in panel.vlines:
        if np.isfinite(v.x):
            ax.axvline(v.x, color=v.color, linestyle=v.linestyle, linewidth=1.0, label=v.label)
    for h in panel.hlines:
        if np.isfinite(h.y) and (panel.yscale != "log" or h.y > 0):
            ax.axhline(
                h.y, color=h.color, linestyle=h.linestyle, linewidth=h.linewidth, label=h.label
            )


def _labelled_artists(axes) -> dict:
    """label -> first artist with that label, over ``axes`` in order."""
    out: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            out.setdefault(label, handle)
    return out


def figure(panels, suptitle: str | None = None, panel_size=(5.6, 4.2), legend_columns: int = 0):
    """A ``matplotlib.figure.Figure`` with ``panels`` side by side.

    ``legend_columns`` > 0: one legend for the whole figure, under the panels, in that
    many columns (each label once), instead of one legend per panel; for figures whose
    panels share many labelled curves.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = list(panels)
    if not panels:
        raise ValueError("a figure needs at least one panel")
    if legend_columns:
        panels = [replace(p, legend_loc=None) for p in panels]
    fig = Figure()
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        draw_panel(ax, panel)
    shared = _labelled_artists(axes) if legend_columns else {}
    below = 0.1 + 0.2 * -(-len(shared) // legend_columns) if shared else 0.0
    w, h = panel_size
    width, height = w * len(panels), h + (0.3 if suptitle else 0.0) + below
    fig.set_size_inches(width, height)
    # Fixed margins in inches (room for tick labels, axis labels and titles): a layout
    # engine would measure every text twice and costs about a third of the drawing time.
    left, right, bottom, top = 0.85, 0.2, 0.6 + below, 0.35 + (0.3 if suptitle else 0.0)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=(left + right) / (w - left - right),
    )
    if shared:
        fig.legend(
            list(shared.values()),
            list(shared),
            loc="lower center",
            ncol=legend_columns,
            fontsize=8,
            frameon=False,
            bbox_to_anchor=(0.5, 0.05 / height),
        )
    if suptitle:
        fig.suptitle(suptitle, fontsize=12, y=1 - 0.08 / height, va="top")
    return fig


def save_panels(
    panels, stem, suptitle: str | None = None, formats=FORMATS, legend_columns: int = 0
) -> list[Path]:
    """Draw ``panels`` and write ``stem.png`` and ``stem.svg``; return the paths written.

    ``legend_columns``: see :func:`figure`.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig = figure(panels, suptitle, legend_columns=legend_columns)
    paths = []
    for fmt in formats:
        # Appended, not with_suffix: a stem may hold a dot ("compare_kappa2.5_k4").
        path = stem.parent / f"{stem.name}.{fmt}"
        # Atomic (temp file, then rename): a kill or a full disk never leaves a truncated
        # figure, and a full disk is reported naming this file.
        atomic_write(
            path, lambda fh, fmt=fmt: fig.savefig(fh, format=fmt, dpi=110 if fmt == "png" else None)
        )
        paths.append(path)
    return paths


def seeded_curves(
    x_per_seed,
    y_per_seed,
    *,
    label: str,
    color: str,
    linestyle: str = "-",
    marker: str | None = None,
) -> list[Curve]:
    """One curve per seed in one colour: the first seed bold and labelled, the others faint."""
    curves = []
    for i, (x, y) in enumerate(zip(x_per_seed, y_per_seed)):
        first = i == 0
        curves.append(
            Curve(
                x,
                y,
                label=label if first else None,
                color=color,
                linestyle=linestyle,
                linewidth=1.8 if first else 0.9,
                alpha=1.0 if first else 0.45,
                marker=marker if first else None,
                zorder=3 if first else 2,
            )
        )
    return curves


# ------------------------------------------------------------------ results
#: The history key each :func:`plot_trajectory` default draws, in order of preference, and its label.
ERROR_KEYS = {
    "rel_error": "‖P − M*‖_F / ‖M*‖_F",
    "error": "‖P − M*‖_F",
    "residual_norm": "‖A(P) − y‖ (residual)",
}  # 𝒜: no glyph in matplotlib's font


def method_phases(config: dict, extras: dict) -> tuple:
    """The phases of one trajectory, from its ``config`` (method name and hyper-parameters)
    and its ``extras`` (:class:`~matsense.methods.Phase` s, one for methods of your own
    that :data:`~matsense.methods.METHODS` does not know), for records that do not carry
    them: a trajectory stores its own (``traj.phases``)."""
    import dataclasses

    from .methods import METHODS, Phase, phases_of

    cls = METHODS.get(config.get("method"))
    if cls is None:
        return (Phase("run"),)
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        method = cls(**{k: v for k, v in config.items() if k in names})
    except (TypeError, ValueError):
        return (Phase("run"),)
    return phases_of(method, extras)


def trajectory_panel(traj, y: str | None = None, title: str | None = None) -> Panel:
    """A :class:`Panel` of a :class:`~matsense.Trajectory` or
    :class:`~matsense.BatchTrajectory`: ``history[y]`` against the iteration, log scale,
    one curve per trajectory, each phase's start (e.g. the rebalancing switch) a vertical line.

    ``y`` defaults to the first of ``rel_error``, ``error``, ``residual_norm`` the history has.
    """
    history = traj.history
    if y is None:
        y = next(key for key in ERROR_KEYS if key in history)
    if y not in history or y == "iteration":
        keys = ", ".join(k for k in history if k != "iteration")
        raise ValueError(f"y must be one of the recorded quantities ({keys}), got {y!r}")
    members = list(traj) if traj.batched else [traj]
    method = traj.config.get("method", "run")
    panel = Panel(
        title if title is not None else method,
        "iteration t",
        ERROR_KEYS.get(y, y),
        legend_loc="best" if len(members) <= 10 else None,
    )
    for i, member in enumerate(members):
        h = member.history
        col = color(i)
        label = f"trajectory {member.index}" if traj.batched else None
        values = np.asarray(h[y]).reshape(len(h["iteration"]), -1)  # σ's: one curve per column
        for j in range(values.shape[1]):
            panel.curves.append(
                Curve(h["iteration"], values[:, j], label=label if j == 0 else None, color=col)
            )
        for phase in member.phases:
            if phase.event:
                tag = f"{phase.event}" + (f" ({member.index})" if traj.batched else "")
                panel.vlines.append(
                    VLine(phase.start, label=tag, color=col if traj.batched else "0.4")
                )
    if not traj.batched:
        panel.note = f"{member.status}, {member.iterations} iterations"
    return panel


def plot_trajectory(traj, ax=None, *, y: str | None = None, title: str | None = None):
    """Draw :func:`trajectory_panel` on ``ax`` and return the axes.

    Without ``ax`` a new figure is made through ``matplotlib.pyplot`` (so that a notebook
    or sphinx-gallery shows it); ``Trajectory.plot()`` and ``BatchTrajectory.plot()`` call this.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    draw_panel(ax, trajectory_panel(traj, y=y, title=title))
    return ax


__all__ = [
    "Curve",
    "VLine",
    "HLine",
    "Panel",
    "figure",
    "draw_panel",
    "save_panels",
    "seeded_curves",
    "color",
    "thin",
    "FORMATS",
    "ERROR_KEYS",
    "method_phases",
    "trajectory_panel",
    "plot_trajectory",
]
