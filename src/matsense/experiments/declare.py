"""What a claim declares about itself: its parameters (:class:`Param`) and its runs (:class:`RunSpec`).

A claim (:class:`~matsense.experiments.claims.base.Claim`) lists

* ``parameters``: the numbers only it uses — a fit window, a horizon, an
  iteration budget — each a :class:`Param` with its default, its quick-mode
  value, its type, whether ``--set NAME=VALUE`` may change it, and (for a
  value left ``None``) the rule that derives it from the rest of the settings;
* ``runs``: the runs it reads, each a :class:`RunSpec` (a name, a builder
  ``build(seed_runs)``, and the parameter that measures its cost) or the name of
  a run another claim declares (C5 reads C2's ``"sym_over"``).

The shared :class:`~matsense.experiments.settings.ClaimSettings` holds the
problem family; every declared parameter is read from it like a field
(``settings.c4_window``). :func:`declare` enters a claim's declarations in
:data:`PARAMS` and :data:`RUNS`: the built-in claims when
:mod:`matsense.experiments.claims` is imported, a plugin's claim when it is
loaded. A parameter or run declared by two claims is one object (one value,
computed once); two different declarations of one name are an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: A :class:`Param` without a quick-mode value of its own.
UNSET = _Unset()


@dataclass(frozen=True)
class Param:
    """One parameter of a claim (see the module docstring).

    ``type`` is the annotation as text ('int', 'float | None', 'tuple', 'tuple | None': tuples
    are of floats, ``None`` allowed only when written), which ``--set NAME=VALUE`` parses
    (``settable`` False keeps it off the command line); ``derive(settings)`` gives the value
    of a parameter left ``None`` when the settings are resolved (it may read other parameters
    by name: they are resolved first); ``rederive`` False keeps a derived value when the
    family's σ changes (:meth:`ClaimSettings.family`); ``check(name, value, settings)`` raises
    ValueError for a bad value that is not ``None``.
    """

    name: str
    default: object
    type: str
    help: str = ""
    quick: object = UNSET
    settable: bool = True
    derive: Callable | None = None
    rederive: bool = True
    check: Callable | None = None

    def value(self, mode: str):
        """The default in ``mode`` ('quick' or 'full')."""
        return self.quick if mode == "quick" and self.quick is not UNSET else self.default


@dataclass(frozen=True)
class RunSpec:
    """A run some claims read: ``build(seed_runs)`` makes it for one seed (a
    :class:`~matsense.experiments.runs.LabeledRun` or any object the claims read), ``cost``
    names the parameter (an iteration count) that ranks it, so the longest start first."""

    name: str
    build: Callable
    cost: str
    help: str = ""


#: name -> Param of every declared claim parameter.
PARAMS: dict[str, Param] = {}
#: name -> RunSpec of every declared run (``RUNS[name] = spec`` registers one by hand).
RUNS: dict[str, RunSpec] = {}
#: Names no claim parameter may take (the fields of ClaimSettings; filled by settings.py).
RESERVED: set[str] = set()
_OWNERS: dict[str, str] = {}
_FINDERS: list[Callable[[], object]] = []
_FINDING: list[bool] = []


def run_names(claim) -> tuple[str, ...]:
    """The names of the runs ``claim`` reads (its ``runs``: specs or names)."""
    return tuple(r.name if isinstance(r, RunSpec) else r for r in claim.runs)


def declare(claim):
    """Enter ``claim``'s parameters and runs in :data:`PARAMS` and :data:`RUNS`; returns it.

    ValueError (naming both claims) when a name is declared twice by different objects, a
    parameter takes a name of ClaimSettings' fields, or a run name is declared nowhere."""
    cid = getattr(claim, "id", "?")
    params, runs = tuple(getattr(claim, "parameters", ())), tuple(claim.runs)
    for p in params:
        if not isinstance(p, Param):
            raise ValueError(
                f"claim {cid}: parameters must be matsense.experiments.declare.Param, got {p!r}"
            )
        if p.name in RESERVED:
            raise ValueError(
                f"claim {cid}: parameter {p.name!r} takes the name of a field of "
                f"ClaimSettings ({', '.join(sorted(RESERVED))}); rename it"
            )
    for spec in runs:
        if not isinstance(spec, (RunSpec, str)):
            raise ValueError(
                f"claim {cid}: runs must be RunSpec objects or names of declared runs, got {spec!r}"
            )
    specs = [r for r in runs if isinstance(r, RunSpec)]
    tables = ((PARAMS, "parameter", params), (RUNS, "run", specs))
    for table, kind, items in tables:
        for obj in items:
            known = table.get(obj.name)
            if known is not None and known is not obj:
                raise ValueError(
                    f"claim {cid} declares {kind} {obj.name!r}, which claim "
                    f"{_OWNERS.get(kind + obj.name, '?')} declares differently; "
                    "share the one object (or its name) instead"
                )
    unknown = [
        r for r in runs if isinstance(r, str) and r not in RUNS and r not in {s.name for s in specs}
    ]
    if unknown:
        raise ValueError(
            f"claim {cid} reads runs {unknown} that no claim declares (known: "
            f"{', '.join(RUNS)}); declare them as RunSpec in its runs"
        )
    for table, kind, items in tables:
        for obj in items:
            table.setdefault(obj.name, obj)
            _OWNERS.setdefault(kind + obj.name, cid)
    return claim


