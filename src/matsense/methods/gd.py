"""Plain gradient descent on X Xᵀ and on F Gᵀ (docs/conventions.md).

Symmetric:  X_{t+1} = X_t − η sym(S_t) X_t                  (loss ¼‖𝒜(XXᵀ) − y‖²)
Asymmetric: F_{t+1} = F_t − η S_t G_t,  G_{t+1} = G_t − η S_tᵀ F_t   (simultaneous)
with S_t = 𝒜*(𝒜(P_t) − y).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import (
    AsymState,
    Method,
    SymState,
    gradient_request,
    gradients_from,
    param,
    positive,
    residual_norm,
)


def gd_step(state, grad_F, grad_G, eta):
    """One GD step of either parameterization from its gradients (:func:`~.base.gradients`):
    X − η sym(S)X, or (F − η S G, G − η Sᵀ F)."""
    if isinstance(state, SymState):
        return SymState(state.X - eta * grad_F)
    return AsymState(state.F - eta * grad_F, state.G - eta * grad_G)


@dataclass(frozen=True)
class GD(Method):
    """Gradient descent with constant step size η on X Xᵀ or F Gᵀ.

    The parameterization follows ``init``: one factor X_0 runs the symmetric
    update, a pair (F_0, G_0) the asymmetric one.
    """

    name = "gd"
    step_size: float = param(0.3, positive, "step size η")

    def request(self, problem, state):
        return gradient_request(state)

    def advance(self, problem, state, answer):
        r, grad_F, grad_G = gradients_from(state, answer)
        return gd_step(state, grad_F, grad_G, self.step_size), residual_norm(r)
