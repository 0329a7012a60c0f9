"""GD on F Gᵀ with one rebalancing step (docs/conventions.md, *our reconstruction* of
the paper's Section 5 method, whose exact equation could not be retrieved).

Trigger: the first iteration at which the observable relative residual
‖𝒜(F Gᵀ) − y‖ / ‖y‖ <= τ, or iteration ``switch_at`` if given.
Transform, with the thin SVD F = U_F Σ_F V_Fᵀ:

    F ← β U_F V_Fᵀ,   G ← G V_F Σ_F V_Fᵀ / β,

which leaves F Gᵀ unchanged and sets every singular value of F to β, so the
imbalance becomes ≈ β² I − GᵀG instead of ≈ α². Default β = √‖F Gᵀ‖_op at the
trigger. Plain GD with the same η follows (keep η·β² below ~1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .. import backend
from .base import (Method, Phase, integer, optional, param, positive, product, residual_norm)
from .gd import gd_step_asymmetric


class RebalanceState(NamedTuple):
    F: object
    G: object
    count: object        # (B,) iterations taken
    switched_at: object  # (B,) iteration of the switch, -1 before it


def product_operator_norm(F, G):
    """‖F Gᵀ‖_op per trajectory, from k×k factors: F = Q₁R₁, G = Q₂R₂ ⇒ σ(FGᵀ) = σ(R₁R₂ᵀ)."""
    xp = backend.namespace(F, G)
    R1 = xp.linalg.qr(F).R
    R2 = xp.linalg.qr(G).R
    return xp.linalg.svdvals(R1 @ R2.mT)[..., 0]


def rebalance(F, G, beta):
    """The one-step transform: F ← β U_F V_Fᵀ, G ← G V_F Σ_F V_Fᵀ / β (batched β)."""
    xp = backend.namespace(F, G)
    U, s, Vh = xp.linalg.svd(F, full_matrices=False)
    b = xp.reshape(beta, (-1, 1, 1))
    F_new = b * (U @ Vh)
    G_new = (G @ (Vh.mT * s[..., None, :]) @ Vh) / b
    return F_new, G_new


def _tau(name, value):
    value = positive(name, value)
    if value >= 1:
        raise ValueError(f"{name} must be in (0, 1), got {value}")
    return value


@dataclass(frozen=True)
class RebalancedGD(Method):
    """GD on F Gᵀ that rebalances the factors once, then continues plain GD.

    Parameters
    ----------
    step_size : float
        η, > 0 (the same before and after the switch).
    tau : float
        Trigger threshold on ‖𝒜(FGᵀ) − y‖/‖y‖, in (0, 1).
    switch_at : int, optional
        Switch at this iteration instead of on τ.
    beta : float, optional
        Target singular value of F; default √‖F Gᵀ‖_op at the trigger.
    """

    name = "rebalanced_gd"
    parameterizations = ("asymmetric",)
    note = ("rebalanced_gd is matsense's reconstruction of the paper's one-step rebalancing "
            "(Xiong, Ding & Du 2024, Sec. 5), not its verbatim equation")
    step_size: float = param(0.3, positive, "step size η (before and after the switch)")
    tau: float = param(1e-2, _tau, "switch when ‖𝒜(FGᵀ) − y‖/‖y‖ <= tau, in (0, 1)")
    switch_at: int | None = param(None, optional(integer(0)),
                                  "switch at this iteration instead of on tau")
    beta: float | None = param(None, optional(positive),
                               "target singular value of F (default √‖FGᵀ‖_op at the switch)")

    def init(self, problem, factors):
        self.check_factors(factors)
        F, G = factors
        xp = backend.namespace(F)
        B = F.shape[0]
        dev = backend.device_of(F)
        zeros = xp.zeros(B, dtype=xp.int64, device=dev)
        return RebalanceState(F, G, zeros, zeros - 1)

    def _trigger(self, problem, state, rnorm):
        if self.switch_at is not None:
            due = state.count == self.switch_at
        else:
            due = rnorm <= self.tau * problem.y_norm
        return due & (state.switched_at < 0)

    def step(self, problem, state):
        F, G = state.F, state.G
        r, S = problem.residual_and_adjoint(product((F, G)))
        rnorm = residual_norm(r)
        due = self._trigger(problem, state, rnorm)
        switched_at = state.switched_at
        if bool(backend.namespace(due).any(due)):
            beta = self.beta if self.beta is not None else product_operator_norm(F, G) ** 0.5
            if isinstance(beta, float):
                xp = backend.namespace(F)
                beta = xp.full(F.shape[0], beta, dtype=F.dtype, device=backend.device_of(F))
            Fb, Gb = rebalance(F, G, beta)
            F = backend.where_batch(due, Fb, F)
            G = backend.where_batch(due, Gb, G)
            xp = backend.namespace(switched_at)
            switched_at = xp.where(due, state.count, switched_at)
        # F Gᵀ is unchanged by the transform, so S still belongs to (F, G).
        F, G = gd_step_asymmetric(F, G, S, self.step_size)
        return RebalanceState(F, G, state.count + 1, switched_at), rnorm

    def factors(self, state) -> tuple:
        return (state.F, state.G)

    def extras(self, state) -> dict:
        return {"switch_iteration": state.switched_at}

    def phases(self, extras: dict) -> tuple[Phase, ...]:
        """Before and after the rebalancing switch (one phase when it never happened)."""
        switch = extras.get("switch_iteration", -1)
        if switch is None or switch < 0:
            return (Phase("no switch"),)
        return (Phase("before switch", 0, int(switch)),
                Phase("after switch", int(switch), event="rebalancing switch"))
