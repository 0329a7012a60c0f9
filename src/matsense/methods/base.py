"""What every method shares: factor states, the product, and the method protocol.

A method is a frozen dataclass of hyper-parameters with two pure functions
(the optax / optimistix shape):

* ``init(problem, factors) -> state`` — factors carry a leading batch axis B;
* ``step(problem, state) -> (state, residual_norm)`` — one iteration; also
  returns ‖𝒜(P_t) − y‖ of the *input* iterate (each method computes that
  residual anyway), so the driver records the loss without another pass.

and two read-outs, ``factors(state)`` and ``extras(state)`` (per-trajectory
events such as the rebalancing switch). Stopping, recording, timing and
divergence checks live in :func:`matsense.run` only. States are NamedTuples
whose array fields all have the batch axis first, so the driver can freeze
finished trajectories with a batched ``where``.

Symbols follow the paper: F, G (asymmetric factors), X (symmetric factor),
S = 𝒜*(𝒜(P) − y), eta (step size η).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from .. import _validate as V
from .. import backend


class AsymState(NamedTuple):
    """Asymmetric factors F (B, n1, k) and G (B, n2, k)."""

    F: object
    G: object


class SymState(NamedTuple):
    """Symmetric factor X (B, n, k)."""

    X: object


class Method(Protocol):
    name: str

    def init(self, problem, factors): ...

    def step(self, problem, state): ...

    def factors(self, state) -> tuple: ...

    def extras(self, state) -> dict: ...


def product(factors: tuple):
    """P = F Gᵀ for ``(F, G)``, P = X Xᵀ for ``(X,)`` (batched)."""
    if len(factors) == 2:
        F, G = factors
        return F @ G.mT
    (X,) = factors
    return X @ X.mT


def sym(S):
    """sym(S) = (S + Sᵀ)/2 over the last two axes."""
    return (S + S.mT) / 2


def residual_norm(r):
    """‖r‖ per trajectory for a batch of residuals (B, m)."""
    xp = backend.namespace(r)
    return xp.linalg.vector_norm(r, axis=-1)


def is_symmetric_factors(factors: tuple) -> bool:
    return len(factors) == 1


def as_factors(init) -> tuple:
    """Normalize a user's ``init`` (X, (X,), or (F, G)) to a tuple of arrays."""
    if isinstance(init, (tuple, list)):
        if len(init) not in (1, 2):
            raise ValueError(
                f"init must be X, (X,) or (F, G); got a sequence of {len(init)} arrays"
            )
        return tuple(init)
    return (init,)


def require_asymmetric(method_name: str, factors: tuple):
    if len(factors) != 2:
        raise ValueError(f"{method_name} runs on F Gᵀ: pass init=(F0, G0), not a single X0")


def require_symmetric(method_name: str, factors: tuple):
    if len(factors) != 1:
        raise ValueError(f"{method_name} runs on X Xᵀ: pass init=X0, not (F0, G0)")


def step_size(value) -> float:
    return V.positive_float("step_size", value)
