"""The stopping rule: divergence bounds, the tolerance, each trajectory's status and final
iteration (:class:`Stopping`)."""

from __future__ import annotations

import numpy as np

from ..trajectory import Status


class Stopping:
    """Divergence bounds and the tolerance; each trajectory's status and final iteration.

    A trajectory diverges when its residual (or error) is non-finite or
    exceeds ``divergence_factor`` × max(its value at t = 0, ‖y‖ (resp. ‖M*‖));
    it converges at the first iterate with relative error (relative residual
    without M*) <= ``tol``.
    """

    def __init__(self, problem, B: int, iters: int, tol, divergence_factor: float):
        self.tol = tol
        self.factor = divergence_factor
        self.y_norm = problem.y_norm
        self.M_norm = problem.M_star_norm
        self.status = np.full(B, Status.MAX_ITERS, dtype=object)
        self.iterations = np.full(B, iters)
        self.active = np.ones(B, dtype=bool)
        #: ``active.all()`` kept as a Python bool: the common case of a loop iteration, where
        #: every trajectory runs on, then costs no array operation (each one costs ~15 µs
        #: right after an operator pass has streamed the measurement data through the caches).
        self.all_active = True
        self.res_bound = self.err_bound = None

    def diverged(self, t: int, rn, err):
        """Mark (and return, as a mask; None when there are none) the active trajectories
        whose norms left the bounds at t."""
        if t == 0:
            _check_start(rn, err)
            self.res_bound = self.factor * np.maximum(rn, self.y_norm)
            if err is not None:
                self.err_bound = self.factor * np.maximum(err, self.M_norm)
        # NaN and ±inf fail `<=`, so one comparison catches non-finite and too large.
        ok = rn <= self.res_bound
        if err is not None:
            ok &= err <= self.err_bound
        if self.all_active and ok.all():
            return None
        bad = self.active & ~ok
        if not bad.any():
            return None
        self.status[bad] = Status.DIVERGED
        self.iterations[bad] = max(t - 1, 0)
        self.active &= ~bad
        self.all_active = False
        return bad

    def converged(self, rn, err):
        """The active trajectories that meet the tolerance (not yet marked: see :meth:`finish`),
        or None when there are none."""
        if self.tol is None:
            return None
        metric = err / scale(self.M_norm) if err is not None else rn / scale(self.y_norm)
        done = metric <= self.tol
        if not done.any():
            return None
        return done if self.all_active else self.active & done

    def finish(self, t: int, mask, status: Status) -> None:
        """Trajectories ``mask`` end at iterate t with ``status``."""
        self.status[mask] = status
        self.iterations[mask] = t
        self.active &= ~mask
        self.all_active = False

    def any_active(self) -> bool:
        return self.all_active or bool(self.active.any())


def scale(norm: float) -> float:
    """The denominator of a relative error: ‖M*‖_F (or ‖y‖), or 1 when it is 0 — relative
    to a zero M* the error is the absolute one (docs/conventions.md), never inf or NaN."""
    return norm if norm > 0 else 1.0


def _check_start(rn, err) -> None:
    """ValueError when the starting iterate's residual or error is not a finite number: there
    is no finite iterate to keep, so the run cannot even start (e.g. α = 1e150)."""
    bad = ~np.isfinite(rn) if err is None else ~(np.isfinite(rn) & np.isfinite(err))
    if bad.any():
        which = np.flatnonzero(bad)
        raise ValueError(
            f"the initial iterate's residual or error is not finite (it overflows "
            f"float64) for trajectories {which.tolist()[:10]}: start from smaller "
            f"factors (a smaller alpha)"
        )


__all__ = ["Stopping", "scale"]
