"""Corruption models on any ensemble: outliers, dense Gaussian noise, or both (docs/robust.md).

* **Outliers** (as in the ScaledSM experiments of Tong, Ma & Chi): a support S of
  ``round(p_s·m)`` measurements drawn uniformly without replacement, independently
  of 𝒜, and values s_i = c·‖𝒜(M*)‖_∞·u_i with u_i ~ U(−1, 1) (c = ``scale``,
  10 by default). ``mode='add'``: y_i ← y_i + s_i; ``mode='replace'``: y_i ← s_i.
  ‖y‖_∞ of the observations is the reference where M* is unknown.
* **Dense Gaussian noise** is the problems' own ``noise`` (σ·N(0, 1) on every y_i,
  drawn by the builder); both together: noise first, then the outliers.

The draws come from ``numpy.random.default_rng((seed, OUTLIER_STREAM))``: seeded
by the problem's seed but a stream of their own, so a problem with outliers has
exactly the measurements, M* and noise of the same problem without them, and
:func:`outlier_support` says where they are. The indices are those of ``y`` (the
operator's measurement order).

f* = f(M*), the loss at the truth (known for synthetic problems), is
:func:`loss_at_truth`; for the ℓ1 loss it is ‖s‖₁/√m on a noiseless problem with
added outliers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _validate as V
from . import backend
from .operators.base import FlatMatrixOperator

#: How outliers enter y.
OUTLIER_MODES = ("add", "replace")
#: The second word of the outliers' seed: their stream, apart from the problem's draws.
OUTLIER_STREAM = 22


def _fraction(value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and 0 <= value < 1)
    ):
        raise ValueError(f"outlier_fraction must be a number in [0, 1), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Outliers:
    """Outliers on a fraction ``fraction`` = p_s ∈ [0, 1) of the measurements.

    ``scale`` = c >= 0 (magnitudes up to c·‖𝒜(M*)‖_∞, default 10); ``mode``:
    'add' (y_i + s_i, default) or 'replace' (s_i).
    """

    fraction: float = 0.0
    scale: float = 10.0
    mode: str = "add"

    def __post_init__(self):
        object.__setattr__(self, "fraction", _fraction(self.fraction))
        object.__setattr__(
            self, "scale", V.positive_float("outlier_scale", self.scale, allow_zero=True)
        )
        if self.mode not in OUTLIER_MODES:
            raise ValueError(
                f"outlier_mode must be one of {', '.join(OUTLIER_MODES)}, got {self.mode!r}"
            )

    def count(self, m: int) -> int:
        """|S| = round(p_s·m)."""
        return int(round(self.fraction * m))


#: The keyword arguments of :meth:`matsense.Problem.generate` (and keys of run files).
OUTLIER_KEYS = {"outlier_fraction": "fraction", "outlier_scale": "scale", "outlier_mode": "mode"}


def outliers_from(kwargs: dict) -> Outliers | None:
    """Pop the outlier keys out of ``kwargs``: their :class:`Outliers`, or None when p_s = 0."""
    given = {field: kwargs.pop(key) for key, field in OUTLIER_KEYS.items() if key in kwargs}
    outliers = Outliers(**given)
    return outliers if outliers.fraction > 0 else None


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng((V.int_in_range("seed", seed, 0), OUTLIER_STREAM))


def outlier_support(seed: int, m: int, fraction: float) -> np.ndarray:
    """The sorted indices of the corrupted measurements (what :func:`with_outliers` uses)."""
    count = Outliers(fraction).count(m)
    return np.sort(_rng(seed).choice(m, size=count, replace=False))


def clean_measurements(problem):
    """𝒜(M*) as a NumPy vector (m,) from the problem's truth (dense M* or its factors)."""
    op = problem.operator
    if problem.M_star is not None and isinstance(op, FlatMatrixOperator):
        out = op.apply(problem.M_star[None])[0]
    elif problem.S_star is not None:
        U = problem.U_star @ problem.S_star
        out = op.apply_factored(
            backend.convert(U[None], op.target), backend.convert(problem.V_star[None], op.target)
        )[0]
    elif problem.M_star is not None:
        out = op.apply(problem.M_star[None])[0]
    else:
        raise ValueError(
            "the problem has no ground truth M*: f* = f(M*) is unknown "
            "(generate the problem, or pass M_star)"
        )
    return backend.to_numpy(out)


def loss_at_truth(problem, loss) -> float:
    """f* = f(M*) for a :class:`matsense.losses.Loss` (ValueError when M* is unknown)."""
    r = clean_measurements(problem) - backend.to_numpy(problem.y)
    return float(loss.value(r[None])[0])


def with_outliers(problem, outliers: Outliers, seed: int):
    """The problem with outliers in y (see the module docstring); ``meta['outliers']`` records
    them (fraction, scale, mode, count, magnitude c·ref, seed) and ``meta['l1_at_truth']``
    is f₁(M*) when M* is known. p_s = 0 returns the problem itself."""
    if not isinstance(outliers, Outliers):
        raise ValueError(f"outliers must be a matsense.corruption.Outliers, got {outliers!r}")
    if outliers.count(problem.m) == 0:
        return problem
    y = backend.to_numpy(problem.y).astype(np.float64, copy=True)
    clean = clean_measurements(problem) if problem.has_truth else None
    ref = float(np.max(np.abs(y if clean is None else clean)))
    rng = _rng(seed)
    support = np.sort(rng.choice(problem.m, size=outliers.count(problem.m), replace=False))
    values = outliers.scale * ref * rng.uniform(-1.0, 1.0, size=support.size)
    if outliers.mode == "add":
        y[support] += values
    else:
        y[support] = values
    meta = dict(
        problem.meta,
        outliers=dict(
            fraction=outliers.fraction,
            scale=outliers.scale,
            mode=outliers.mode,
            count=int(support.size),
            magnitude=outliers.scale * ref,
            reference="truth" if clean is not None else "y",
            seed=int(seed),
        ),
    )
    if clean is not None:
        meta["l1_at_truth"] = float(np.sum(np.abs(clean - y)) / math.sqrt(y.size))
    return problem.replace(y=backend.convert(y, backend.target_of(problem.y)), meta=meta)
