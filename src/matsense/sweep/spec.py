"""Sweep specifications: a TOML file (or dict) that expands to many run configurations.

A spec has up to four tables::

    [sweep]                 # optional: name, description, max_batch, rate_window, rate_metric
    name = "c4"

    [base]                  # any RunConfig key (flat, or under [base.problem] etc.)
    n1 = 30
    method = "gd"

    [grid]                  # lists: the cartesian product of all of them
    alpha = [0.08, 0.04, 0.02]
    k = [3, 4, 5]

    [[zip]]                 # optional groups of equal-length lists that vary together
    m = [400, 900]
    n1 = [20, 30]

Expansion order: grid keys in file order (the last varies fastest), then each
``[[zip]]`` group in file order. A key may be set in only one place. Every
point is validated as a :class:`~matsense.config.RunConfig` when the spec is
loaded, so an unknown key or a wrong type is reported with the key, the file
and the line before anything runs. Points with equal run ids (duplicates) are
kept once.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig, flatten, read_toml

TABLES = ("sweep", "base", "grid", "zip")

#: Options of the ``[sweep]`` table: key -> (accepted types, description).
OPTION_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a label for the sweep (string)"),
    "description": ((str,), "free text (string)"),
    "max_batch": ((int,), "most runs advanced together in one batch (int >= 1)"),
    "rate_window": (
        (list,),
        (
            "[upper, lower] relative-error window of the linear-rate fit, "
            "1 >= upper > lower > 0 (e.g. [1e-4, 1e-12])"
        ),
    ),
    "rate_metric": ((str,), "'error' (‖P − M*‖_F) or 'residual_norm' (‖𝒜(P) − y‖)"),
}
RATE_METRICS = ("error", "residual_norm")
DEFAULT_MAX_BATCH = 128


@dataclass(frozen=True)
class SweepOptions:
    """Settings of the sweep itself (the ``[sweep]`` table)."""

    name: str = ""
    description: str = ""
    max_batch: int = DEFAULT_MAX_BATCH
    rate_window: tuple[float, float] = (1e-4, 1e-12)
    rate_metric: str = "error"


# --------------------------------------------------------------- locations
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z_][A-Za-z0-9_\-. ]*?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-.]+)\s*=""")


class _Lines:
    """Line numbers of keys in a TOML text, by table: ``line(table, key, index)``.

    ``table`` is the header's name ('' for top level, 'base.problem' for a
    sub-table); ``index`` counts ``[[zip]]`` groups from 0. A small scanner,
    enough for error messages (keys inside multi-line strings may confuse it;
    it then reports no line rather than a wrong one where it can).
    """

    def __init__(self, text: str | None):
        self.keys: dict[tuple[str, int, str], int] = {}
        self.headers: dict[tuple[str, int], int] = {}
        if not text:
            return
        table = ""
        counts: dict[str, int] = {}
        index = 0
        for no, line in enumerate(text.splitlines(), 1):
            h = _HEADER.match(line)
            if h and not _KEY.match(line):
                table = h.group(2).strip()
                if h.group(1) == "[[":
                    index = counts.get(table, -1) + 1
                    counts[table] = index
                else:
                    index = 0
                self.headers.setdefault((table, index), no)
                continue
            k = _KEY.match(line)
            if k:
                key = k.group(1).strip("\"'")
                full_table, full_key = table, key
                if "." in key:  # dotted key: problem.n1 = 30 under [base]
                    head, _, full_key = key.rpartition(".")
                    full_table = f"{table}.{head}" if table else head
                self.keys.setdefault((full_table, index, full_key), no)

    def line(self, table: str, key: str, index: int = 0) -> int | None:
        hit = self.keys.get((table, index, key))
        if hit is None and table == "base":
            for (t, _, k), no in self.keys.items():
                if k == key and (t == "base" or t.startswith("base.")):
                    return no
        return hit

    def header(self, table: str, index: int = 0) -> int | None:
        return self.headers.get((table, index))


def _at(source, line) -> str:
    if source is None:
        return ""
    return f"{source}:{line}: " if line else f"{source}: "


def _type_name(value) -> str:
    return type(value).__name__