def forget(claim) -> None:
    """Remove what :func:`declare` entered for ``claim`` (a claim registered by hand, in a
    session or a test, that is gone again)."""
    cid = getattr(claim, "id", "?")
    for table, kind, items in (
        (PARAMS, "parameter", getattr(claim, "parameters", ())),
        (RUNS, "run", [r for r in claim.runs if isinstance(r, RunSpec)]),
    ):
        for obj in items:
            name = obj.name
            if table.get(name) is obj and _OWNERS.get(kind + name) == cid:
                del table[name]
                del _OWNERS[kind + name]


def resolved(settings) -> dict:
    """name -> value of every declared parameter in ``settings``, a ``None`` derived by its rule."""
    view = _Resolving(settings)
    return {name: getattr(view, name) for name in list(PARAMS)}


class _Resolving:
    """The settings as the parameters' rules see them: a claim parameter that is ``None`` is
    derived by its rule when first read (rules read each other by name, in any order)."""

    def __init__(self, settings) -> None:
        self._settings = settings
        self._values: dict = {}
        self._busy: list[str] = []

    def __getattr__(self, name):
        p = PARAMS.get(name)
        if p is None:
            return getattr(self._settings, name)
        if name not in self._values:
            value = getattr(self._settings, name)
            if value is None and p.derive is not None:
                if name in self._busy:
                    raise ValueError(
                        f"the rules of the claim parameters {self._busy} read each "
                        "other in a circle"
                    )
                self._busy.append(name)
                value = p.derive(self)
                self._busy.remove(name)
            self._values[name] = value
        return self._values[name]


# ------------------------------------------------------------------ checks
# A Param's check(name, value, settings): ValueError when the value is bad.
def positive_values(name: str, values, settings=None) -> None:
    """Check a tuple of α: not empty, every value a positive float (None passes)."""
    from .. import _validate as V

    if values is not None:
        if len(values) == 0:
            raise ValueError(f"{name} must not be empty")
        for a in values:
            V.positive_float(name, a)


def positive_int(name: str, value, settings=None) -> None:
    """An integer >= 1 (an iteration count, a number of checkpoints)."""
    from .. import _validate as V

    V.int_in_range(name, value, 1)


def positive_number(name: str, value, settings=None) -> None:
    """A finite number > 0 (a tolerance, a time, a fraction)."""
    from .. import _validate as V

    V.positive_float(name, value)


def fit_window(name: str, value, settings=None) -> None:
    """A fit window (upper, lower): two numbers with upper > lower > 0."""
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
    )
    if not (ok and value[0] > value[1] > 0):
        raise ValueError(
            f"{name} must be two numbers upper,lower with upper > lower > 0 (a window "
            f"of the error relative to its start), got {value!r}"
        )


def on_unknown(finder: Callable[[], object]) -> None:
    """Call ``finder()`` (e.g. load the claim plugins) before a name is reported unknown."""
    _FINDERS.append(finder)


def _find() -> None:
    if _FINDING:  # a finder that asks for an unknown name while it loads
        return
    _FINDING.append(True)
    try:
        for finder in _FINDERS:
            finder()
    finally:
        _FINDING.clear()


def param(name: str) -> Param | None:
    """The declared parameter ``name`` (the claim plugins are loaded first if it is not a
    built-in one); None when no claim declares it."""
    if name not in PARAMS:
        _find()
    return PARAMS.get(name)


def run(name: str) -> RunSpec:
    """The declared run ``name``; ValueError listing the known ones when none is."""
    if name not in RUNS:
        _find()
    try:
        return RUNS[name]
    except KeyError:
        raise ValueError(f"unknown run {name!r}; known: {', '.join(RUNS)}") from None


__all__ = [
    "Param",
    "RunSpec",
    "UNSET",
    "PARAMS",
    "RUNS",
    "declare",
    "forget",
    "param",
    "run",
    "run_names",
    "resolved",
    "positive_values",
    "positive_int",
    "positive_number",
    "fit_window",
]
