"""Preconditioned GD, PrecGD (Zhang, Fattahi & Zhang 2021), PAPER.md §4.

ScaledGD whose damping follows the loss:

    X ← X − η sym(S) X (XᵀX + λ_t I)⁻¹           (X Xᵀ)
    F ← F − η S G (GᵀG + λ_t I)⁻¹,  G ← G − η Sᵀ F (FᵀF + λ_t I)⁻¹   (F Gᵀ)

    λ_t = c · √(½‖r_t‖²),   r_t = 𝒜(P_t) − y,   c = ``damping_scale`` (default 1).

Which "f" is inside the square root matters by a constant factor: PrecGD's
λ_t = √f(X_t) with f = ½‖r_t‖² is what the reference runs of PAPER.md §4 used
(λ_t = √(½‖r_t‖²)). For F Gᵀ that *is* our loss f = ½‖r‖² (PAPER.md §2). For
X Xᵀ our loss is f = ¼‖r‖², so the default λ_t = √(½‖r‖²) = √(2 f); set
``damping_scale = 1/√2`` to get √f of our symmetric loss exactly. The damping
comes from the residual the step computes anyway, so PrecGD costs one
operator pass per iteration like GD.

Symbols follow the paper (F, G, X, S, eta = η).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import _validate as V
from .base import AsymState, SymState, product, residual_norm, step_size
from .scaledgd import DEFAULT_RCOND, rcond_value, scaled_step_asymmetric, scaled_step_symmetric


def precgd_damping(rnorm, damping_scale: float = 1.0):
    """λ_t = c · √(½‖r_t‖²) per trajectory, from residual norms (B,)."""
    return damping_scale * rnorm / math.sqrt(2.0)


@dataclass(frozen=True)
class PrecGD:
    """PrecGD: ScaledGD with damping λ_t = c·√(½‖𝒜(P_t) − y‖²) that vanishes at the solution.

    Linear convergence also when over-parameterized (k > r), from spectral or
    small random initialization.

    Parameters
    ----------
    step_size : float
        η > 0 (default 0.5, the reference runs' value).
    damping_scale : float
        c > 0 in λ_t = c·√(½‖r_t‖²) (default 1, the reference runs' choice).
    rcond : float
        Pseudo-inverse cutoff, in [0, 1) (used once λ_t is negligible).
    """

    step_size: float = 0.5
    damping_scale: float = 1.0
    rcond: float = DEFAULT_RCOND
    name: str = "precgd"

    def __post_init__(self):
        object.__setattr__(self, "step_size", step_size(self.step_size))
        object.__setattr__(self, "damping_scale",
                           V.positive_float("damping_scale", self.damping_scale))
        object.__setattr__(self, "rcond", rcond_value(self.rcond))

    def init(self, problem, factors):
        return AsymState(*factors) if len(factors) == 2 else SymState(*factors)

    def step(self, problem, state):
        r, S = problem.residual_and_adjoint(product(tuple(state)))
        rnorm = residual_norm(r)
        lam = precgd_damping(rnorm, self.damping_scale)
        eta = self.step_size
        if isinstance(state, SymState):
            new = SymState(scaled_step_symmetric(state.X, S, eta, lam, self.rcond))
        else:
            new = AsymState(*scaled_step_asymmetric(state.F, state.G, S, eta, lam, self.rcond))
        return new, rnorm

    def factors(self, state) -> tuple:
        return tuple(state)

    def extras(self, state) -> dict:
        return {}
