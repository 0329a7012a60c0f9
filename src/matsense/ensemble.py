"""The record an ensemble is known by: what matsense needs to know about a measurement model.

One :class:`Ensemble` per ensemble, defined in the ensemble's own module next to
its operator (``matsense/operators/dense.py`` holds ``gaussian``, ...) or in a
plugin package, and looked up by name in :mod:`matsense.ensembles`. Everything
that differs between ensembles is a field here, so ``Problem.generate``,
``RunConfig`` (validation and memory estimate), the CLI, ``compare`` and the
claims' settings read the record and never name an ensemble:

* ``build(n1, n2=None, *, r, m, seed, **kw) -> Problem``: the seeded generator;
* ``data_bytes(n1, n2, m, *, symmetric)`` and ``work_bytes(m, k)``: the memory
  estimate (measurement data; what one operator call holds per trajectory);
* ``params``: run keys of this ensemble besides ``m`` (completion's ``p``), with
  their checks; ``count`` turns them into the number of measurements;
* ``claims``: the claims' per-ensemble defaults (:class:`ClaimDefaults`);
* ``help``, ``aliases``, ``square`` (needs n1 = n2), ``from_data``.

This module imports nothing of matsense but :mod:`matsense.limits`, so the
operator modules can define their records without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import limits

_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class Param:
    """A run key of one ensemble besides ``m`` (e.g. completion's observation probability p).

    ``check(value)`` returns the value or raises ``ValueError`` naming it and what is
    allowed (``allowed`` says it in words); ``types``: the accepted Python types of a
    run-file value; ``replaces_m``: when the key is given, the builder gets it instead of ``m``.
    """

    name: str
    help: str
    check: Callable[[Any], Any]
    allowed: str = ""
    types: tuple = (int, float)
    replaces_m: bool = False

    def describe(self) -> str:
        """'observation probability in (0, 1]': what the key is and what it allows."""
        return f"{self.help} {self.allowed}".strip()


@dataclass(frozen=True)
class ClaimDefaults:
    """What the claim experiments (:mod:`matsense.experiments.settings`) use per ensemble.

    ``size``: the presets' n1 and n2 are multiplied by it; ``params``: values of the
    ensemble's :class:`Param` keys when not set (completion: p = 2/3); ``generate``:
    extra builder arguments of the claims' problems; ``large``: the sizes of
    ``--setting large`` (None: that setting is not defined for the ensemble).
    """

    size: int = 1
    params: Mapping = field(default_factory=dict)
    generate: Mapping = field(default_factory=dict)
    large: Mapping | None = None


def _no_bytes(n1: int, n2: int, m: int, *, symmetric: bool = False) -> int:
    return 0


def _no_work(m: int, k: int) -> int:
    return 0


@dataclass(frozen=True)
class Ensemble:
    """One measurement ensemble (see the module docstring); calling it builds a problem."""

    name: str
    build: Callable
    help: str = ""
    data_bytes: Callable = _no_bytes
    work_bytes: Callable = _no_work
    params: tuple = ()
    count: Callable | None = None
    from_data: Callable | None = None
    aliases: tuple = ()
    square: bool = False
    claims: ClaimDefaults = field(default_factory=ClaimDefaults)

    def __call__(self, n1: int, n2: int | None = None, **kwargs):
        return self.build(n1, n2, **kwargs)

    # ------------------------------------------------------------ parameters
    def param(self, key: str) -> Param | None:
        """This ensemble's :class:`Param` named ``key`` (None: not one of its keys)."""
        return next((p for p in self.params if p.name == key), None)

    def check_params(self, values: Mapping) -> None:
        """ValueError (one line, naming the key) for a bad value of one of this ensemble's
        keys; keys of other ensembles are the caller's (:func:`matsense.ensembles.check_keys`)."""
        for key, value in values.items():
            param = self.param(key)
            if param is not None and value is not None:
                param.check(value)

    def check_shape(self, n1: int, n2: int) -> None:
        """ValueError when the ensemble needs square matrices and n1 != n2."""
        if self.square and n1 != n2:
            raise ValueError(f"the {self.name} ensemble needs n1 == n2, got n1={n1}, n2={n2}")

    def sizes(self, m: int, values: Mapping) -> dict:
        """The builder's size arguments: the given keys, and ``m`` unless one replaces it."""
        params = {p.name: p for p in self.params}
        given = {k: v for k, v in values.items() if v is not None and k in params}
        if any(params[k].replaces_m for k in given):
            return given
        return dict(given, m=m)

    def measurements(self, n1: int, n2: int, m: int, values: Mapping = _EMPTY) -> int:
        """The number of measurements of an n1 × n2 problem with ``m`` and the keys ``values``."""
        given = {k: v for k, v in values.items() if v is not None and self.param(k) is not None}
        return m if self.count is None else int(self.count(n1, n2, m, **given))

    # ---------------------------------------------------------------- memory
    def memory(self, n1: int, n2: int, r: int, m: int, *, symmetric: bool = False) -> int:
        """Estimated bytes of a generated problem (float64): the measurement data
        (``data_bytes``), y, M*'s factors, and M* itself where it is formed densely
        (:data:`matsense.limits.DENSE`, use 'truth')."""
        dense = n1 * n2 if limits.DENSE.allows((n1, n2), "truth") else 0
        truth = 8 * ((n1 + n2) * r + m + dense)
        return int(self.data_bytes(n1, n2, m, symmetric=symmetric)) + truth


__all__ = ["Ensemble", "Param", "ClaimDefaults"]