# --------------------------------------------------------------------- spec
@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: its tables and the expanded run configurations.

    Build one with :meth:`from_toml` or :meth:`from_dict` (or
    :func:`load_spec`). ``configs`` holds one :class:`RunConfig` per distinct
    grid point, in expansion order.
    """

    base: dict
    grid: dict
    zips: tuple
    options: SweepOptions
    configs: tuple
    source: str | None = None
    text: str | None = field(default=None, repr=False)
    duplicates: int = 0

    # ------------------------------------------------------------ building
    @classmethod
    def from_toml(cls, path) -> SweepSpec:
        """Load and validate a TOML spec; errors name the key, the file and the line."""
        text, data = read_toml(path)
        return cls.from_dict(data, source=str(path), text=text)

    @classmethod
    def from_dict(
        cls, data: dict, *, source: str | None = None, text: str | None = None
    ) -> SweepSpec:
        """Validate a spec given as a dict with 'base', 'grid', 'zip' and 'sweep' entries."""
        lines = _Lines(text)
        _check_tables(data, source, lines)
        options = _parse_options(data.get("sweep", {}), source, lines)
        origin = _Origins(source, lines)
        base = flatten(data.get("base", {}), source=source, locate=lambda k: lines.line("base", k))
        for key in base:
            origin.claim(key, ("base", 0))
        grid = dict(data.get("grid", {}))
        for key, values in grid.items():
            origin.claim(key, ("grid", 0))
            _check_list(values, key, "grid", 0, source, lines)
        zips = _zip_groups(data.get("zip", []), origin, source, lines)
        configs, dups = _unique_configs(base, grid, zips, source, origin.locate)
        return cls(base, grid, tuple(zips), options, tuple(configs), source, text, dups)

    # ------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self.configs)

    @property
    def name(self) -> str:
        if self.options.name:
            return self.options.name
        return Path(self.source).stem if self.source else "sweep"

    @property
    def varying(self) -> dict[str, int]:
        """Keys that take more than one value, with their number of values."""
        out = {}
        for key, values in self.grid.items():
            out[key] = len(values)
        for group in self.zips:
            for key, values in group.items():
                out[key] = len(values)
        return {k: n for k, n in out.items() if n > 1}

    def as_dict(self) -> dict:
        """The spec's tables as a dict (``SweepSpec.from_dict(spec.as_dict())`` round-trips)."""
        opts = {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in dataclasses.asdict(self.options).items()
        }
        out: dict[str, object] = {"sweep": opts, "base": dict(self.base), "grid": dict(self.grid)}
        if self.zips:
            out["zip"] = [dict(z) for z in self.zips]
        return out

    def label(self, cfg: RunConfig) -> str:
        """The varying settings of one run, e.g. ``alpha=0.08 k=3 init_seed=0``."""
        d = cfg.to_dict()
        keys = list(self.varying) or ["method"]
        return " ".join(f"{k}={_fmt(d.get(k))}" for k in keys)


def _check_tables(data, source, lines) -> None:
    """A spec is a table of the tables [sweep], [base], [grid] and [[zip]]."""
    if not isinstance(data, dict):
        raise ValueError(f"{_at(source, None)}a sweep spec must be a table, got {_type_name(data)}")
    for key, value in data.items():
        if key not in TABLES:
            hint = (
                "; run settings go under [base], lists to sweep under [grid]"
                if key in RunConfig.__dataclass_fields__
                else ""
            )
            line = lines.header(key) or lines.line("", key)
            raise ValueError(
                f"{_at(source, line)}unknown table {key!r} in the sweep spec; "
                f"allowed: [sweep], [base], [grid], [[zip]]{hint}"
            )
        want = list if key == "zip" else dict
        if not isinstance(value, want):
            line = lines.line("", key) or lines.header(key)
            shape = "an array of tables [[zip]]" if key == "zip" else f"a table [{key}]"
            raise ValueError(
                f"{_at(source, line)}{key!r} must be {shape}, got {value!r} ({_type_name(value)})"
            )


class _Origins:
    """Where each key of a spec is set, (table, index): a key set twice is an error."""

    def __init__(self, source, lines) -> None:
        self.source, self.lines = source, lines
        self.origin: dict[str, tuple[str, int]] = {}

    def claim(self, key, where) -> None:
        if key in self.origin:
            first, second = self.origin[key], where
            l1 = self.lines.line(first[0], key, first[1])
            l2 = self.lines.line(second[0], key, second[1])
            raise ValueError(
                f"{_at(self.source, l2)}key {key!r} is set in {_table_label(*first)}"
                f"{f' (line {l1})' if l1 else ''} and again in {_table_label(*second)}; "
                "set each key in one place"
            )
        self.origin[key] = where

    def locate(self, key):
        """The line that sets ``key`` (None if unknown), for error messages."""
        table, index = self.origin.get(key, ("", 0))
        return self.lines.line(table, key, index) if table else None


