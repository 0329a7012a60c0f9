"""The ensembles matsense knows, by name: the built-ins, then the plugins.

Each built-in ensemble is an :class:`~matsense.ensemble.Ensemble` record in the
module of its operator (:data:`matsense.operators.BUILTIN_ENSEMBLES` lists them
in order); other packages add theirs through the entry-point group
``matsense.ensembles`` (:data:`PLUGINS`, docs/plugins.md), naming either a
record or a plain builder ``(n1, n2, *, r, m, seed, **kw) -> Problem`` (then made
a record here, its ``memory_bytes(n1, n2, m)`` attribute the data estimate).

:func:`get` is the one lookup (built-in names and aliases never read the entry
points); :func:`names`, :func:`unknown`, :func:`check_keys` and
:func:`problem_bytes` are what ``Problem.generate``, ``RunConfig``, the CLI,
``compare`` and the claims' settings use instead of naming an ensemble.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping

from . import plugins
from .ensemble import ClaimDefaults, Ensemble, Param
from .operators import BUILTIN_ENSEMBLES

#: The built-in records by name, in their order (the first is the default ensemble).
BUILTIN: Mapping[str, Ensemble] = {e.name: e for e in BUILTIN_ENSEMBLES}
#: The built-in names (``matsense.problems.ENSEMBLES``).
NAMES: tuple[str, ...] = tuple(BUILTIN)
#: Other spellings of built-in names (``"symmetric"`` for ``"symmetric-gaussian"``).
ALIASES: Mapping[str, str] = {a: e.name for e in BUILTIN_ENSEMBLES for a in e.aliases}
#: The ensemble of a run that names none.
DEFAULT = NAMES[0]


def _checked_build(name: str, build):
    """A plugin's builder with its arguments checked first (a TypeError from inside the
    builder is its own) and its result checked, ``meta['ensemble']`` naming it."""

    def checked(n1, n2=None, **kwargs):
        from .problems import Problem

        try:
            inspect.signature(build).bind(n1, n2, **kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"ensemble plugin {name!r} does not take ({n1}, {n2}, "
                f"{', '.join(f'{k}=' for k in kwargs)}): {exc}; a builder takes "
                "(n1, n2, *, r, m, seed, **kw)"
            ) from None
        problem = build(n1, n2, **kwargs)
        if not isinstance(problem, Problem):
            raise ValueError(
                f"ensemble plugin {name!r} returned {type(problem).__name__}, "
                "not a matsense.problems.Problem"
            )
        return problem.replace(meta={**problem.meta, "ensemble": name})

    return checked


def as_record(name: str, obj) -> Ensemble:
    """The record of plugin ``name``: ``obj`` itself (a record of that name) or a builder
    function made one; its builder checked (:func:`_checked_build`)."""
    obj = plugins.check_ensemble(name, obj)
    if isinstance(obj, Ensemble):
        if obj.name != name:
            raise ValueError(
                f"the Ensemble's name is {obj.name!r}, not the entry point's name {name!r}"
            )
        return dataclasses.replace(obj, build=_checked_build(name, obj.build))
    estimate = getattr(obj, "memory_bytes", None)
    doc = (inspect.getdoc(obj) or "").strip().splitlines()
    return Ensemble(
        name,
        _checked_build(name, obj),
        help=doc[0] if doc else "",
        data_bytes=(lambda n1, n2, m, symmetric=False: 0)
        if estimate is None
        else (lambda n1, n2, m, symmetric=False: int(estimate(n1, n2, m))),
    )


#: Ensembles of other packages (entry-point group ``matsense.ensembles``, read on first use),
#: name -> :class:`~matsense.ensemble.Ensemble`. ``all`` (``reproduce --ensemble all``), the
#: built-in names and their aliases are taken.
PLUGINS = plugins.Registry("ensemble", {}, as_record, reserved=(*NAMES, *ALIASES, "all"))


def names() -> tuple[str, ...]:
    """Every ensemble name :func:`get` knows: the built-ins, then the plugins'."""
    return NAMES + tuple(PLUGINS)


def unknown(name) -> ValueError:
    """The error for a name :func:`get` does not know (a broken plugin's own message when a
    plugin of that name was left out)."""
    return PLUGINS.unknown(name, f"unknown ensemble {name!r}; known: {', '.join(names())}")


def get(name) -> Ensemble:
    """The record of ensemble ``name`` (a built-in name or alias, or a plugin's name);
    ``ValueError`` (one line, listing the known names) otherwise."""
    if isinstance(name, str):
        record = BUILTIN.get(ALIASES.get(name, name))
        if record is not None:
            return record
        if name in PLUGINS:
            return PLUGINS[name]
    raise unknown(name)


def with_large() -> tuple[str, ...]:
    """The built-in ensembles that define sizes for ``--setting large``, in name order."""
    return tuple(sorted(e.name for e in BUILTIN_ENSEMBLES if e.claims.large is not None))


def keys() -> dict[str, tuple[Param, list[str]]]:
    """Every ensemble-specific run key of the built-ins: key -> (its Param, owners' names)."""
    out: dict[str, tuple[Param, list[str]]] = {}
    for record in BUILTIN_ENSEMBLES:
        for param in record.params:
            out.setdefault(param.name, (param, []))[1].append(record.name)
    return out


def check_keys(record: Ensemble, values: Mapping) -> None:
    """ValueError ``(key, message)`` for a key of another ensemble given a value (``p`` with
    'gaussian'), or a bad value of one of ``record``'s keys; the key is ``args[0]``."""
    for key, value in values.items():
        if value is None:
            continue
        own = record.param(key)
        if own is None:
            param, owners = keys()[key]
            raise ValueError(
                key,
                f"{key} ({param.help}) applies to the "
                f"{', '.join(owners)} ensemble only, not {record.name!r}",
            )
        try:
            own.check(value)
        except ValueError as exc:
            raise ValueError(key, str(exc)) from None


def problem_bytes(name: str, n1: int, n2: int, r: int, m: int, *, symmetric: bool = False) -> int:
    """Estimated bytes of a generated problem of ensemble ``name`` (:meth:`Ensemble.memory`)."""
    return get(name).memory(n1, n2, r, m, symmetric=symmetric)


def listing() -> str:
    """'gaussian (default), symmetric-gaussian, rank-one, completion': the built-ins, for help
    texts."""
    return ", ".join(f"{name} (default)" if name == DEFAULT else name for name in NAMES)


def large_listing() -> str:
    """'completion: n1 = 10000, p = 0.01; rank-one: n1 = 2000, m = 100000': the sizes of
    ``--setting large``, for help texts."""

    def size(record):
        values = record.claims.large
        keep_m = "m" in record.sizes(values.get("m", 0), values)  # else a key replaces m
        return ", ".join(f"{k} = {v:g}" for k, v in values.items() if k != "m" or keep_m)

    return "; ".join(f"{name}: {size(get(name))}" for name in with_large())


__all__ = [
    "BUILTIN",
    "NAMES",
    "ALIASES",
    "DEFAULT",
    "PLUGINS",
    "Ensemble",
    "Param",
    "ClaimDefaults",
    "names",
    "unknown",
    "get",
    "with_large",
    "keys",
    "check_keys",
    "problem_bytes",
    "as_record",
    "listing",
    "large_listing",
]
