"""The outcome of a claim experiment as plain data: :class:`ClaimResult`.

A result carries the measured and the expected value as short human-readable
strings (for the table and the report) and the raw numbers behind them in
``details`` (medians and min–max spreads over seeds, the fit windows, one
record per trajectory), so ``summary.json`` can be checked without re-running.
"""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class ClaimResult:
    """Verdict of one claim of docs/claims.md.

    Attributes
    ----------
    id, title : str
        'C1'…'C8' and a one-line statement of the claim.
    measured, expected : str
        What was measured (median and [min, max] over seeds) and what the
        theory expects, in words and numbers.
    holds : bool
        Whether every criterion of the claim was met.
    details : dict
        Raw numbers: per-trajectory records, spreads, windows, criteria.
    figures : list of str
        Figure files, relative to the output directory (PNG and SVG).
    reason : str or None
        Why the claim does not hold (None when it holds).
    seeds : list of int
    settings : dict
        The :class:`~matsense.experiments.settings.ClaimSettings` used.
    seconds : float
        Wall time of the claim's own runs and analysis.
    caption : str
        What the claim's figure shows (the report's caption).
    """

    id: str
    title: str
    measured: str
    expected: str
    holds: bool
    details: dict = field(default_factory=dict)
    figures: list = field(default_factory=list)
    reason: str | None = None
    seeds: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0
    caption: str = ""

    def as_dict(self) -> dict:
        """JSON-ready dict (NaN and infinities become None, arrays lists)."""
        d = asdict(self)
        d["holds"] = bool(self.holds)
        return jsonable(d)

    @classmethod
    def from_dict(cls, d: dict) -> ClaimResult:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})

    def _repr_html_(self) -> str:
        """Jupyter's summary: the claim's row of the verdict table (:mod:`matsense.display`)."""
        from ..display import verdicts_html

        return verdicts_html([self])


class Verdicts(list):
    """The list of :class:`ClaimResult` that :func:`~matsense.experiments.reproduce` and
    :func:`load_summary` return: a plain ``list`` that Jupyter shows as the verdict table."""

    def _repr_html_(self) -> str:
        from ..display import verdicts_html

        return verdicts_html(self)


def jsonable(obj):
    """Recursively convert numpy scalars/arrays, tuples and non-finite floats for ``json``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def spread(values) -> dict:
    """Median, min, max and count of the finite ``values`` (NaN when none is finite)."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {
        "median": float(np.median(v)),
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(v.size),
    }


def fmt_num(x, fmt: str = "{:.3g}") -> str:
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    return fmt.format(float(x))


def fmt_spread(s: dict, fmt: str = "{:.3g}") -> str:
    """'median [min, max]' (just the value when all agree, 'n/a' when nothing was measured)."""
    if not s or s.get("n", 0) == 0:
        return "n/a"
    med, lo, hi = (fmt_num(s[k], fmt) for k in ("median", "min", "max"))
    if s["n"] == 1 or lo == hi:
        return med
    return f"{med} [{lo}, {hi}]"


def write_summary(results, path, *, ensemble: str | None = None, suite: str = "paper") -> Path:
    """Write ``{"suite": ..., "ensemble": ..., "claims": [...]}`` to ``path`` (the ensemble: the
    argument, else the results' settings', else 'gaussian'; the suite: 'paper' or 'robust')."""
    from .._files import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if ensemble is None:
        ensemble = next((r.settings.get("ensemble") for r in results if r.settings), None)
    payload = {
        "suite": suite,
        "ensemble": ensemble or "gaussian",
        "claims": [r.as_dict() for r in results],
    }
    # Atomic (temp file, then rename): never a truncated summary.json that looks complete.
    atomic_write_text(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")
    return path


def load_summary(path) -> list[ClaimResult]:
    """Read a ``summary.json`` written by :func:`write_summary` back into results."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise ValueError(f"{path}: not a claims summary (expected {{'claims': [...]}})")
    return Verdicts(ClaimResult.from_dict(d) for d in data["claims"])


def format_table(results, widths=(34, 58, 42)) -> str:
    """Plain-text table: claim, measured, expected, holds (long cells wrap)."""
    header = ("claim", "measured", "expected", "holds")
    rows = []
    for r in results:
        verdict = "yes" if r.holds else "NO"
        rows.append((f"{r.id} {r.title}", r.measured, r.expected, verdict))
    w = list(widths) + [5]
    sep = "+" + "+".join("-" * (x + 2) for x in w) + "+"

    def line(cells):
        wrapped = [textwrap.wrap(str(c), x) or [""] for c, x in zip(cells, w)]
        height = max(len(c) for c in wrapped)
        out = []
        for i in range(height):
            parts = [(c[i] if i < len(c) else "").ljust(x) for c, x in zip(wrapped, w)]
            out.append("| " + " | ".join(parts) + " |")
        return out

    lines = [sep, *line(header), sep.replace("-", "=")]
    for row in rows:
        lines += line(row)
        lines.append(sep)
    n_hold = sum(bool(r.holds) for r in results)
    lines.append(f"{n_hold}/{len(results)} claims hold")
    for r in results:
        if not r.holds and r.reason:
            lines.append(f"  {r.id}: {r.reason}")
    return "\n".join(lines)
