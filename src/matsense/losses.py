"""Losses as a component: ℓ2 (matsense's default), ℓ1 and Huber, and their residual maps.

With r = 𝒜(P) − y (𝒜 scaled by 1/√m, docs/conventions.md) and m measurements:

* ``l2``: f = ½‖r‖², φ(r) = r (no map: the plain kernels);
* ``l1``: f = ‖r‖₁/√m (= (1/m)Σ|⟨A_i, P⟩ − ỹ_i| on the unscaled data),
  φ(r) = sign(r)/√m, 0 where r_i = 0 (the honest sub-gradient);
* ``huber``: f = Σ h_δ(r_i), φ(r) = clip(r, −δ, δ);

the (sub-)gradient in P is D = 𝒜*(φ(r)). h_δ(t) = t²/2 for |t| ≤ δ and
δ(|t| − δ/2) beyond (δ in the units of r). The ℓ1 scaling is Ma & Fattahi's
(docs/robust.md). On X Xᵀ the objective is
½ f(X Xᵀ) with gradient sym(𝒜*(φ(r))) X (the ¼‖r‖² convention of ℓ2 GD); on
F Gᵀ it is f(F Gᵀ) with gradients (D G, Dᵀ F), D = 𝒜*(φ(r)).

The operators' factored calls take the map (``residual_and_grads(F, G, y,
rmap)``, ``residual_and_adjoint(P, y, rmap)``) and every kernel applies it
between the residual and the adjoint in its one pass; ``rmap=None`` (ℓ2) runs
the plain code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import _validate as V
from . import backend

#: The losses by name.
LOSSES = ("l2", "l1", "huber")

_CODES = {"sign": 1, "clip": 2}


@dataclass(frozen=True)
class ResidualMap:
    """φ applied to the residual before the adjoint (S = 𝒜*(φ(r))), elementwise.

    ``kind='sign'``: φ(r) = scale·sign(r) (0 where r = 0); ``kind='clip'``:
    φ(r) = scale·clip(r, −delta, delta). :attr:`code`, :attr:`scale` and
    :attr:`delta` are what the compiled kernels take (:mod:`matsense.operators.kernels._rmap`).
    """

    kind: str
    scale: float = 1.0
    delta: float = 0.0

    @property
    def code(self) -> int:
        return _CODES[self.kind]

    def __call__(self, r):
        xp = backend.namespace(r)
        if self.kind == "sign":
            return xp.sign(r) * self.scale
        return xp.clip(r, -self.delta, self.delta) * self.scale


def check_loss(name: str, value) -> str:
    """``value`` if it names a loss; else one ValueError naming it and the allowed ones."""
    if value not in LOSSES:
        raise ValueError(f"{name} must be one of {', '.join(LOSSES)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Loss:
    """A loss by name (``l2``, ``l1``, ``huber`` with threshold ``delta`` > 0)."""

    name: str = "l2"
    delta: float = 1e-3

    def __post_init__(self):
        check_loss("loss", self.name)
        V.positive_float("huber_delta", self.delta)

    def rmap(self, m: int) -> ResidualMap | None:
        """The residual map of this loss for m measurements (None for ℓ2)."""
        if self.name == "l1":
            return ResidualMap("sign", 1.0 / math.sqrt(m))
        if self.name == "huber":
            return ResidualMap("clip", 1.0, self.delta)
        return None

    def value(self, r):
        """f per trajectory from residuals r (B, m) (see the module docstring)."""
        xp = backend.namespace(r)
        if self.name == "l1":
            return xp.sum(xp.abs(r), axis=-1) / math.sqrt(r.shape[-1])
        if self.name == "huber":
            a = xp.abs(r)
            quad = xp.minimum(a, self.delta)
            return xp.sum(quad * (a - quad) + quad * quad / 2, axis=-1)
        return xp.sum(r * r, axis=-1) / 2


def loss_grads(problem, F, G, rmap):
    """(r, D G, Dᵀ F) with D = 𝒜*(φ(r)) for the problem's operator (φ = ``rmap``; ℓ2 if None).

    ℓ2 goes through ``problem.residual_and_grads``; a map goes to the operator's factored
    call. (The robust methods implement ``step`` themselves: :func:`matsense.run_together`
    evaluates them one run at a time, not stacked with other runs.)
    """
    if rmap is None:
        return problem.residual_and_grads(F, G)
    return problem.operator.residual_and_grads(F, G, problem.y, rmap)
