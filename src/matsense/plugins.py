"""Plugins: methods, ensembles, initializations and claims from other packages.

A package adds to matsense without editing it by declaring entry points (the
mechanism of pytest and benchopt plugins) in its ``pyproject.toml``::

    [project.entry-points."matsense.methods"]
    heavy_ball_gd = "my_package.methods:HeavyBallGD"

``matsense.methods``
    a method class: a dataclass with ``name``, ``init``, ``step``, ``factors`` and
    ``extras``; joins :data:`matsense.methods.METHODS`.
``matsense.ensembles``
    a :class:`~matsense.ensemble.Ensemble` record, or a builder
    ``(n1, n2, *, r, m, seed, **kw) -> Problem`` (made a record); joins
    :data:`matsense.ensembles.PLUGINS` (``Problem.generate``).
``matsense.inits``
    an :class:`~matsense.init.InitSpec`; joins :data:`matsense.init.INITS`.
``matsense.claims``
    a :class:`~matsense.experiments.claims.base.Claim` (an instance, or a class built
    with no arguments); joins :data:`matsense.experiments.CLAIMS`.

The entry point's name is the name matsense knows the plugin by (a run file's
``method``/``ensemble``/``init`` key, ``matsense run --method NAME``,
``reproduce --claims ID``); the object must carry the same name (``name``,
``InitSpec.name``, ``Claim.id``). docs/plugins.md walks through an example.

Each group is read once per process and lazily: on the first lookup of a
name matsense does not have built in, or on the first listing of the registry
(the CLI lists the methods to build its flags). A lookup of a built-in name
never reads the entry points. What a plugin names is checked when it is
loaded; a plugin that cannot be imported, fails the check, or takes the name
of a built-in (or of another plugin) is left out with one
:class:`PluginWarning` line naming the entry point and its distribution, and
asking for it by name raises ``ValueError`` with the same message. So a broken
plugin never breaks ``import matsense`` or the CLI of a user who does not ask
for it. :func:`installed` lists every plugin found (``matsense plugins``).
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from importlib import metadata

#: Entry-point group of each kind of plugin.
GROUPS = {
    "method": "matsense.methods",
    "ensemble": "matsense.ensembles",
    "init": "matsense.inits",
    "claim": "matsense.claims",
}

#: Options of ``matsense run`` that are not run-file keys: no method hyper-parameter may take
#: their names (the run-file keys themselves are ``matsense.config.CORE_KEYS``).
RUN_OPTIONS = (
    "config",
    "out",
    "figure",
    "no_figure",
    "no_progress",
    "forced_progress",
    "verbose",
    "max_memory",
    "param",
    "help",
    "command",
    "func",
)


class PluginWarning(UserWarning):
    """A plugin was found but left out (the message names its entry point and distribution)."""


@dataclass(frozen=True)
class Plugin:
    """One entry point of a matsense group, as :func:`installed` reports it.

    ``error`` is None for a plugin in use, else why it was left out.
    """

    group: str
    name: str
    value: str
    distribution: str
    error: str | None = None


def origin(ep) -> str:
    """'entry point NAME = VALUE of distribution DIST VERSION' (what a message names)."""
    dist = getattr(ep, "dist", None)
    where = f"{dist.name} {dist.version}" if dist is not None else "unknown"
    return f"entry point '{ep.name} = {ep.value}' in group {ep.group} of distribution {where}"


def _distribution(ep) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "unknown"


def _one_line(text: object) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class Registry(MutableMapping):
    """Names → objects of one kind: the built-ins, then the plugins of :data:`GROUPS` [kind].

    Reads like the dict it replaces (``name in R``, ``R[name]``, ``R.items()``);
    assigning ``R[name] = obj`` registers an object in this process (it takes
    precedence over a plugin of that name). Built-in names never read the
    entry points; other lookups and any listing load them once.

    Parameters
    ----------
    kind : str
        'method', 'ensemble', 'init' or 'claim' (a key of :data:`GROUPS`).
    builtins : mapping
        The built-in objects by name.
    check : callable
        ``check(name, obj) -> obj``: ValueError when the plugin's object does
        not fit (may return a normalized object, e.g. a class instantiated).
    reserved : iterable of str
        Names no plugin may take besides the built-ins' (e.g. ``all``).
    """

    def __init__(self, kind: str, builtins: Mapping, check: Callable, reserved=(), forget=None):
        self.kind = kind
        self._forget = forget  # undoes what ``check`` entered elsewhere for a plugin (or None)
        self.group = GROUPS[kind]
        self._own = dict(builtins)
        self._reserved = frozenset(builtins) | frozenset(reserved)
        self._check = check
        self._plugins: dict | None = None
        self._broken: dict[str, str] = {}
        self._found: list[Plugin] = []
        _REGISTRIES.append(self)

    # ------------------------------------------------------------- loading
    def plugins(self) -> dict:
        """The plugins of this group in use, name → object (loaded on the first call)."""
        if self._plugins is None:
            self._plugins, self._broken, self._found = _load(self.kind, self._check, self._reserved)
        return self._plugins

    def own(self) -> dict:
        """The entries that do not come from entry points (the built-ins), name → object."""
        return dict(self._own)

    def broken(self, name: str) -> str | None:
        """Why the plugin ``name`` was left out (None: no such broken plugin)."""
        self.plugins()
        return self._broken.get(name)

    def unknown(self, name, message: str) -> ValueError:
        """The error for a name not in the registry: the broken plugin's own message when one
        of that name was left out, else ``message``."""
        broken = self.broken(name) if isinstance(name, str) else None
        return ValueError(broken or message)

    def reset(self) -> None:
        """Forget the loaded plugins (the next lookup reads the entry points again)."""
        if self._forget is not None:
            for obj in (self._plugins or {}).values():
                self._forget(obj)
        self._plugins, self._broken, self._found = None, {}, []

    # ------------------------------------------------------- mapping interface
    def __getitem__(self, name):
        if not isinstance(name, str):
            raise KeyError(name)
        if name in self._own:
            return self._own[name]
        return self.plugins()[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._own
        yield from (name for name in self.plugins() if name not in self._own)

    def __len__(self) -> int:
        return len(self._own) + sum(name not in self._own for name in self.plugins())

    def __setitem__(self, name, obj) -> None:
        self._own[name] = obj

    def __delitem__(self, name) -> None:
        del self._own[name]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {dict(self)!r})"


#: Every registry, so that :func:`reset` forgets all loaded plugins.
_REGISTRIES: list[Registry] = []


def entry_points(group: str):
    """The entry points of ``group`` in the distributions on ``sys.path`` (name order)."""
    return sorted(metadata.entry_points(group=group), key=lambda ep: (ep.name, ep.value))


def _load(kind: str, check: Callable, reserved: frozenset):
    """(name → object, name → error, every Plugin) of group ``GROUPS[kind]``; one
    :class:`PluginWarning` per plugin left out."""
    group = GROUPS[kind]
    good: dict[str, object] = {}
    broken: dict[str, str] = {}
    origins: dict[str, str] = {}
    eps = entry_points(group)
    for ep in eps:
        name, here = ep.name, origin(ep)
        if name in reserved:
            broken[name] = (
                f"{kind} plugin {name!r} ({here}) takes the name of a built-in "
                f"{kind}; it is left out: rename the entry point"
            )
        elif name in origins:
            good.pop(name, None)
            broken[name] = (
                f"{kind} plugin {name!r} is defined twice ({origins[name]}; {here}); "
                "both are left out: uninstall one"
            )
        else:
            origins[name] = here
            try:
                good[name] = _checked(ep, check)
            except ValueError as exc:
                broken[name] = f"{kind} plugin {name!r} ({here}) is left out: {_one_line(exc)}"
    for message in broken.values():
        warnings.warn_explicit(message, PluginWarning, "matsense.plugins", 0)
    found = [Plugin(group, ep.name, ep.value, _distribution(ep), broken.get(ep.name)) for ep in eps]
    return good, broken, found


def _checked(ep, check: Callable):
    """The object ``ep`` names, checked; ValueError (one line) when it cannot be loaded."""
    try:
        obj = ep.load()
    except Exception as exc:  # noqa: BLE001 - any import error of a third-party module
        raise ValueError(f"cannot be loaded ({type(exc).__name__}: {exc})") from None
    return check(ep.name, obj)


def reset() -> None:
    """Forget every loaded plugin: the next lookup reads the entry points again (for tests,
    and after installing a plugin into a running process)."""
    for registry in _REGISTRIES:
        registry.reset()


def installed() -> list[Plugin]:
    """Every entry point of the matsense groups, in use or left out (loads them)."""
    from . import init, problems
    from .experiments import claims
    from .methods import METHODS

    out = []
    for registry in (METHODS, problems.ENSEMBLE_PLUGINS, init.INITS, claims.CLAIMS):
        registry.plugins()
        out.extend(registry._found)
    return out


# ------------------------------------------------------------------ the checks
def check_method(name: str, obj):
    """A method class: a dataclass (its fields are the hyper-parameters: run-file keys and
    ``matsense run`` flags) with ``init``, ``step``, ``factors``, ``extras`` and ``name``."""
    from .config import CORE_KEYS

    if not inspect.isclass(obj):
        raise ValueError(f"a method plugin must name a class, got {type(obj).__name__} {obj!r}")
    if not dataclasses.is_dataclass(obj):
        raise ValueError(
            f"{obj.__qualname__} is not a dataclass: a method's dataclass fields "
            "are its hyper-parameters"
        )
    missing = [
        a for a in ("init", "step", "factors", "extras") if not callable(getattr(obj, a, None))
    ]
    if missing:
        raise ValueError(
            f"{obj.__qualname__} has no {', '.join(missing)} (a method needs init, "
            "step, factors and extras: matsense.methods.base.Method)"
        )
    if getattr(obj, "name", None) != name:
        raise ValueError(
            f"{obj.__qualname__}.name is {getattr(obj, 'name', None)!r}, not the "
            f"entry point's name {name!r}"
        )
    taken = [
        f.name
        for f in dataclasses.fields(obj)
        if f.name != "name" and (f.name in CORE_KEYS or f.name in RUN_OPTIONS)
    ]
    if taken:
        raise ValueError(
            f"{obj.__qualname__} has hyper-parameters named like run keys or "
            f"options of matsense run: {', '.join(taken)}; rename them"
        )
    from .flags import check_method as check_flags
    from .methods import METHODS

    check_flags(name, obj, METHODS.own())  # one flag per name: a switch or a value, not both
    return obj


def check_ensemble(name: str, obj):
    """A builder ``(n1, n2, *, r, m, seed, **kw) -> Problem``, optionally with a
    ``memory_bytes(n1, n2, m)`` attribute."""
    if not callable(obj) or inspect.isclass(obj):
        raise ValueError(
            f"an ensemble plugin must name a function (n1, n2, *, r, m, seed, **kw)"
            f" -> Problem, got {type(obj).__name__} {obj!r}"
        )
    estimate = getattr(obj, "memory_bytes", None)
    if estimate is not None and not callable(estimate):
        raise ValueError(
            f"{name}.memory_bytes must be a function (n1, n2, m) -> bytes, got {estimate!r}"
        )
    return obj


def check_init(name: str, obj):
    """An :class:`~matsense.init.InitSpec` whose ``name`` is the entry point's."""
    from .init import InitSpec

    if not isinstance(obj, InitSpec):
        raise ValueError(
            f"an init plugin must name a matsense.init.InitSpec, got {type(obj).__name__} {obj!r}"
        )
    if obj.name != name:
        raise ValueError(
            f"the InitSpec's name is {obj.name!r}, not the entry point's name {name!r}"
        )
    return obj


