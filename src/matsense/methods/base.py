"""What every method shares: factor states, the product, parameters, phases, the base class.

A method is a frozen dataclass of hyper-parameters with two pure functions
(the optax / optimistix shape):

* ``init(problem, factors) -> state`` — factors carry a leading batch axis B;
* ``step(problem, state) -> (state, residual_norm)`` — one iteration; also
  returns ‖𝒜(P_t) − y‖ of the *input* iterate (each method computes that
  residual anyway), so the driver records the loss without another pass.

and two read-outs, ``factors(state)`` and ``extras(state)`` (per-trajectory
events such as the rebalancing switch). A method can split its step in two
(matsense's own do): ``request(problem, state)`` names the first operator
evaluation (an :class:`~matsense.operators.stacking.Evaluation`) and
``advance(problem, state, answer)`` finishes the step from its answer;
:meth:`Method.step` is then ``advance(problem, state, problem.evaluate(request))``,
and :func:`matsense.run_together` answers the requests of several runs with one
stacked operator call. Stopping, recording, timing and
divergence checks live in :func:`matsense.run` only. States are NamedTuples
whose array fields all have the batch axis first, so the driver can freeze
finished trajectories with a batched ``where``.

:class:`Method` is the base class of matsense's own methods: it validates the
hyper-parameters declared with :func:`param` (one place instead of a
``__post_init__`` per method), builds the plain factor state, and says which
parameterizations the method runs on. A method of your own needs none of it:
any object with ``init``, ``step``, ``factors`` and ``extras`` runs (see
docs/api.md).

Symbols follow the paper: F, G (asymmetric factors), X (symmetric factor),
S = 𝒜*(𝒜(P) − y), eta (step size η).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol

from .. import _validate as V
from .. import backend, compat
from ..operators.stacking import Evaluation


class AsymState(NamedTuple):
    """Asymmetric factors F (B, n1, k) and G (B, n2, k)."""

    F: object
    G: object


class SymState(NamedTuple):
    """Symmetric factor X (B, n, k)."""

    X: object


def factor_state(factors: tuple):
    """The plain state of ``factors``: :class:`AsymState` for (F, G), :class:`SymState` for (X,)."""
    return AsymState(*factors) if len(factors) == 2 else SymState(*factors)


class MethodProtocol(Protocol):
    """What the driver needs of a method (matsense's own derive from :class:`Method`)."""

    def init(self, problem, factors): ...

    def step(self, problem, state): ...

    def factors(self, state) -> tuple: ...

    def extras(self, state) -> dict: ...


# ------------------------------------------------------------------ phases
@dataclass(frozen=True)
class Phase:
    """A stretch of a trajectory with a rate of its own: iterations [start, end) (end None: to the end).

    A method declares its phases from its per-trajectory extras (see
    :meth:`Method.phases`); the last phase is the one whose linear rate the CLI,
    sweeps and claims report (for rebalanced GD: after the switch). ``event``
    names what starts the phase (drawn as a vertical line in figures).
    """

    name: str
    start: int = 0
    end: int | None = None
    event: str | None = None

    def contains(self, t):
        """Mask of the iterations ``t`` (array) inside the phase."""
        import numpy as np

        t = np.asarray(t)
        inside = t >= self.start
        return inside if self.end is None else inside & (t < self.end)


def phases_of(method, extras: dict) -> tuple[Phase, ...]:
    """The phases ``method`` declares for one trajectory (one phase for methods without any)."""
    declare = getattr(method, "phases", None)
    return tuple(declare(extras)) if declare is not None else (Phase("run"),)


# -------------------------------------------------------------- parameters
def param(default, check: Callable | None = None, help: str = ""):
    """A hyper-parameter field: ``check(name, value)`` validates (and may normalize) it at
    construction; ``help`` is the one-line description the CLI shows."""
    return dataclasses.field(default=default, metadata={"check": check, "help": help})


def positive(name: str, value) -> float:
    return V.positive_float(name, value)


def non_negative(name: str, value) -> float:
    return V.positive_float(name, value, allow_zero=True)


def optional(check: Callable) -> Callable:
    """``check`` for a parameter that may also be None."""
    return lambda name, value: None if value is None else check(name, value)


def below(limit: float, check: Callable = positive) -> Callable:
    """``check`` and then value < ``limit`` (e.g. a step size in (0, 2))."""

    def run(name, value):
        value = check(name, value)
        if value >= limit:
            lo = "[0" if check is non_negative else "(0"
            raise ValueError(f"{name} must be in {lo}, {limit:g}), got {value}")
        return value

    return run


def integer(lo: int) -> Callable:
    return lambda name, value: V.int_in_range(name, value, lo)


# ------------------------------------------------------------------ methods
@dataclass(frozen=True)
class Method:
    """Base class of matsense's methods: validated hyper-parameters and the plain factor state.

    Subclasses are frozen dataclasses whose fields are declared with
    :func:`param`; they set the class attributes ``name`` (the registry
    name), ``parameterizations`` (a subset of ``("asymmetric", "symmetric")``:
    F Gᵀ and/or X Xᵀ) and optionally ``note`` (printed by the CLI), and
    implement ``step``. ``init``/``factors``/``extras``/``phases`` have defaults.
    """

    name: ClassVar[str] = "method"
    parameterizations: ClassVar[tuple[str, ...]] = ("asymmetric", "symmetric")
    note: ClassVar[str | None] = None

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            if check is not None:
                object.__setattr__(self, f.name, check(f.name, getattr(self, f.name)))

    # ------------------------------------------------------------ protocol
    def init(self, problem, factors):
        self.check_factors(factors)
        return factor_state(factors)

    def step(self, problem, state):
        """One iteration: the evaluation :meth:`request` names, then :meth:`advance`."""
        request = self.request(problem, state)
        if request is None:
            raise NotImplementedError(
                f"{type(self).__name__} implements neither step() nor request() and advance()"
            )
        return self.advance(problem, state, problem.evaluate(request))

    def request(self, problem, state) -> Evaluation | None:
        """The first operator evaluation of :meth:`step` (None: the method implements
        ``step`` itself)."""
        return None

    def advance(self, problem, state, answer):  # pragma: no cover - abstract
        """The rest of the step, from ``answer`` = ``problem.evaluate(request)``."""
        raise NotImplementedError

    def factors(self, state) -> tuple:
        return tuple(state)

    def extras(self, state) -> dict:
        return {}

    def phases(self, extras: dict) -> tuple[Phase, ...]:
        """Phases of one trajectory from its extras (scalars); one phase by default."""
        return (Phase("run"),)

    # --------------------------------------------------------------- helpers
    def check_factors(self, factors: tuple) -> None:
        """ValueError when ``factors`` are of a parameterization this method does not run on."""
        kind = "asymmetric" if len(factors) == 2 else "symmetric"
        if kind not in self.parameterizations:
            cls = type(self).__name__
            if kind == "symmetric":
                raise ValueError(f"{cls} runs on F Gᵀ: pass init=(F0, G0), not a single X0")
            raise ValueError(f"{cls} runs on X Xᵀ: pass init=X0, not (F0, G0)")

    @classmethod
    def parameters(cls) -> tuple[dataclasses.Field, ...]:
        """The hyper-parameter fields (name, default, ``metadata['help']``)."""
        return dataclasses.fields(cls)

    def params(self) -> dict:
        """The hyper-parameters as a dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


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


def request_of(method, problem, state) -> Evaluation | None:
    """The evaluation ``method``'s step asks for first, when its step is :meth:`Method.step`
    (:meth:`Method.request`, then :meth:`Method.advance`); else None: its step makes its
    own calls (a method of your own, or a subclass that overrides ``step``)."""
    if getattr(type(method), "step", None) is not Method.step:
        return None
    return method.request(problem, state)


def gradient_request(state) -> Evaluation:
    """The evaluation a gradient step needs: r, S G, Sᵀ F at (F, G), or at (X, X) for X Xᵀ."""
    if isinstance(state, SymState):
        return Evaluation(state.X, state.X)
    return Evaluation(state.F, state.G)


def gradients_from(state, answer):
    """(r, ∇_F-part, ∇_G-part) from the answer to :func:`gradient_request`.

    For F Gᵀ: (r, S G, Sᵀ F); for X Xᵀ: (r, sym(S) X, None) with
    sym(S) X = (S X + Sᵀ X)/2 — the gradients of ½‖r‖² and ¼‖r‖²
    (docs/conventions.md), S = 𝒜*(r), r = 𝒜(P) − y.
    """
    r, SG, StF = answer
    if isinstance(state, SymState):
        return r, (SG + StF) / 2, None
    return r, SG, StF


def gradients(problem, state):
    """(r, ∇_F-part, ∇_G-part) of a factor state from one factored operator call
    (:func:`gradients_from` of ``problem.evaluate(gradient_request(state))``)."""
    return gradients_from(state, problem.evaluate(gradient_request(state)))


def residual_norm(r):
    """‖r‖ per trajectory for a batch of residuals (B, m)."""
    xp = backend.namespace(r)
    return xp.linalg.vector_norm(r, axis=-1)


def as_factors(init) -> tuple:
    """Normalize a user's ``init`` (X, (X,), or (F, G)) to a tuple of arrays."""
    if isinstance(init, (tuple, list)):
        if len(init) not in (1, 2):
            raise ValueError(
                f"init must be X, (X,) or (F, G); got a sequence of {len(init)} arrays"
            )
        return tuple(init)
    return (init,)


def _step_size(value) -> float:
    """Validate a step size: what the deprecated ``step_size()`` does (matsense.compat)."""
    return V.positive_float("step_size", value)


def __getattr__(name):  # step_size(): deprecated (matsense.compat.DEPRECATED)
    return compat.attribute(__name__, name)
