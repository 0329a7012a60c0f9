"""Notebook display: the HTML summaries that Jupyter shows for matsense's results.

``Trajectory``, ``BatchTrajectory``, :class:`~matsense.rates.Fit` and the reproduction's
verdicts (:class:`~matsense.experiments.ClaimResult`, the list that
:func:`matsense.experiments.reproduce` returns) have a ``_repr_html_`` that calls a function
of this module; each returns one self-contained ``<div>`` (inline styles only: no CSS or
script from elsewhere), with every text HTML-escaped. Plain ``repr`` stays the one-line form
for terminals.
"""

from __future__ import annotations

import html
import math

#: Rows of a batch or a verdict table shown before "… N more".
MAX_ROWS = 20

_TABLE = "border-collapse:collapse;font-size:0.9em;margin:0.3em 0"
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left"
_STATUS_COLORS = {
    "converged": "#2ca02c",
    "max_iters": "#7f7f7f",
    "diverged": "#d62728",
    "stopped": "#ff7f0e",
}


def _text(value) -> str:
    """A cell's text: numbers to 4 significant digits, everything escaped."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return html.escape(str(value))


def _status(status) -> str:
    from .trajectory import Status

    status = Status(str(status)) if str(status) in Status.__members__.values() else status
    colour = _STATUS_COLORS.get(str(status), "#000")
    title = getattr(status, "message", "")
    return (
        f'<span style="color:{colour};font-weight:bold" title="{html.escape(title)}">'
        f"{html.escape(str(status))}</span>"
    )


def _table(header, rows, total: int | None = None) -> str:
    head = "".join(f'<th style="{_CELL}">{html.escape(h)}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{cell}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    more = ""
    if total is not None and total > len(rows):
        more = (
            f'<tr><td style="{_CELL}" colspan="{len(header)}">… {total - len(rows)} more</td></tr>'
        )
    return f'<table style="{_TABLE}"><tr>{head}</tr>{body}{more}</table>'


def _box(title: str, inner: str) -> str:
    style = "font-family:sans-serif;line-height:1.35;overflow-x:auto"
    return f'<div class="matsense-repr" style="{style}"><strong>{title}</strong>{inner}</div>'


def _method_line(config: dict) -> str:
    run_keys = ("iters", "tol", "record_every", "batch", "kernel", "method")
    params = ", ".join(f"{k}={v!r}" for k, v in config.items() if k not in run_keys)
    return html.escape(f"{config.get('method', '?')}({params})")


def _phases(traj) -> str:
    phases = traj.phases
    if len(phases) < 2:
        return ""
    parts = [f"{p.name} [{p.start}, {'end' if p.end is None else p.end})" for p in phases]
    return html.escape("; ".join(parts))


def trajectory_html(traj) -> str:
    """The HTML summary of one :class:`~matsense.Trajectory`: method, status, iterations,
    final errors, wall time, phases and the method's events (``extras``)."""
    (row,) = traj.summary()
    rows = [
        ("method", _method_line(traj.config)),
        ("status", _status(traj.status)),
        ("iterations", _text(row["iterations"])),
    ]
    for key in ("final_rel_error", "final_error", "final_residual_norm", "final_loss"):
        if key in row:
            rows.append(
                (key.removeprefix("final_").replace("_", " ") + " (last record)", _text(row[key]))
            )
    rows.append(("wall time", f"{traj.wall_time:.3g} s"))
    phases = _phases(traj)
    if phases:
        rows.append(("phases", phases))
    rows += [(html.escape(key), _text(val)) for key, val in traj.extras.items()]
    body = "".join(
        f'<tr><th style="{_CELL}">{k}</th><td style="{_CELL}">{v}</td></tr>' for k, v in rows
    )
    return _box("Trajectory", f'<table style="{_TABLE}">{body}</table>')


def batch_html(batch) -> str:
    """The HTML summary of a :class:`~matsense.BatchTrajectory`: the method, a count per
    status and one row per trajectory (status, iterations, final errors, events)."""
    summary = batch.summary()
    counts: dict[str, int] = {}
    for row in summary:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    tally = ", ".join(f"{_status(s)} × {n}" for s, n in counts.items())
    keys = [k for k in summary[0] if k not in ("trajectory", "status")] if summary else []
    header = ["trajectory", "status", *keys]
    rows = [
        [_text(r["trajectory"]), _status(r["status"]), *(_text(r[k]) for k in keys)]
        for r in summary[:MAX_ROWS]
    ]
    title = f"BatchTrajectory: {len(summary)} trajectories"
    inner = (
        f"<div>{_method_line(batch.config)}; wall time {batch.wall_time:.3g} s</div>"
        f"<div>{tally}</div>{_table(header, rows, len(summary))}"
    )
    return _box(html.escape(title), inner)


def fit_html(fit) -> str:
    """The HTML summary of a :class:`~matsense.rates.Fit`: value, window, points, r²."""
    if math.isnan(fit.value):
        return _box("Fit", f"<div>no fit: {html.escape(fit.reason or 'not enough points')}</div>")
    inner = (
        f"<div>value <strong>{fit.value:.4g}</strong> on iterations "
        f"[{fit.t_start:g}, {fit.t_end:g}] ({fit.n_points} records), r² = {fit.r2:.4f}</div>"
    )
    return _box("Fit", inner)


def _verdict(holds: bool) -> str:
    colour, word = ("#2ca02c", "holds") if holds else ("#d62728", "does not hold")
    return f'<span style="color:{colour};font-weight:bold">{word}</span>'


def verdicts_html(results) -> str:
    """The HTML table of the reproduction's verdicts (a sequence of
    :class:`~matsense.experiments.ClaimResult`): claim, measured, expected, verdict, reason."""
    results = list(results)
    rows = [
        [
            html.escape(r.id),
            html.escape(r.title),
            html.escape(r.measured),
            html.escape(r.expected),
            _verdict(r.holds),
            html.escape(r.reason or ""),
        ]
        for r in results[:MAX_ROWS]
    ]
    held = sum(bool(r.holds) for r in results)
    title = f"{held} of {len(results)} claims hold"
    return _box(
        html.escape(title),
        _table(
            ["claim", "statement", "measured", "expected", "verdict", "reason"], rows, len(results)
        ),
    )


__all__ = ["trajectory_html", "batch_html", "fit_html", "verdicts_html", "MAX_ROWS"]
