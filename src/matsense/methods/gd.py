"""Plain gradient descent on X Xᵀ and on F Gᵀ (PAPER.md §3).

Symmetric:  X_{t+1} = X_t − η sym(S_t) X_t                  (loss ¼‖𝒜(XXᵀ) − y‖²)
Asymmetric: F_{t+1} = F_t − η S_t G_t,  G_{t+1} = G_t − η S_tᵀ F_t   (simultaneous)
with S_t = 𝒜*(𝒜(P_t) − y).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import AsymState, SymState, product, residual_norm, step_size, sym


def gd_step_symmetric(X, S, eta):
    """X − η sym(S) X."""
    return X - eta * (sym(S) @ X)


def gd_step_asymmetric(F, G, S, eta):
    """(F − η S G, G − η Sᵀ F), both from the current (F, G)."""
    return F - eta * (S @ G), G - eta * (S.mT @ F)


@dataclass(frozen=True)
class GD:
    """Gradient descent with constant step size η on X Xᵀ or F Gᵀ.

    The parameterization follows ``init``: one factor X_0 runs the symmetric
    update, a pair (F_0, G_0) the asymmetric one.
    """

    step_size: float = 0.3
    name: str = "gd"

    def __post_init__(self):
        object.__setattr__(self, "step_size", step_size(self.step_size))

    def init(self, problem, factors):
        return AsymState(*factors) if len(factors) == 2 else SymState(*factors)

    def step(self, problem, state):
        r, S = problem.residual_and_adjoint(product(tuple(state)))
        if isinstance(state, SymState):
            new = SymState(gd_step_symmetric(state.X, S, self.step_size))
        else:
            new = AsymState(*gd_step_asymmetric(state.F, state.G, S, self.step_size))
        return new, residual_norm(r)

    def factors(self, state) -> tuple:
        return tuple(state)

    def extras(self, state) -> dict:
        return {}
