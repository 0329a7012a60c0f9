"""Scaled sub-gradient method, ScaledSM (Tong, Ma & Chi), docs/robust.md.

The sub-gradient D G, Dᵀ F of the loss (ℓ1 by default, :mod:`matsense.losses`)
right-preconditioned as in ScaledGD (:mod:`.scaledgd`):

    F ← F − η_t D G (GᵀG + λI)⁻¹,    G ← G − η_t Dᵀ F (FᵀF + λI)⁻¹
    X ← X − η_t sym(D) X (XᵀX + λI)⁻¹                      (objective ½ f(X Xᵀ))

with the Polyak step measured in the scaled norm (the default schedule),

    η_t = (h − h*) / (⟨D G, D G (GᵀG)⁻¹⟩ + ⟨Dᵀ F, Dᵀ F (FᵀF)⁻¹⟩),

h the objective and h* = h(M*). Its linear rate does not depend on κ (the
paper's claim, R4). The other schedules of :class:`~.subgm.SubGM` apply
unchanged; the inverses are pseudo-inverses below ``rcond`` (as in ScaledGD).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import non_negative, param
from .scaledgd import DEFAULT_RCOND, precondition, rcond_check
from .subgm import SubGM, check_schedule


@dataclass(frozen=True)
class ScaledSM(SubGM):
    """ScaledSM: the sub-gradient preconditioned by the other factor's inverse Gram matrix,
    with the Polyak step in the scaled norm (see the module docstring)."""

    name = "scaledsm"
    schedule: str = param(
        "polyak",
        check_schedule,
        "step schedule: polyak (default), constant, geometric or diminishing",
    )
    damping: float = param(
        0.0, non_negative, "damping λ of the preconditioner's Gram matrices (>= 0)"
    )
    rcond: float = param(DEFAULT_RCOND, rcond_check, "pseudo-inverse cutoff, in [0, 1)")

    def _grams(self, state):
        if state.G is None:
            return (state.F.mT @ state.F,)
        return state.G.mT @ state.G, state.F.mT @ state.F

    def direction(self, state, grads):
        return tuple(
            precondition(g, H, self.damping, self.rcond) for g, H in zip(grads, self._grams(state))
        )
