"""What the robust claims R1–R5 share: their problems (outliers or dense noise on the family's
problem of the seed), the sub-gradient runs, the shared parameters and small measurements.

Conventions (docs/robust.md): the loss is f₁(P) = ‖𝒜(P) − y‖₁/√m; outliers are added to a
fraction p_s of the measurements, of magnitude up to c·‖𝒜(M*)‖_∞ (c = ``robust_scale``),
drawn from their own stream of the problem's seed (:mod:`matsense.corruption`), so a problem
with outliers has the operator and M* of the seed's clean problem. Initial factors are the
family's draws of the seed (roles 'symmetric' and 'asymmetric', as in C1–C8), scaled by α.
"""

from __future__ import annotations

import math

import numpy as np

from .... import init as _init
from ...declare import Param, positive_number, positive_values
from ...runs import LabeledRun, batch


def fraction(name: str, value, settings=None) -> None:
    """An outlier fraction p_s in [0, 1)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and 0 <= value < 1)
    ):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


def fractions(name: str, values, settings=None) -> None:
    """A non-empty tuple of outlier fractions, each in [0, 1)."""
    if values is not None:
        if len(values) == 0:
            raise ValueError(f"{name} must not be empty")
        for v in values:
            fraction(name, v)


def decay(name: str, value, settings=None) -> None:
    """q of a geometric schedule, in (0, 1]."""
    positive_number(name, value)
    if value > 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}")


#: The parameters every robust claim reads.
PARAMS = (
    Param("robust_fraction", 0.1, "float", "outlier fraction p_s of R2, R4 and R5", check=fraction),
    Param(
        "robust_scale",
        10.0,
        "float",
        "outlier magnitude c: up to c·‖𝒜(M*)‖_∞ (R1, R2, R4, R5)",
        check=positive_number,
    ),
    Param(
        "robust_alpha",
        1e-3,
        "float",
        "small initialization scale α of the sub-gradient runs",
        check=positive_number,
    ),
    Param(
        "geo_step",
        0.2,
        "float",
        "η₀ of the geometric steps η₀qᵗ (Ma & Fattahi; R1–R3)",
        check=positive_number,
    ),
    Param("geo_decay", 0.99, "float", "q of the geometric steps η₀qᵗ (R1–R3)", check=decay),
)


def outlier_problem(sr, symmetric: bool, p_s: float, settings=None):
    """The seed's problem (PSD or general; of ``settings``, default the run's) with outliers
    added on a fraction ``p_s`` of its measurements (p_s = 0: the clean problem)."""
    from .... import corruption

    s = sr.settings
    problem = (
        sr.problem(symmetric) if settings is None else settings.make_problem(symmetric, sr.seed)
    )
    return corruption.with_outliers(problem, corruption.Outliers(p_s, s.robust_scale), sr.seed)


def noisy_problem(sr, noise: float):
    """The seed's PSD problem with dense Gaussian noise of standard deviation ``noise`` on y."""
    from .... import ensembles
    from ....problems import Problem

    s = sr.settings
    extra = ensembles.get(s.ensemble).claims.generate  # as ClaimSettings.make_problem
    return Problem.generate(
        s.ensemble,
        s.n,
        s.n,
        r=s.r,
        m=s.measurements(s.n, s.n),
        singular_values=list(s.singular_values),
        symmetric=True,
        seed=sr.seed,
        noise=noise,
        **extra,
    )


def subgm(schedule: str, **params):
    """The sub-gradient method on the ℓ1 loss with ``schedule``."""
    from ....methods.subgm import SubGM

    return SubGM(loss="l1", schedule=schedule, **params)


def geometric(settings):
    """SubGM with the geometric steps η₀qᵗ of the settings."""
    return subgm("geometric", step_size=settings.geo_step, decay=settings.geo_decay)


def sym_run(sr, problem, method, k: int, alphas, iters: int, **kw) -> LabeledRun:
    """``method`` on X Xᵀ of width ``k`` from the seed's symmetric draw scaled by each α."""
    alphas, seeds = batch(alphas, sr.init_seed("symmetric"))
    X0 = _init.symmetric_random(problem, k, alphas, seed=seeds)
    return LabeledRun(sr.gd(problem, X0, iters, method=method, **kw), alphas)


def asym_start(sr, problem, k: int, alpha: float):
    """The seed's imbalanced small start (F₀ at α, G₀ at α·ratio) of width ``k``, batch of one."""
    s = sr.settings
    return _init.small_random(
        problem, k, [float(alpha)], ratio=s.ratio, seed=[sr.init_seed("asymmetric")]
    )


def final(run, label, key: str = "rel_error") -> float:
    """The last recorded ``key`` of trajectory ``label`` (NaN when nothing was recorded)."""
    _, y = run.curve(label, key)
    return float(y[-1]) if y.size else math.nan


def lowest(run, label, key: str = "rel_error") -> float:
    """The smallest recorded ``key`` of trajectory ``label``."""
    _, y = run.curve(label, key)
    y = y[np.isfinite(y)]
    return float(y.min()) if y.size else math.nan


def best_so_far(t, err):
    """(t, min_{s ≤ t} err_s): sub-gradient iterates zig-zag around their path, so rates are
    fitted on the best error so far (the envelope), as sub-gradient analyses state them."""
    err = np.asarray(err, dtype=float)
    return t, np.fmin.accumulate(err) if err.size else err


__all__ = [
    "PARAMS",
    "fraction",
    "fractions",
    "decay",
    "outlier_problem",
    "noisy_problem",
    "subgm",
    "geometric",
    "sym_run",
    "asym_start",
    "final",
    "lowest",
    "best_so_far",
    "positive_values",
]
