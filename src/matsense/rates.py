"""Rate fits with explicit windows (docs/claims.md).

* Linear rate: −slope of log(error) vs t, fitted where the error lies between
  ``window[1]`` and ``window[0]`` times its starting value (default 1e-12 and
  1e-4), on the contiguous stretch from the first iterate below the upper
  bound to the last one above the lower bound.
* Power law: slope of log(error) vs log(t) on the tail t ∈ [f·T, T] of the run
  (default f = 0.5).

Both return the fit with the window actually used, so every reported number
can be traced to the iterations behind it. :func:`phase_rate` fits the
linear rate of a trajectory's last phase (e.g. after the rebalancing switch),
from the phases the trajectory stores (``traj.phases``): the one place the
CLI, sweeps and claims do that; :func:`method_rate` asks a method for them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Fit:
    """A fitted slope and the window behind it.

    ``value`` is the linear rate (−d log err/dt) or the power-law exponent
    (d log err / d log t). ``t_start``/``t_end`` are the first and last
    iterations used; ``n_points`` how many records; ``r2`` the coefficient of
    determination. ``value`` is NaN (and ``reason`` says why) when the window
    holds fewer than 3 points.
    """

    value: float
    t_start: float
    t_end: float
    n_points: int
    r2: float
    reason: str = ""

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.value))

    def as_dict(self) -> dict:
        return asdict(self)

    def _repr_html_(self) -> str:
        """Jupyter's summary: value, window, records, r² (:mod:`matsense.display`)."""
        from .display import fit_html

        return fit_html(self)


def _clean(t, err):
    t = np.asarray(t, dtype=float)
    err = np.asarray(err, dtype=float)
    if t.shape != err.shape or t.ndim != 1:
        raise ValueError(
            f"iterations and errors must be 1-d of equal length, got {t.shape} and {err.shape}"
        )
    keep = np.isfinite(err) & (err > 0) & np.isfinite(t)
    return t[keep], err[keep]


def _linfit(x, z, t_used, reason_if_short):
    if x.size < 3:
        span = (float(t_used[0]), float(t_used[-1])) if t_used.size else (np.nan, np.nan)
        return Fit(np.nan, *span, int(x.size), np.nan, reason_if_short)
    slope, intercept = np.polyfit(x, z, 1)
    pred = slope * x + intercept
    ss_res = float(np.sum((z - pred) ** 2))
    ss_tot = float(np.sum((z - z.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return float(slope), Fit(np.nan, float(t_used[0]), float(t_used[-1]), int(x.size), r2)


def linear_rate(t, err, window=(1e-4, 1e-12)) -> Fit:
    """Linear rate −d log(err)/dt on the window where err/err[0] ∈ [window[1], window[0]]."""
    hi, lo = float(window[0]), float(window[1])
    if not (0 < lo < hi <= 1):
        raise ValueError(f"window must be (upper, lower) with 1 >= upper > lower > 0, got {window}")
    t, err = _clean(t, err)
    if err.size == 0:
        return Fit(np.nan, np.nan, np.nan, 0, np.nan, "no finite positive errors")
    rel = err / err[0]
    below_hi = np.flatnonzero(rel <= hi)
    if below_hi.size == 0:
        return Fit(
            np.nan,
            np.nan,
            np.nan,
            0,
            np.nan,
            f"error never fell below {hi:g} of its start (reached {rel.min():.3g})",
        )
    i0 = below_hi[0]
    under_lo = np.flatnonzero(rel[i0:] < lo)
    i1 = i0 + under_lo[0] if under_lo.size else rel.size
    sel = slice(i0, i1)
    out = _linfit(t[sel], np.log(err[sel]), t[sel], "fewer than 3 records in the window")
    if isinstance(out, Fit):
        return out
    slope, fit = out
    return Fit(-slope, fit.t_start, fit.t_end, fit.n_points, fit.r2)


def phase_rate(phases, t, err, window=(1e-4, 1e-12)):
    """Linear rate on the last of a trajectory's ``phases`` (``traj.phases``).

    Returns ``(fit, phase)``. For methods without phases (plain GD, ...) the
    phase is the whole run; for rebalanced GD it starts at the switch, so the
    window is relative to the error at the switch.
    """
    if not phases:
        raise ValueError("phases must hold at least one Phase (a trajectory's .phases)")
    phase = phases[-1]
    t = np.asarray(t)
    keep = phase.contains(t)
    return linear_rate(t[keep], np.asarray(err)[keep], window=window), phase


def method_rate(method, t, err, extras: dict | None = None, window=(1e-4, 1e-12)):
    """:func:`phase_rate` on the phases ``method`` declares for a trajectory with ``extras``
    (a trajectory stores them: prefer ``phase_rate(traj.phases, ...)``)."""
    from .methods.base import phases_of

    return phase_rate(phases_of(method, extras or {}), t, err, window=window)


def power_law(t, err, tail: float = 0.5) -> Fit:
    """Exponent d log(err)/d log(t) on the last part t ∈ [tail·T, T] of the run (t > 0)."""
    if not (0 <= tail < 1):
        raise ValueError(f"tail must be in [0, 1), got {tail}")
    t, err = _clean(t, err)
    keep = t > 0
    t, err = t[keep], err[keep]
    if t.size == 0:
        return Fit(np.nan, np.nan, np.nan, 0, np.nan, "no records with t > 0")
    sel = t >= tail * t[-1]
    out = _linfit(np.log(t[sel]), np.log(err[sel]), t[sel], "fewer than 3 records in the tail")
    if isinstance(out, Fit):
        return out
    slope, fit = out
    return Fit(slope, fit.t_start, fit.t_end, fit.n_points, fit.r2)
