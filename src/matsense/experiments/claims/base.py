"""What every claim shares: the :class:`Claim` shape (measure, judge, draw), the verdict,
and small helpers for curves, fits and formatting.

A claim is an object with an ``id``, a ``title``, a figure ``caption``, the
``parameters`` it declares and the ``runs`` it reads
(:mod:`matsense.experiments.declare`: :class:`~..declare.Param`,
:class:`~..declare.RunSpec` or the name of another claim's run), and typed
``criteria`` (a frozen dataclass of thresholds). Calling it on the runs of
every seed does three things, each a method of its own:

* :meth:`Claim.measure` — the numbers: one record per trajectory, per-seed
  aggregates, the summary strings ``measured`` / ``expected`` and ``details``;
* :meth:`Claim.judge` — the criteria applied to those numbers, in record
  order (a :class:`Verdict`: the failed criteria, with reasons);
* :meth:`Claim.panels` — the figure, as :class:`matsense.plots.Panel` s.

Symbols follow the paper: α (alpha) the initialization scale, η (eta) the
step size, k the factor width, r the rank, Δ = FᵀF − GᵀG the imbalance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ... import plots
from ..results import ClaimResult

FIG_DIR = "figures"
MAX_REASONS = 3
#: A fit (linear or power law) counts only if it explains this share of the variance.
MIN_R2 = 0.99


# ------------------------------------------------------------------ verdicts
class Verdict:
    """Collects failed criteria; the claim holds when none failed."""

    def __init__(self, min_r2: float = MIN_R2):
        self.failures: list[str] = []
        self.min_r2 = min_r2

    def require(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok

    def diverged(self, status: str, where: str) -> bool:
        """Record a divergence; True when the trajectory diverged (skip its other checks)."""
        if status == "diverged":
            self.failures.append(f"{where}: run diverged (η too large?)")
            return True
        return False

    def converging(self, records):
        """(record, where) for each per-α record whose run did not diverge (divergences are
        recorded as failures); ``where`` names the seed and α for messages."""
        for rec in records:
            where = f"seed {rec['seed']}, α={rec['alpha']:g}"
            if not self.diverged(rec["status"], where):
                yield rec, where

    def fit(self, fit: dict, where: str, what: str = "fit") -> bool:
        """Check a fit (as :func:`fit_dict` stores it): valid and with r² >= ``min_r2``."""
        if fit is None or not np.isfinite(fit["value"] if fit["value"] is not None else math.nan):
            reason = fit["reason"] if fit else "none"
            self.failures.append(f"{where}: no valid {what} ({reason})")
            return False
        return self.require(
            fit["r2"] >= self.min_r2, f"{where}: {what} r² = {fit['r2']:.4f} < {self.min_r2}"
        )

    @property
    def holds(self) -> bool:
        return not self.failures

    @property
    def reason(self) -> str | None:
        if not self.failures:
            return None
        extra = len(self.failures) - MAX_REASONS
        head = "; ".join(self.failures[:MAX_REASONS])
        return head + (f" (+{extra} more)" if extra > 0 else "")


def within(x, centre, tol) -> bool:
    return bool(np.isfinite(x) and abs(x - centre) <= tol)


def within_factor(x, factor) -> bool:
    return bool(np.isfinite(x) and x > 0 and 1 / factor <= x <= factor)


# ------------------------------------------------------------------ numbers
def fit_dict(fit) -> dict:
    """A :class:`matsense.rates.Fit` as the plain dict stored in ``details``."""
    return {
        "value": fit.value,
        "t_start": fit.t_start,
        "t_end": fit.t_end,
        "n_points": fit.n_points,
        "r2": fit.r2,
        "reason": fit.reason or None,
    }


def value_at(t, y, T):
    """The last recorded value at an iteration ≤ T (NaN if none)."""
    sel = np.flatnonzero(t <= T)
    return float(y[sel[-1]]) if sel.size else math.nan


def alpha_label(a) -> str:
    return f"α = {a:g}"


def alpha_sweep(s) -> tuple:
    """The α a claim sweeps: the grid, or its first ``quick_alphas`` values."""
    return tuple(s.alphas[: s.quick_alphas or len(s.alphas)])


def seed_curves(runs, run_name, label, key="error"):
    """Per seed, the recorded (iterations, values) of trajectory ``label`` of run ``run_name``."""
    xs, ys = [], []
    for sr in runs:
        t, y = sr.get(run_name).curve(label, key)
        xs.append(t)
        ys.append(y)
    return xs, ys


# ------------------------------------------------------------------ the shape
@dataclass
class Measurement:
    """What :meth:`Claim.measure` returns: the records and the numbers behind the verdict."""

    records: list
    measured: str
    expected: str
    details: dict
    per_seed: list = field(default_factory=list)


class Claim:
    """A claim of the paper as an experiment (see the module docstring).

    Subclasses set ``id``, ``title``, ``caption``, ``parameters`` (a tuple of
    :class:`~matsense.experiments.declare.Param`), ``runs`` (a tuple of
    :class:`~matsense.experiments.declare.RunSpec` or names of runs other claims
    declare), ``stem`` (the figure's file name) and ``criteria``, and implement
    :meth:`measure`, :meth:`judge` and :meth:`panels`.
    """

    id: str = ""
    title: str = ""
    caption: str = ""
    parameters: tuple = ()
    runs: tuple = ()
    stem: str = ""
    criteria: Any = None  # a frozen dataclass of thresholds in each claim

    def measure(self, runs, settings) -> Measurement:  # pragma: no cover - abstract
        raise NotImplementedError

    def judge(self, m: Measurement, settings) -> Verdict:  # pragma: no cover - abstract
        raise NotImplementedError

    def panels(self, m: Measurement, runs, settings) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, runs, settings, out_dir=None) -> ClaimResult:
        settings = settings.resolve()
        m = self.measure(runs, settings)
        verdict = self.judge(m, settings)
        figures = []
        if out_dir is not None:
            out_dir = Path(out_dir)
            paths = plots.save_panels(
                self.panels(m, runs, settings),
                out_dir / FIG_DIR / self.stem,
                suptitle=f"{self.id}: {self.title}",
            )
            figures = [p.relative_to(out_dir).as_posix() for p in paths]
        details = dict(m.details)
        details["criteria_failed"] = list(verdict.failures)
        return ClaimResult(
            self.id,
            self.title,
            m.measured,
            m.expected,
            verdict.holds,
            details,
            figures,
            verdict.reason,
            caption=self.caption,
        )
