"""Predicted rates and times of the claim experiments, from which the claims derive their budgets.

These are rough, deliberately conservative predictions of *how long* a run
needs (from the paper's rates and our isotropic-limit reasoning), used to
size iteration budgets and the α grid for any setting of the family — never
to judge a claim (the verdicts compare measurements with the criteria).
Symbols: σ_r the smallest non-zero singular value of M*, η the step size, α
the initialization scale, k the factor width, Δ₀ = F₀ᵀF₀ − G₀ᵀG₀.

* k = r GD converges linearly at about ησ_r/3 per iteration or faster
  (measured 0.3–0.55 ησ_r across the presets) once the signal is fitted,
  which takes about log(σ_r/α²)/(ησ_r) iterations from scale α;
* F Gᵀ with k > r converges at about η·λ_min(Δ₀), and for F₀ with i.i.d.
  N(0, α²) entries (n1 rows) and G₀ at ratio·α (n2 rows),
  λ_min(Δ₀) ≳ α² [(√n1 − √k)² − ratio² (√n2 + √k)²] (extreme singular values of
  Gaussian matrices);
* the α² law of C4 needs that rate well below the signal's: the α grid starts
  at α_max with η·λ_min(Δ₀) ≈ 0.075 ησ_r (α_max = 0.08 for the default setting).

Each claim's iteration budget is the rule of its parameter (``c4_iters`` in
:mod:`~matsense.experiments.claims.alpha`, …): ``budget_factor`` × the iterations
predicted here, rounded by :func:`round_budget`.
"""

from __future__ import annotations

import math

#: η·λ_min(Δ₀) / (η σ_r) at the largest α of the grid.
ALPHA_RULE = 0.075
#: Nats from the starting error to the end of a linear run (relative error ~1e-13).
NATS_TO_FLOOR = math.log(1e13)


def sigma_r(s) -> float:
    return float(min(s.singular_values))


def exact_rate(s) -> float:
    """Conservative linear rate of GD with k = r (per iteration)."""
    return s.eta * sigma_r(s) / 3


def escape_iters(s, alpha: float) -> float:
    """Iterations to fit the signal from scale α: log(σ_r/α²)/(ησ_r) (at least 1/(ησ_r))."""
    return max(math.log(sigma_r(s) / alpha**2), 1.0) / (s.eta * sigma_r(s))


def imbalance_coefficient(s, n1: int | None = None, n2: int | None = None) -> float:
    """c with λ_min(Δ₀) ≈ c α² for the paper's small random start (lower estimate, may be ≤ 0)."""
    n1 = s.shape[0] if n1 is None else n1
    n2 = s.shape[1] if n2 is None else n2
    return (math.sqrt(n1) - math.sqrt(s.k)) ** 2 - s.ratio**2 * (
        math.sqrt(n2) + math.sqrt(s.k)
    ) ** 2


def imbalance_rate(s, alpha: float, n1: int | None = None, n2: int | None = None) -> float:
    """Predicted linear rate η·λ_min(Δ₀) of F Gᵀ GD with k > r from scale α (floored at 1e-3 α² η n1)."""
    n1_ = s.shape[0] if n1 is None else n1
    coef = max(imbalance_coefficient(s, n1, n2), 1e-3 * n1_)
    return s.eta * coef * alpha**2


def alpha_max(s) -> float:
    """The largest α of the grid, rounded to two significant digits (0.08 for the default setting)."""
    coef = max(imbalance_coefficient(s), 1e-3 * s.shape[0])
    a = math.sqrt(ALPHA_RULE * sigma_r(s) / coef)
    digits = 1 - math.floor(math.log10(a))
    return round(a, digits)


def rebalancing_tau(s) -> float:
    """The rebalancing trigger: 1e-2, or σ_r/(3‖M*‖_F) when smaller — the switch must come after
    the weakest signal direction is learned (docs/rebalance_study.md §5)."""
    norm = math.sqrt(sum(v * v for v in s.singular_values))
    return float(f"{min(1e-2, sigma_r(s) / (3 * norm)):.2g}")


def exact_budget(s) -> int:
    """Iterations of a k = r run from the smallest α to the float64 floor, × ``budget_factor``
    (C1, C3, and C7's rebalanced runs, which end at the k = r rate)."""
    return round_budget(
        s.budget_factor * (escape_iters(s, min(s.alphas)) + NATS_TO_FLOOR / exact_rate(s))
    )


def round_budget(x: float) -> int:
    """Up to two significant digits (budgets read better as 12000 than 11873)."""
    x = max(int(math.ceil(x)), 10)
    step = 10 ** max(int(math.floor(math.log10(x))) - 1, 0)
    return int(math.ceil(x / step) * step)