def _zip_groups(groups, origin: _Origins, source, lines) -> list[dict]:
    """The [[zip]] groups, each checked to be a non-empty table of equal-length lists."""
    zips = []
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or not group:
            raise ValueError(
                f"{_at(source, lines.header('zip', i))}[[zip]] group {i + 1} "
                "must be a non-empty table of equal-length lists"
            )
        lengths = {}
        for key, values in group.items():
            origin.claim(key, ("zip", i))
            _check_list(values, key, "zip", i, source, lines)
            lengths[key] = len(values)
        if len(set(lengths.values())) > 1:
            desc = ", ".join(f"{k} ({n})" for k, n in lengths.items())
            raise ValueError(
                f"{_at(source, lines.header('zip', i))}[[zip]] group {i + 1}: "
                f"lists must have equal lengths, got {desc}"
            )
        zips.append(dict(group))
    return zips


def _unique_configs(base: dict, grid: dict, zips: list, source, locate):
    """(the RunConfig of each distinct grid point in order, the number of duplicates dropped)."""
    configs, seen, dups = [], set(), 0
    for point in _points(base, grid, zips):
        cfg = RunConfig.from_dict(point, source=source, locate=locate)
        rid = cfg.run_id()
        if rid in seen:
            dups += 1
            continue
        seen.add(rid)
        configs.append(cfg)
    return configs, dups


def _table_label(table: str, index: int) -> str:
    return f"[[zip]] group {index + 1}" if table == "zip" else f"[{table}]"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _check_list(values, key, table, index, source, lines):
    line = lines.line(table, key, index)
    if not isinstance(values, list):
        raise ValueError(
            f"{_at(source, line)}{_table_label(table, index)} key {key!r} must be a "
            f"list of values, got {values!r} ({_type_name(values)}); "
            "put single values under [base]"
        )
    if not values:
        raise ValueError(
            f"{_at(source, line)}{_table_label(table, index)} key {key!r} is an empty list"
        )


def _points(base: dict, grid: dict, zips: list):
    """Flat dicts, one per grid point: grid product (last key fastest), then zip groups."""
    axes = [[{key: v} for v in values] for key, values in grid.items()]
    for group in zips:
        n = len(next(iter(group.values())))
        axes.append([{key: values[i] for key, values in group.items()} for i in range(n)])
    for combo in itertools.product(*axes):
        point = dict(base)
        for part in combo:
            point.update(part)
        yield point


def _parse_options(table: dict, source, lines) -> SweepOptions:
    if not isinstance(table, dict):
        raise ValueError(f"{_at(source, lines.line('', 'sweep'))}[sweep] must be a table")
    opts: dict[str, Any] = {}
    for key, value in table.items():
        line = lines.line("sweep", key)
        if key not in OPTION_KEYS:
            raise ValueError(
                f"{_at(source, line)}unknown key {key!r} in [sweep]; "
                f"allowed keys: {', '.join(OPTION_KEYS)}"
            )
        types, desc = OPTION_KEYS[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise ValueError(
                f"{_at(source, line)}{key} must be {desc}, got {value!r} ({_type_name(value)})"
            )
        opts[key] = value
    if "max_batch" in opts and opts["max_batch"] < 1:
        raise ValueError(
            f"{_at(source, lines.line('sweep', 'max_batch'))}max_batch must be "
            f"an int >= 1, got {opts['max_batch']}"
        )
    if "rate_window" in opts:
        w = opts["rate_window"]
        ok = (
            len(w) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in w)
            and all(math.isfinite(v) for v in w)
            and 0 < w[1] < w[0] <= 1
        )
        if not ok:
            raise ValueError(
                f"{_at(source, lines.line('sweep', 'rate_window'))}rate_window must "
                f"be {OPTION_KEYS['rate_window'][1]}, got {w!r}"
            )
        opts["rate_window"] = (float(w[0]), float(w[1]))
    if opts.get("rate_metric", "error") not in RATE_METRICS:
        raise ValueError(
            f"{_at(source, lines.line('sweep', 'rate_metric'))}rate_metric must be "
            f"{OPTION_KEYS['rate_metric'][1]}, got {opts['rate_metric']!r}"
        )
    return SweepOptions(**opts)


def load_spec(spec) -> SweepSpec:
    """A :class:`SweepSpec` from a spec, a path to a TOML file, or a dict."""
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if path.is_dir():
            raise ValueError(f"{path} is a directory, not a sweep spec (.toml file)")
        return SweepSpec.from_toml(path)
    if isinstance(spec, dict):
        return SweepSpec.from_dict(spec)
    raise ValueError(
        f"a sweep spec must be a SweepSpec, a path to a TOML file or a dict, got {_type_name(spec)}"
    )
