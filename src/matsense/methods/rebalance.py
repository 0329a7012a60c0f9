"""GD on F Gᵀ with one rebalancing step: *our reconstruction* of the paper's Section 5 method,
whose exact equation could not be retrieved (docs/conventions.md, docs/rebalance_study.md).

Trigger: the first iteration at which the observable relative residual
ρ/‖y‖ = ‖𝒜(F Gᵀ) − y‖ / ‖y‖ <= τ, or iteration ``switch_at`` if given. Then one
transform of (F, G), and plain GD with the same η. Every transform starts from
F Gᵀ = U Σ Vᵀ computed from k×k cores (F = Q₁R₁, G = Q₂R₂, R₁R₂ᵀ = U_c Σ V_cᵀ)
and a signal rank r̂: the last direction with σ_i > 4ρ, or σ_i > ρ/2 while GD is
not shrinking it (uᵢᵀ S vᵢ / σᵢ < 0.03); or ``rank`` when given.

``transform="truncated"`` (default, chosen by measurement on every ensemble and
size in docs/rebalance_study.md):

    F ← [U_r̂ √Σ_r̂, c U_e],   G ← [V_r̂ √Σ_r̂, 0],   c = √(floor·σ₁),  floor = 1e-14,

the signal directions balanced as in exact-parameterization GD, the k − r̂
redundant directions of F Gᵀ (part of the error: they lie at or below the
residual) dropped, and a seed c U_e left in F. It changes F Gᵀ by its redundant
part (≈ the current error, never raised it in the study) and leaves the
curvature where GD already was, so it is stable where lifting is not: on matrix
completion the redundant directions are coherent, and lifting them (below)
puts η·λ_max of the Gauss–Newton blocks at 3–24. The seed (imbalance c², zero
product) lets GD grow back a signal direction the rank rule missed, as a small
initialization does (measured: r̂ = 1 of r = 2 still reaches 5e-12).
0.93–1.3× the rate of k = r GD on gaussian κ ∈ {1, 2, 4, 10}, ≈ 1.0× on
completion at n = 10³–10⁵ and on rank-one.

``transform="balanced"`` (the default before 2026-12, kept for comparison):

    F ← U D,   G ← V Σ D⁻¹,   D_ii = √σ_i on the r̂ signal directions, √L on the k − r̂ others,

with L = max(σ₁, lift/η): F Gᵀ unchanged, the redundant directions lifted so
they decay at ≈ ηL. 0.85–1.03× the k = r rate on gaussian; diverges on
completion from n = 5000 on (η·λ_max 1.1 → 4.8, its top eigenvector on one row
of G).

``transform="paper"`` (the first reconstruction): with the thin SVD
F = U_F Σ_F V_Fᵀ,

    F ← β U_F V_Fᵀ,   G ← G V_F Σ_F V_Fᵀ / β,   β = √‖F Gᵀ‖_op (or ``beta``),

α-independent too, but only ≈ ησ_r²/σ₁ after the switch (0.53× the k = r rate
at κ = 2, 0.10× at κ = 10), and it stalls on completion.

At the switch the extras record r̂, the relative change of F Gᵀ and η·λ_max of
the Gauss–Newton blocks before and after (:mod:`matsense.curvature`); a
RuntimeWarning says when the step leaves GD's stable region (η·λ_max > 2).
τ must be below about σ_r/(3‖M*‖_F), else the switch fires before the weakest
direction is learned (at κ = 100 use τ = 3e-3 or give ``rank``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

from .. import backend, curvature
from ..operators.stacking import Evaluation
from .base import Method, Phase, integer, non_negative, optional, param, positive, residual_norm
from .rebalance_transforms import (  # noqa: F401 (re-exported: the public transforms)
    PULL_LIMIT,
    SIGNAL_HIGH,
    SIGNAL_LOW,
    _rebalance,
    product_change,
    product_operator_norm,
    product_svd,
    rebalance,
    rebalance_balanced,
    rebalance_truncated,
    signal_rank,
)

TRANSFORMS = ("truncated", "balanced", "paper")
#: The transforms that leave F Gᵀ unchanged (to rounding); 'truncated' drops its redundant part.
PRODUCT_PRESERVING = ("balanced", "paper")


class RebalanceState(NamedTuple):
    F: object
    G: object
    count: object  # type: ignore[assignment]  # (B,) iterations taken (shadows tuple.count)
    switched_at: object  # (B,) iteration of the switch, -1 before it
    rank: object  # (B,) r̂ chosen at the switch, -1 before it
    change: object  # (B,) ‖ΔFGᵀ‖_F/‖FGᵀ‖_F made by the switch, NaN before it
    curvature_before: object  # (B,) η·λ_max of the Gauss–Newton blocks just before the switch
    curvature_after: (
        object  # (B,) the same right after it (NaN before the switch / if not measured)
    )


def _scatter(xp, old, due, values):
    """``old`` (B,) with the entries at the True places of ``due`` replaced by ``values``."""
    new = backend.to_numpy(old).copy()
    new[backend.to_numpy(due)] = backend.to_numpy(values)
    return backend.convert(new, backend.target_of(old))


def _tau(name, value):
    value = positive(name, value)
    if value >= 1:
        raise ValueError(f"{name} must be in (0, 1), got {value}")
    return value


def _lift(name, value):
    value = positive(name, value)
    if value > 1:
        raise ValueError(
            f"{name} must be in (0, 1] (η·L above 1 makes the lifted directions "
            f"unstable: 1.2 already diverges), got {value}"
        )
    return value


def _flag(name, value):
    from .. import _validate as V

    return V.strict_bool(name, value)


def _transform(name, value):
    if value not in TRANSFORMS:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, TRANSFORMS))}, got {value!r}")
    return value


@dataclass(frozen=True)
class RebalancedGD(Method):
    """GD on F Gᵀ that rebalances the factors once, then continues plain GD.

    Parameters
    ----------
    step_size : float
        η, > 0 (the same before and after the switch).
    tau : float
        Trigger threshold on ‖𝒜(FGᵀ) − y‖/‖y‖, in (0, 1); keep it below about
        σ_r/(3‖M*‖_F).
    switch_at : int, optional
        Switch at this iteration instead of on τ.
    transform : {'truncated', 'balanced', 'paper'}
        The transform (module docstring); 'truncated' is the default,
        'balanced' the previous default, 'paper' the first reconstruction.
    rank : int, optional
        Signal rank r̂ of the truncated and balanced transforms (default:
        estimated at the switch).
    lift : float
        η·L, the level of the redundant directions of F in the balanced
        transform, in (0, 1] (default 0.75; 1.2 is already unstable).
    floor : float
        Truncated transform: the seed left on the redundant columns of F is
        c U_e with c² = floor·σ₁, ≥ 0 (default 1e-14; 0 drops them for good, so a
        direction missed by r̂ is never learned; larger seeds leave a residual
        of about floor·Σ‖S_t‖ when r̂ misses one).
    diagnostics : bool
        Measure η·λ_max of the Gauss–Newton blocks before and after the switch
        (default True; exact on completion, a 10-step power iteration — a lower
        bound — elsewhere: ≈ 80 operator passes once per run).
    beta : float, optional
        Target singular value of F in the 'paper' transform; default
        √‖F Gᵀ‖_op at the trigger.
    """

    name = "rebalanced_gd"
    parameterizations = ("asymmetric",)
    note = (
        "rebalanced_gd is matsense's reconstruction of the paper's one-step rebalancing "
        "(Xiong, Ding & Du 2024, Sec. 5), not its verbatim equation"
    )
    step_size: float = param(0.3, positive, "step size η (before and after the switch)")
    tau: float = param(1e-2, _tau, "switch when ‖𝒜(FGᵀ) − y‖/‖y‖ <= tau, in (0, 1)")
    switch_at: int | None = param(
        None, optional(integer(0)), "switch at this iteration instead of on tau"
    )
    beta: float | None = param(
        None,
        optional(positive),
        "'paper' transform: target singular value of F (default √‖FGᵀ‖_op at the switch)",
    )
    transform: str = param(
        "truncated", _transform, "the rebalancing transform: truncated (default), balanced or paper"
    )
    rank: int | None = param(
        None, optional(integer(1)), "balanced transform: signal rank r̂ (default: estimated)"
    )
    lift: float = param(
        0.75, _lift, "balanced transform: η·L of the redundant directions, in (0, 1]"
    )
    floor: float = param(
        1e-14,
        non_negative,
        "truncated transform: seed level c²/σ₁ of the redundant columns of F (0: drop them)",
    )
    diagnostics: bool = param(
        True,
        _flag,
        "measure η·λ_max of the Gauss–Newton blocks before "
        "and after the switch (a few operator passes, once)",
    )

    def init(self, problem, factors):
        self.check_factors(factors)
        F, G = factors
        xp = backend.namespace(F)
        B = F.shape[0]
        dev = backend.device_of(F)
        zeros = xp.zeros(B, dtype=xp.int64, device=dev)
        nan = xp.full(B, float("nan"), dtype=F.dtype, device=dev)
        return RebalanceState(F, G, zeros, zeros - 1, zeros - 1, nan, nan, nan)

    def _trigger(self, problem, state, rnorm):
        if self.switch_at is not None:
            due = state.count == self.switch_at
        else:
            due = rnorm <= self.tau * problem.y_norm
        return due & (state.switched_at < 0)

    def _transformed(self, F, G, S_times, rnorm):
        """(F, G, r̂) after this method's transform, for every trajectory of the batch."""
        xp = backend.namespace(F)
        if self.transform == "paper":
            beta = self.beta if self.beta is not None else product_operator_norm(F, G) ** 0.5
            if isinstance(beta, float):
                beta = xp.full(F.shape[0], beta, dtype=F.dtype, device=backend.device_of(F))
            Fb, Gb = _rebalance(F, G, beta)
            return (
                Fb,
                Gb,
                xp.full(F.shape[0], F.shape[-1], dtype=xp.int64, device=backend.device_of(F)),
            )
        if self.transform == "truncated":
            return rebalance_truncated(F, G, S_times, rnorm, floor=self.floor, rank=self.rank)
        return rebalance_balanced(
            F, G, S_times, rnorm, self.step_size, lift=self.lift, rank=self.rank
        )

    def request(self, problem, state):
        return Evaluation(state.F, state.G)

    def advance(self, problem, state, answer):
        F, G = state.F, state.G
        r, SG, StF = answer
        rnorm = residual_norm(r)
        due = self._trigger(problem, state, rnorm)
        if bool(backend.namespace(due).any(due)):
            state, F, G, SG, StF = self._switch(problem, state, r, rnorm, due, SG, StF)
        F, G = F - self.step_size * SG, G - self.step_size * StF
        return state._replace(F=F, G=G, count=state.count + 1), rnorm

    def _switch(self, problem, state, r, rnorm, due, SG, StF):
        """The transform on the trajectories ``due``: the new state's records, the new (F, G)
        and the S G, Sᵀ F of the step after the switch."""
        F, G = state.F, state.G
        Fb, Gb, rhat = self._transformed(F, G, lambda V: problem.adjoint_matmul(r, V), rnorm)
        F = backend.where_batch(due, Fb, F)
        G = backend.where_batch(due, Gb, G)
        if self.transform in PRODUCT_PRESERVING:
            # F Gᵀ is unchanged, so S is too: its products with the new factors cost one
            # more adjoint, once per run.
            SG_new, StF_new = problem.adjoint_matmul(r, G), problem.adjoint_rmatmul(r, F)
        else:
            # the truncated transform moved F Gᵀ (by its redundant part): the step after
            # the switch is GD's from the new point, one more operator pass, once per run
            _, SG_new, StF_new = problem.residual_and_grads(F, G)
        SG = backend.where_batch(due, SG_new, SG)
        StF = backend.where_batch(due, StF_new, StF)
        xp = backend.namespace(state.switched_at)
        change, before, after = self._switch_report(problem.operator, state, F, G, due)
        state = state._replace(
            switched_at=xp.where(due, state.count, state.switched_at),
            rank=xp.where(due, xp.astype(rhat, state.rank.dtype), state.rank),
            change=change,
            curvature_before=before,
            curvature_after=after,
        )
        return state, F, G, SG, StF

    def _switch_report(self, operator, state, F, G, due):
        """The switch's change of F Gᵀ and η·λ_max of the Gauss–Newton blocks before and after
        it (:mod:`matsense.curvature`), set on the trajectories ``due``; a RuntimeWarning when
        the step leaves GD's stable region (η·λ_max > 2)."""
        xp = backend.namespace(F)
        F0, G0 = state.F[due], state.G[due]
        F1, G1 = F[due], G[due]
        change = _scatter(xp, state.change, due, product_change(F0, G0, F1, G1))
        if not self.diagnostics:
            return change, state.curvature_before, state.curvature_after
        eta = self.step_size
        before_np = eta * curvature.block_curvature(operator, F0, G0)
        after_np = eta * curvature.block_curvature(operator, F1, G1)
        if (after_np > curvature.STABLE_LIMIT).any():
            worst = float(after_np.max())
            warnings.warn(
                f"rebalanced_gd: the {self.transform!r} switch puts η·λ_max of the Gauss–Newton "
                f"blocks at {worst:.3g} (was {float(before_np.max()):.3g}), above the stable "
                f"limit {curvature.STABLE_LIMIT:g}: GD may diverge or stall (a smaller "
                f"step_size does not help a lift); use transform='truncated'",
                RuntimeWarning,
                stacklevel=6,
            )
        before = _scatter(xp, state.curvature_before, due, before_np)
        after = _scatter(xp, state.curvature_after, due, after_np)
        return change, before, after

    def factors(self, state) -> tuple:
        return (state.F, state.G)

    def extras(self, state) -> dict:
        return {
            "switch_iteration": state.switched_at,
            "signal_rank": state.rank,
            "switch_change": state.change,
            "curvature_before": state.curvature_before,
            "curvature_after": state.curvature_after,
        }

    def phases(self, extras: dict) -> tuple[Phase, ...]:
        """Before and after the rebalancing switch (one phase when it never happened)."""
        switch = extras.get("switch_iteration", -1)
        if switch is None or switch < 0:
            return (Phase("no switch"),)
        return (
            Phase("before switch", 0, int(switch)),
            Phase("after switch", int(switch), event="rebalancing switch"),
        )
