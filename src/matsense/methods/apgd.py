"""Alternating preconditioned gradient descent (the APGD / AGN family), docs/methods.md.

One iteration updates F, recomputes the residual at the new product, then
updates G (Gauss–Seidel order):

    S  = 𝒜*(𝒜(F Gᵀ) − y),      F' = F − η S G (GᵀG)^†
    S' = 𝒜*(𝒜(F' Gᵀ) − y),     G' = G − η S'ᵀ F' (F'ᵀF')^†

so it costs **two operator passes** per iteration (GD, ScaledGD, PrecGD: one).
(·)^† is the pseudo-inverse (eigenvalues at or below ``rcond`` × the largest
dropped), so singular Gram matrices never produce NaN. With η = 1 and an
isotropic operator (𝒜*𝒜 = I) each half-step is exact alternating least
squares; the update of the product, F'Gᵀ = FGᵀ − η S P_G, does not depend on
the factors' scale, which is why small random initialization costs only a
few iterations. Only the asymmetric parameterization F Gᵀ exists (there is
nothing to alternate on X Xᵀ).

Symbols follow the paper (F, G, S, eta = η).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import AsymState, Method, below, gradient_request, param, residual_norm
from .scaledgd import DEFAULT_RCOND, precondition, rcond_check


def apgd_f_step(F, G, SG, eta, rcond=DEFAULT_RCOND):
    """F − η S G (GᵀG)^† (from S G)."""
    return F - eta * precondition(SG, G.mT @ G, 0.0, rcond)


def apgd_g_step(F, G, StF, eta, rcond=DEFAULT_RCOND):
    """G − η Sᵀ F (FᵀF)^† (F the *updated* left factor, S its fresh residual's adjoint)."""
    return G - eta * precondition(StF, F.mT @ F, 0.0, rcond)


@dataclass(frozen=True)
class AlternatingPrecGD(Method):
    """Alternating preconditioned GD on F Gᵀ: F step, fresh residual, G step.

    Parameters
    ----------
    step_size : float
        η in (0, 2) (default 1: alternating least squares in the isotropic
        limit, and the fastest of those tried; η >= 2 overshoots even there).
    rcond : float
        Pseudo-inverse cutoff, in [0, 1) (default 1e-12).
    """

    name = "apgd"
    parameterizations = ("asymmetric",)
    step_size: float = param(1.0, below(2.0), "step size η, in (0, 2)")
    rcond: float = param(DEFAULT_RCOND, rcond_check, "pseudo-inverse cutoff, in [0, 1)")

    def request(self, problem, state):
        return gradient_request(state)

    def advance(self, problem, state, answer):
        F, G = state.F, state.G
        r, SG, _ = answer
        F = apgd_f_step(F, G, SG, self.step_size, self.rcond)
        _, _, StF = problem.residual_and_grads(F, G)
        G = apgd_g_step(F, G, StF, self.step_size, self.rcond)
        return AsymState(F, G), residual_norm(r)
