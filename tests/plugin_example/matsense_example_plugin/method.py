"""Heavy-ball GD on F Gᵀ: F_{t+1} = F_t − η S_t G_t + β (F_t − F_{t−1}), and G alike."""

from dataclasses import dataclass
from typing import NamedTuple

from matsense.methods.base import (
    Method,
    below,
    gradients,
    non_negative,
    param,
    positive,
    residual_norm,
)


class MomentumState(NamedTuple):
    """The factors and their last steps V = F_t − F_{t−1} (each with the batch axis first)."""

    F: object
    G: object
    VF: object
    VG: object


@dataclass(frozen=True)
class HeavyBallGD(Method):
    """Polyak's heavy ball on F Gᵀ (β = 0 is plain GD)."""

    name = "heavy_ball_gd"  # the entry point's name: `--method heavy_ball_gd`
    parameterizations = ("asymmetric",)
    step_size: float = param(0.3, positive, "step size η")
    momentum: float = param(0.5, below(1.0, non_negative), "momentum β in [0, 1)")

    def init(self, problem, factors):
        self.check_factors(factors)
        F, G = factors
        return MomentumState(F, G, 0 * F, 0 * G)

    def step(self, problem, state):
        r, grad_F, grad_G = gradients(problem, state)  # r = 𝒜(F Gᵀ) − y, S G, Sᵀ F
        VF = self.momentum * state.VF - self.step_size * grad_F
        VG = self.momentum * state.VG - self.step_size * grad_G
        return MomentumState(state.F + VF, state.G + VG, VF, VG), residual_norm(r)

    def factors(self, state):
        return state.F, state.G