def check_claim(name: str, obj):
    """A :class:`~matsense.experiments.claims.base.Claim` (or a class of one, built with no
    arguments) whose ``id`` is the entry point's name, in upper case (``--claims`` upper-cases
    ids), with a ``title``, a figure ``stem``, and ``runs`` and ``parameters`` it declares
    (:mod:`matsense.experiments.declare`; entered there once it passes)."""
    from .experiments.claims.base import Claim
    from .experiments.declare import declare

    if inspect.isclass(obj) and issubclass(obj, Claim):
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001 - the plugin's constructor
            raise ValueError(f"{obj.__qualname__}() failed ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, Claim):
        raise ValueError(
            f"a claim plugin must name a matsense.experiments.claims.base.Claim, "
            f"got {type(obj).__name__} {obj!r}"
        )
    if obj.id != name or name != name.upper():
        raise ValueError(
            f"the claim's id is {obj.id!r}: it must be the entry point's name "
            f"{name!r}, in upper case (reproduce --claims upper-cases ids)"
        )
    for attr in ("title", "stem"):
        if not isinstance(getattr(obj, attr), str) or not getattr(obj, attr):
            raise ValueError(
                f"the claim's {attr} must be a non-empty string, got {getattr(obj, attr)!r}"
            )
    for attr in ("runs", "parameters"):
        if not isinstance(getattr(obj, attr), tuple):
            raise ValueError(f"the claim's {attr} must be a tuple, got {getattr(obj, attr)!r}")
    return declare(obj)  # ValueError: a run it reads that no claim declares, a name clash


# ------------------------------------------------------------------ the command
def register(subparsers) -> None:
    """``matsense plugins``: list the installed plugins."""
    p = subparsers.add_parser(
        "plugins",
        help="list the installed plugins (methods, ensembles, inits, claims)",
        description="List the plugins other packages register through entry points (groups "
        + ", ".join(GROUPS.values())
        + "), with their distribution, and why any "
        "is left out (docs/plugins.md).",
    )
    p.set_defaults(func=cmd_plugins)


def cmd_plugins(args) -> int:
    with warnings.catch_warnings():  # the listing says it: no warning line besides
        warnings.simplefilter("ignore", PluginWarning)
        found = installed()
    if not found:
        print(
            "no matsense plugins installed (entry-point groups: " + ", ".join(GROUPS.values()) + ")"
        )
        return 0
    for p in found:
        state = "ok" if p.error is None else f"left out: {p.error}"
        print(f"{p.group:20} {p.name:20} {p.distribution:24} {state}")
    return 0
