"""The ``matsense run`` flags of the methods' hyper-parameters, built from the methods.

Each hyper-parameter a method declares with :func:`~matsense.methods.base.param`
(a dataclass field: name, type, default, help) becomes one flag ``--name``
(``--step-size`` for ``step_size``), so a new method, built-in or plugin, needs no
change to the command line. Several methods may declare the same name; the flag then
belongs to all of them and each keeps what it declared:

* **help**: one text when the owners agree, else each owner's own text, by method;
* **type**: the owners' common type parses the flag. When they differ, the flag keeps
  its text and :meth:`MethodFlag.value` reads it with the type of the method that runs
  (``--method``, else the run file's, else the default). A parameter that is a switch
  (``bool``: ``--x`` / ``--no-x``) for one method and takes a value for another is
  refused when a plugin method registers (:func:`check_method`: the plugin is left out
  with a warning); should such a pair still meet, the flag takes a value
  (``--x true``).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

#: The flag types a parameter's annotation maps to (anything else: ``str``).
KINDS = {"bool": bool, "int": int, "float": float, "str": str}


def flag_kind(annotation) -> type:
    """The flag type of a field annotation written ``X`` or ``X | None`` (the dataclass
    field's ``type``, a string under ``from __future__ import annotations``).

    ``None`` in a union is dropped (the flag is simply not given); anything that is not
    exactly one of bool, int, float or str is read as text (``str``).
    """
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    parts = [p.strip() for p in text.split("|") if p.strip() not in ("None", "NoneType", "")]
    return KINDS.get(parts[0], str) if len(parts) == 1 else str


def _parse(kind: type, text: str):
    """``text`` as a ``kind``: a bool from true/false (yes/no, on/off, 1/0)."""
    if kind is not bool:
        return kind(text)
    word = text.strip().lower()
    if word in ("true", "yes", "on", "1"):
        return True
    if word in ("false", "no", "off", "0"):
        return False
    raise ValueError(text)


@dataclass(frozen=True)
class Owner:
    """One method's declaration of a hyper-parameter."""

    method: str
    kind: type
    help: str
    default: object


@dataclass(frozen=True)
class MethodFlag:
    """The flag of one hyper-parameter name and the methods that declare it."""

    name: str
    owners: tuple[Owner, ...]

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def methods(self) -> list[str]:
        return [o.method for o in self.owners]

    @property
    def kind(self) -> type | None:
        """The type every owner declares; None when they differ (read per method)."""
        kinds = {o.kind for o in self.owners}
        return kinds.pop() if len(kinds) == 1 else None

    def help_text(self) -> str:
        """The owners' help: one text when they agree, else each method's own."""
        by_text: dict[str, list[str]] = {}
        for o in self.owners:
            by_text.setdefault(o.help or self.name, []).append(o.method)
        if len(by_text) == 1:
            ((text, methods),) = by_text.items()
            return f"{text} ({', '.join(methods)}; default: the method's)"
        parts = [f"{', '.join(methods)}: {text}" for text, methods in by_text.items()]
        return "; ".join(parts) + " (default: the method's)"

    def add_to(self, group) -> None:
        """Add the flag to an argparse group (its value: None when not given)."""
        kind = self.kind
        if kind is bool:
            extra: dict = {"action": argparse.BooleanOptionalAction}
        elif kind is not None:
            extra = {"type": kind}
        else:  # the owners' types differ: the text, read with the running method's type
            extra = {"metavar": "VALUE"}
        group.add_argument(
            self.option,
            dest=self.name,
            default=None,
            help=self.help_text().replace("%", "%%"),
            **extra,
        )

    def value(self, method: str, given):
        """``given`` (the parsed flag) as ``method`` declares the parameter.

        A flag whose owners share a type is parsed already; so is one of a method that
        does not declare it (the run configuration then names the method's parameters).
        """
        owner = next((o for o in self.owners if o.method == method), None)
        if self.kind is not None or owner is None or owner.kind is str:
            return given
        try:
            return _parse(owner.kind, given)
        except ValueError:
            article = "an" if owner.kind is int else "a"
            what = "true or false" if owner.kind is bool else f"{article} {owner.kind.__name__}"
            raise ValueError(
                f"{self.option} {given!r}: {self.name} of method {method} is {what}"
            ) from None


def _owner(method: str, field: dataclasses.Field) -> Owner:
    default = None if field.default is dataclasses.MISSING else field.default
    return Owner(method, flag_kind(field.type), field.metadata.get("help", ""), default)


def method_flags(methods=None) -> dict[str, MethodFlag]:
    """name -> :class:`MethodFlag` for every hyper-parameter of ``methods`` (a mapping name ->
    method class; default: every registered method, plugins included)."""
    if methods is None:
        from .methods import METHODS

        methods = METHODS
    owners: dict[str, list[Owner]] = {}
    for mname, cls in methods.items():
        for f in dataclasses.fields(cls):
            if f.name != "name":
                owners.setdefault(f.name, []).append(_owner(mname, f))
    return {name: MethodFlag(name, tuple(found)) for name, found in owners.items()}


def check_method(name: str, cls, methods) -> None:
    """ValueError when a parameter of method ``cls`` (to register as ``name``) is a switch
    where a method of ``methods`` takes a value for it, or the reverse: one flag cannot be
    both ``--x``/``--no-x`` and ``--x VALUE``."""
    others = method_flags({m: c for m, c in methods.items() if m != name})
    for f in dataclasses.fields(cls):
        flag = others.get(f.name)
        if flag is None or f.name == "name":
            continue
        mine = flag_kind(f.type)
        clash = [o for o in flag.owners if (o.kind is bool) != (mine is bool)]
        if clash:
            o = clash[0]
            raise ValueError(
                f"parameter {f.name} is a {mine.__name__} here but a {o.kind.__name__} of "
                f"method {o.method}: {flag.option} cannot be both a switch and take a value; "
                "rename the parameter"
            )
