"""Preconditioned GD, PrecGD (Zhang, Fattahi & Zhang 2021), docs/methods.md.

ScaledGD whose damping follows the loss:

    X ← X − η sym(S) X (XᵀX + λ_t I)⁻¹           (X Xᵀ)
    F ← F − η S G (GᵀG + λ_t I)⁻¹,  G ← G − η Sᵀ F (FᵀF + λ_t I)⁻¹   (F Gᵀ)

    λ_t = c · √(½‖r_t‖²),   r_t = 𝒜(P_t) − y,   c = ``damping_scale`` (default 1).

Which "f" is inside the square root matters by a constant factor: PrecGD's
λ_t = √f(X_t) with f = ½‖r_t‖² is what the reference runs of docs/methods.md used
(λ_t = √(½‖r_t‖²)). For F Gᵀ that *is* our loss f = ½‖r‖² (docs/conventions.md). For
X Xᵀ our loss is f = ¼‖r‖², so the default λ_t = √(½‖r‖²) = √(2 f); set
``damping_scale = 1/√2`` to get √f of our symmetric loss exactly. The damping
comes from the residual the step computes anyway, so PrecGD costs one
operator pass per iteration like GD.

Symbols follow the paper (F, G, X, S, eta = η).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import Method, gradient_request, gradients_from, param, positive, residual_norm
from .scaledgd import DEFAULT_RCOND, rcond_check, scaled_step


def precgd_damping(rnorm, damping_scale: float = 1.0):
    """λ_t = c · √(½‖r_t‖²) per trajectory, from residual norms (B,)."""
    return damping_scale * rnorm / math.sqrt(2.0)


@dataclass(frozen=True)
class PrecGD(Method):
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

    name = "precgd"
    step_size: float = param(0.5, positive, "step size η")
    damping_scale: float = param(1.0, positive, "c in the damping λ_t = c·√(½‖r_t‖²) (> 0)")
    rcond: float = param(DEFAULT_RCOND, rcond_check, "pseudo-inverse cutoff, in [0, 1)")

    def request(self, problem, state):
        return gradient_request(state)

    def advance(self, problem, state, answer):
        r, grad_F, grad_G = gradients_from(state, answer)
        rnorm = residual_norm(r)
        lam = precgd_damping(rnorm, self.damping_scale)
        return scaled_step(state, grad_F, grad_G, self.step_size, lam, self.rcond), rnorm
