"""The sub-gradient method (SubGM) on a robust loss, for X Xᵀ and F Gᵀ (docs/robust.md).

With r = 𝒜(P) − y, f the loss (:mod:`matsense.losses`; ℓ1 by default:
f = ‖r‖₁/√m) and D = 𝒜*(φ(r)) its sub-gradient in P:

    F Gᵀ:  F ← F − η_t D G,   G ← G − η_t Dᵀ F          (objective f(F Gᵀ))
    X Xᵀ:  X ← X − η_t sym(D) X                       (objective ½ f(X Xᵀ))

Step schedules η_t (t = 0, 1, …):

* ``constant``: η₀;
* ``geometric``: η₀ qᵗ (Ma & Fattahi 2022);
* ``diminishing``: η₀/(t + 1) (Ding et al. 2021);
* ``polyak``: (h − h*)/‖∇h‖² with h the objective and h* its value at M*
  (f* = f(M*) is known for synthetic problems; ``f_star`` gives it otherwise).
  Negative gaps (an iterate below f*, possible under noise) give η = 0.

One operator pass per iteration, the one-pass kernel with the loss's residual
map. The state carries the iteration count, f* and the last loss and step:
``extras`` reports them per trajectory (``f_star`` is NaN where M* is unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import backend
from ..losses import Loss, check_loss, loss_grads
from .base import Method, non_negative, optional, param, positive, residual_norm

#: The step schedules by name.
SCHEDULES = ("constant", "geometric", "diminishing", "polyak")


def check_schedule(name: str, value) -> str:
    """``value`` if it names a schedule; else one ValueError naming it and the allowed ones."""
    if value not in SCHEDULES:
        raise ValueError(f"{name} must be one of {', '.join(SCHEDULES)}, got {value!r}")
    return value


def check_decay(name: str, value) -> float:
    value = positive(name, value)
    if value > 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return value


def inner(grads, dirs):
    """Σ ⟨g, d⟩ over the factors, per trajectory: ‖∇h‖² for d = g, the scaled norm for ScaledSM."""
    xp = backend.namespace(grads[0])
    return sum(xp.sum(g * d, axis=(-2, -1)) for g, d in zip(grads, dirs))


class RobustState(NamedTuple):
    """Factors (F, G), or (X, None) for X Xᵀ, and per-trajectory (B,) bookkeeping."""

    F: object
    G: object
    t: object  # iterations taken
    f_star: object  # f(M*) (NaN where unknown)
    loss: object  # f at the last step's input iterate (NaN before the first step)
    eta: object  # the last step size (NaN before the first step)


def f_star_of(problem, loss: Loss, given: float | None, need: bool) -> float:
    """f* = ``given``, else f(M*) from the problem's truth; NaN when unknown, unless ``need``
    (the Polyak step), which refuses in one line."""
    if given is not None:
        return float(given)
    if problem.has_truth:
        from ..corruption import loss_at_truth

        return loss_at_truth(problem, loss)
    if need:
        raise ValueError(
            "schedule 'polyak' needs f* = f(M*), and this problem has no ground "
            "truth M*: pass f_star, or use schedule constant, geometric or "
            "diminishing"
        )
    return float("nan")


@dataclass(frozen=True)
class SubGM(Method):
    """Sub-gradient method on X Xᵀ or F Gᵀ for the ℓ1 (default), Huber or ℓ2 loss.

    The parameterization follows ``init`` (X_0, or (F_0, G_0)); see the module
    docstring for the update and the schedules. Small random initialization is
    the setting of Ma & Fattahi (over-parameterized k > r included).
    """

    name = "subgm"
    loss: str = param("l1", check_loss, "loss: l1, huber or l2")
    schedule: str = param(
        "geometric", check_schedule, "step schedule: constant, geometric, diminishing or polyak"
    )
    step_size: float = param(0.5, positive, "initial step η₀ (not used by polyak)")
    decay: float = param(0.97, check_decay, "q of the geometric schedule η₀qᵗ, in (0, 1]")
    huber_delta: float = param(1e-3, positive, "Huber threshold δ (loss huber)")
    f_star: float | None = param(
        None, optional(non_negative), "f* for the Polyak step (default f(M*) of the problem)"
    )

    # ------------------------------------------------------------------ protocol
    def init(self, problem, factors):
        self.check_factors(factors)
        F = factors[0]
        xp = backend.namespace(F)
        B = F.shape[0]
        f_star = f_star_of(problem, self._loss(), self.f_star, self.schedule == "polyak")

        def full(value):
            return xp.full((B,), value, dtype=F.dtype, device=backend.device_of(F))

        G = factors[1] if len(factors) == 2 else None
        return RobustState(F, G, full(0.0), full(f_star), full(np.nan), full(np.nan))

    def factors(self, state) -> tuple:
        return (state.F,) if state.G is None else (state.F, state.G)

    def extras(self, state) -> dict:
        return {
            "f_star": state.f_star,
            "last_loss": state.loss,
            "last_step": state.eta,
            "iterations": state.t,
        }

    def step(self, problem, state):
        r, grads, f = self.subgradient(problem, state)
        dirs = self.direction(state, grads)
        eta = self.step_sizes(state, f, inner(grads, dirs))
        return self.advance(state, dirs, eta, f), residual_norm(r)

    # ------------------------------------------------------------------ pieces
    def _loss(self) -> Loss:
        return Loss(self.loss, self.huber_delta)

    def subgradient(self, problem, state):
        """(r, grads, f): the sub-gradient (D G, Dᵀ F), or (sym(D) X,) on X Xᵀ, and f per row."""
        loss = self._loss()
        G = state.F if state.G is None else state.G
        r, DG, DtF = loss_grads(problem, state.F, G, loss.rmap(problem.m))
        grads = ((DG + DtF) / 2,) if state.G is None else (DG, DtF)
        return r, grads, loss.value(r)

    def step_sizes(self, state, f, sq_norm):
        """η_t per trajectory (B,); ``sq_norm`` = ⟨∇h, direction⟩ (Polyak's denominator)."""
        xp = backend.namespace(f)
        if self.schedule == "constant":
            return xp.full_like(f, self.step_size)
        if self.schedule == "geometric":
            return self.step_size * self.decay**state.t
        if self.schedule == "diminishing":
            return self.step_size / (state.t + 1)
        gap = (f - state.f_star) / (2 if state.G is None else 1)  # h − h*, h = ½f on X Xᵀ
        ok = (gap > 0) & (sq_norm > 0)
        return xp.where(ok, gap / xp.where(ok, sq_norm, xp.ones_like(sq_norm)), xp.zeros_like(f))

    def direction(self, state, grads):
        """The update direction (the sub-gradient itself; ScaledSM preconditions it)."""
        return grads

    def advance(self, state, dirs, eta, f):
        """The state after the step F − η·dir_F, G − η·dir_G (or X − η·dir_X)."""
        e = eta[:, None, None]
        if state.G is None:
            F, G = state.F - e * dirs[0], None
        else:
            F, G = state.F - e * dirs[0], state.G - e * dirs[1]
        return RobustState(F, G, state.t + 1, state.f_star, f, eta)
