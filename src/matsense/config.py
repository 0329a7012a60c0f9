"""One run as plain data: a flat, validated configuration.

Used by ``matsense run`` (flags or a TOML file) and by sweeps (one config per
grid point), so a run is described the same way everywhere. Keys are flat and
unique across the problem, the initialization, the method and the run:

======================  =====================================================
problem                 ensemble, n1, n2, r, m, p, kappa, singular_values,
                        spacing, symmetric, noise, seed; outliers:
                        outlier_fraction (p_s in [0, 1), default 0),
                        outlier_scale (c >= 0, default 10), outlier_mode
                        ('add' | 'replace'; :mod:`matsense.corruption`)
initialization          init ('small_random' | 'balanced' | 'symmetric_random'
                        | any name in ``matsense.init.INITS``), k, alpha, ratio,
                        normalization, init_seed
method                  method (a name in ``matsense.methods.METHODS``) and
                        that method's hyper-parameters (e.g. step_size, tau)
run                     iters, tol, record_every, backend, device, dtype
======================  =====================================================

A TOML file may hold the keys at top level or under ``[problem]``, ``[init]``,
``[method]``, ``[run]`` tables; they are flattened. Unknown keys and wrong
types raise ``ValueError`` naming the key (and the file and line when loaded
from a file) and what is allowed.

``ensemble`` names the measurement model (:func:`matsense.ensembles.names`:
'gaussian' — the default —, 'symmetric-gaussian', 'rank-one', 'completion', or
a plugin's; docs/ensembles.md). What differs between ensembles is read from
their records (:mod:`matsense.ensembles`): the keys an ensemble adds besides
``m`` and their checks (completion's ``p``, the observation probability: when
given, each entry is observed with probability p and ``m`` is ignored; ``p``
with another ensemble is an error), and the memory estimate. An ensemble's key
is a field of :class:`RunConfig` (``p`` is the only one so far).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import ensembles
from . import init as _init
from .methods import METHODS, get_method
from .problems import Problem

SECTIONS = ("problem", "init", "method", "run")

# key -> (accepted types, description)
_NUM = (int, float)
#: The run keys the ensembles add besides m (their records' params): completion's p.
ENSEMBLE_KEYS = tuple(ensembles.keys())
CORE_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "ensemble": ((str,), "measurement ensemble (" + " | ".join(ensembles.NAMES) + ")"),
    "data": (
        (str, type(None)),
        (
            "your own data file instead of a generated problem "
            "(.csv, .parquet or .npz: matsense.data)"
        ),
    ),
    "n1": ((int,), "rows of M* (int >= 1)"),
    "n2": ((int, type(None)), "columns of M* (int >= 1; default n1)"),
    "r": ((int,), "rank of M* (int >= 1)"),
    "m": ((int,), "number of measurements (int >= 1)"),
    **{
        key: ((*param.types, type(None)), f"{', '.join(owners)}: {param.describe()}")
        for key, (param, owners) in ensembles.keys().items()
    },
    "kappa": (_NUM, "condition number (>= 1)"),
    "singular_values": ((list, type(None)), "explicit σ_1..σ_r (list of floats)"),
    "spacing": ((str,), "'geometric' or 'linear'"),
    "symmetric": ((bool,), "PSD ground truth (true/false)"),
    "noise": (_NUM, "noise standard deviation (>= 0)"),
    "seed": ((int,), "problem seed (int >= 0)"),
    "outlier_fraction": (_NUM, "fraction p_s of measurements with outliers, in [0, 1)"),
    "outlier_scale": (_NUM, "outlier magnitude c (>= 0): up to c·‖𝒜(M*)‖_∞"),
    "outlier_mode": ((str,), "outliers 'add' to y_i or 'replace' it"),
    "init": ((str,), "initialization name"),
    "k": ((int,), "factor columns (1 <= k <= min(n1, n2))"),
    "alpha": (_NUM, "initialization scale (> 0)"),
    "ratio": (_NUM, "G_0 scale / F_0 scale (> 0)"),
    "normalization": ((str,), "'entry' or 'sqrt_n'"),
    "init_seed": ((int,), "initialization seed (int >= 0)"),
    "method": ((str,), "method name"),
    "iters": ((int,), "maximum iterations (int >= 0)"),
    "tol": ((*_NUM, type(None)), "relative-error tolerance (> 0)"),
    "record_every": ((int,), "history stride (int >= 1)"),
    "backend": ((str,), "'numpy' or 'torch'"),
    "device": ((str,), "'cpu' or 'cuda'"),
    "dtype": ((str,), "'float64' or 'float32'"),
}

PROBLEM_KEYS = (
    "ensemble",
    "n1",
    "n2",
    "r",
    "m",
    *ENSEMBLE_KEYS,
    "kappa",
    "singular_values",
    "spacing",
    "symmetric",
    "noise",
    "seed",
)

#: Keys left out of :meth:`RunConfig.run_id` at these values, so that run ids (and the
#: sweep stores keyed by them) from before the key existed stay the same.
_ID_DEFAULTS = {"ensemble": ensembles.DEFAULT, **dict.fromkeys(ENSEMBLE_KEYS)}
#: Number keys stored as float when given as int.
_FLOAT_KEYS = (
    "kappa",
    "noise",
    "alpha",
    "ratio",
    "tol",
    *(key for key, (param, _) in ensembles.keys().items() if float in param.types),
)
#: The outlier keys (matsense.corruption) and their defaults: left out of records, run ids and
#: problem keys at these values, so every run without outliers is described as before.
OUTLIER_DEFAULTS = {"outlier_fraction": 0.0, "outlier_scale": 10.0, "outlier_mode": "add"}


class _InitsByName(Mapping):
    """``INITS[name](problem, config) -> factors``: a live view of :data:`matsense.init.INITS`.

    Kept for callers of ``config.INITS``; the registry itself (and the place to add an
    initialization) is ``matsense.init.INITS``.
    """

    def __getitem__(self, name):
        spec = _init.INITS[name]
        return lambda problem, cfg: _build_init(spec, problem, cfg)

    def __iter__(self):
        return iter(_init.INITS)

    def __len__(self):
        return len(_init.INITS)


def _build_init(spec, problem, cfg):
    return spec.build(
        problem,
        cfg.k,
        cfg.alpha,
        ratio=cfg.ratio,
        normalization=cfg.normalization,
        seed=cfg.init_seed,
    )


INITS = _InitsByName()


def method_param_names(name: str) -> tuple[str, ...]:
    cls = METHODS[name]
    return tuple(f.name for f in dataclasses.fields(cls) if f.name != "name")


@dataclass(frozen=True)
class RunConfig:
    """A complete, validated description of one run (see the module docstring)."""

    ensemble: str = ensembles.DEFAULT
    data: str | None = None
    n1: int = 30
    n2: int | None = None
    r: int = 2
    m: int = 900
    p: float | None = None
    kappa: float = 1.0
    singular_values: list | None = None
    spacing: str = "geometric"
    symmetric: bool = False
    noise: float = 0.0
    seed: int = 0
    outlier_fraction: float = 0.0
    outlier_scale: float = 10.0
    outlier_mode: str = "add"
    init: str = "small_random"
    k: int = 4
    alpha: float = 0.04
    ratio: float = 1 / 3
    normalization: str = "entry"
    init_seed: int = 0
    method: str = "gd"
    method_params: dict = field(default_factory=dict)
    iters: int = 1000
    tol: float | None = None
    record_every: int = 1
    backend: str = "numpy"
    device: str = "cpu"
    dtype: str = "float64"

    # ------------------------------------------------------------- building
    @classmethod
    def from_dict(cls, data: dict, *, source: str | None = None, locate=None) -> RunConfig:
        """Validate a flat (or sectioned) dict; unknown keys / wrong types → ValueError."""
        flat = flatten(data, source=source, locate=locate)
        method = flat.get("method", cls.method)
        if not isinstance(method, str) or method not in METHODS:
            raise ValueError(
                _where(source, locate, "method")
                + str(
                    METHODS.unknown(
                        method,
                        f"unknown method {method!r}; known methods: {', '.join(sorted(METHODS))}",
                    )
                )
            )
        allowed_method = method_param_names(method)
        core, mparams = {}, {}
        for key, value in flat.items():
            if key in CORE_KEYS:
                types, desc = CORE_KEYS[key]
                ok = isinstance(value, types) and not (
                    isinstance(value, bool) and bool not in types
                )
                if not ok:
                    raise ValueError(
                        _where(source, locate, key)
                        + f"{key} must be {desc}, got {value!r} ({type(value).__name__})"
                    )
                core[key] = value
            elif key in allowed_method:
                mparams[key] = value
            else:
                allowed = sorted(CORE_KEYS) + [f"{p} (method {method})" for p in allowed_method]
                raise ValueError(
                    _where(source, locate, key)
                    + f"unknown key {key!r}; allowed keys: {', '.join(allowed)}"
                )
        if core.get("init", "small_random") not in _init.INITS:
            raise ValueError(
                _where(source, locate, "init")
                + str(
                    _init.INITS.unknown(
                        core["init"],
                        f"unknown init {core['init']!r}; known: {', '.join(sorted(_init.INITS))}",
                    )
                )
            )
        _check_ensemble(core, source, locate)
        _check_data(core, source, locate)
        _check_outliers(core, source, locate)
        for key in _FLOAT_KEYS + ("outlier_fraction", "outlier_scale"):
            if key in core and isinstance(core[key], int) and not isinstance(core[key], bool):
                core[key] = float(core[key])
        cfg = cls(**core, method_params=mparams)
        cfg.build_method()  # validates the method's hyper-parameters now
        return cfg

    @classmethod
    def from_toml(cls, path) -> RunConfig:
        """Load a TOML run file; errors name the file and the line of the key."""
        text, data = read_toml(path)
        return cls.from_dict(data, source=str(path), locate=lambda key: find_line(text, key))

    def to_dict(self) -> dict:
        """The flat dict form (method parameters inlined), JSON-ready."""
        d = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "method_params"
        }
        if d["data"] is None:  # absent, so records and run ids of generated problems are as before
            del d["data"]
        else:  # the file is the problem: no generated-problem keys (from_dict refuses them)
            d = {k: v for k, v in d.items() if k not in PROBLEM_KEYS}
        for key, default in OUTLIER_DEFAULTS.items():
            if d[key] == default:
                del d[key]
        d.update(self.method_params)
        return d

    def replace(self, **changes) -> RunConfig:
        d = self.to_dict()
        d.update(changes)
        return RunConfig.from_dict(d)

    def run_id(self) -> str:
        """Stable id: hash of the normalized config (sorted JSON)."""
        d = {
            k: v
            for k, v in self.to_dict().items()
            if not (k in _ID_DEFAULTS and v == _ID_DEFAULTS[k])
        }
        blob = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def problem_key(self) -> str:
        """Hash of the problem fields: runs with equal keys share one operator."""
        keys: tuple[str, ...] = PROBLEM_KEYS if self.data is None else ("data",)
        keys += tuple(k for k, v in OUTLIER_DEFAULTS.items() if getattr(self, k) != v)
        blob = json.dumps({k: getattr(self, k) for k in keys}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def build_problem(self) -> Problem:
        """The seeded problem (or the ``data`` file's), on the configured backend, device
        and dtype."""
        if self.data is not None:
            from .data import load_problem

            problem = load_problem(self.data)
        else:
            size = self.ensemble_record().sizes(self.m, self._ensemble_values())
            problem = Problem.generate(
                self.ensemble,
                self.n1,
                self.n2,
                r=self.r,
                **size,
                kappa=self.kappa,
                singular_values=self.singular_values,
                spacing=self.spacing,
                symmetric=self.symmetric,
                noise=self.noise,
                seed=self.seed,
            )
        if self.outlier_fraction > 0:  # on generated problems and data files alike
            from . import corruption

            problem = corruption.with_outliers(problem, self.outliers(), self.seed)
        if (self.backend, self.device, self.dtype) == ("numpy", "cpu", "float64"):
            return problem
        return problem.to(backend=self.backend, device=self.device, dtype=self.dtype)

    def ensemble_record(self) -> ensembles.Ensemble:
        """The record of this run's ensemble (:func:`matsense.ensembles.get`)."""
        return ensembles.get(self.ensemble)

    def _ensemble_values(self) -> dict:
        return {key: getattr(self, key) for key in ENSEMBLE_KEYS}

    def memory_bytes(self, batch: int = 1) -> int:
        """Estimated bytes of this run's problem and of a batch of ``batch`` such runs.

        What the ensemble's record says (:meth:`matsense.ensemble.Ensemble.memory`, its
        ``work_bytes``): the dense Gaussian ones store m·n1·n2 numbers, rank-one
        m·(n1 + n2), completion O(m) indices and values — a completion sweep at
        n1 = 20 000 with m = 4·10⁵ needs tens of MB, not the 1.3 PB of a dense operator
        of that size.
        """
        from .run import state_bytes

        if self.data is not None:  # the file's arrays, their float64 copy and the operator's
            return 3 * Path(self.data).stat().st_size if Path(self.data).is_file() else 0
        n2 = self.n1 if self.n2 is None else self.n2
        m = self.measurements()
        record = self.ensemble_record()
        return (
            record.memory(self.n1, n2, self.r, m, symmetric=self.symmetric)
            + batch * record.work_bytes(m, self.k)
            + state_bytes((self.n1, n2), m, batch, self.k, self.iters, self.record_every)
        )

    def measurements(self) -> int:
        """The number of measurements: ``m``, or what the ensemble's keys give (completion's
        round(p·n1·n2) with ``p``)."""
        n2 = self.n1 if self.n2 is None else self.n2
        return self.ensemble_record().measurements(self.n1, n2, self.m, self._ensemble_values())

    def check_memory(self, batch: int = 1) -> None:
        """ValueError (one line) when :meth:`memory_bytes` exceed the memory limit in force."""
        from . import memory

        n2 = self.n1 if self.n2 is None else self.n2
        memory.check(
            f"a {self.ensemble} run of n1={self.n1}, n2={n2}, m={self.measurements()}, "
            f"k={self.k} (batch of {batch}, {self.iters} iterations)",
            self.memory_bytes(batch),
        )

    def outliers(self):
        """The :class:`matsense.corruption.Outliers` of this run (p_s = 0: none)."""
        from .corruption import Outliers

        return Outliers(self.outlier_fraction, self.outlier_scale, self.outlier_mode)

    def build_method(self):
        return get_method(self.method, **self.method_params)

    def build_init(self, problem):
        return _build_init(_init.get_init(self.init), problem, self)


def problem_bytes(
    ensemble: str, n1: int, n2: int, r: int, m: int, *, symmetric: bool = False
) -> int:
    """Estimated bytes of a generated problem of ``ensemble`` (float64): what its record
    says (:func:`matsense.ensembles.problem_bytes`)."""
    return ensembles.problem_bytes(ensemble, n1, n2, r, m, symmetric=symmetric)


def operator_work_bytes(ensemble: str, m: int, k: int) -> int:
    """Bytes one trajectory's operator call holds beyond the problem and the method's state
    (the record's ``work_bytes``: the matrix-free ensembles form m × k arrays)."""
    return int(ensembles.get(ensemble).work_bytes(m, k))


def _check_ensemble(core: dict, source, locate) -> None:
    """A known ``ensemble`` (an alias becomes its name); the keys of other ensembles absent,
    this one's valid (its record's checks)."""
    try:
        record = ensembles.get(core.get("ensemble", ensembles.DEFAULT))
    except ValueError as exc:
        raise ValueError(_where(source, locate, "ensemble") + str(exc)) from None
    if "ensemble" in core:
        core["ensemble"] = record.name
    try:
        ensembles.check_keys(record, {key: core.get(key) for key in ENSEMBLE_KEYS})
    except ValueError as exc:
        key, message = exc.args
        raise ValueError(_where(source, locate, key) + message) from None


def _check_outliers(core: dict, source, locate) -> None:
    """The outlier keys' values (matsense.corruption.Outliers): one line naming key and range."""
    from .corruption import OUTLIER_KEYS, Outliers

    given = {field: core[key] for key, field in OUTLIER_KEYS.items() if key in core}
    try:
        Outliers(**given)
    except ValueError as exc:
        key = str(exc).split()[0]
        raise ValueError(_where(source, locate, key) + str(exc)) from None


def _check_data(core: dict, source, locate) -> None:
    """``data``: a file of a known suffix, and no key of a generated problem next to it."""
    if core.get("data") is None:
        return
    from .data import SUFFIXES

    suffix = Path(core["data"]).suffix
    if suffix not in SUFFIXES:
        raise ValueError(
            _where(source, locate, "data") + f"data must be a {', '.join(SUFFIXES)} "
            f"file, got {core['data']!r}"
        )
    generated = [key for key in PROBLEM_KEYS if key in core]
    if generated:
        raise ValueError(
            _where(source, locate, generated[0]) + "data replaces the generated "
            f"problem: {', '.join(generated)} cannot be given with it"
        )


def flatten(data: dict, *, source=None, locate=None) -> dict:
    """Merge ``[problem]``/``[init]``/``[method]``/``[run]`` tables into one flat dict."""
    if not isinstance(data, dict):
        raise ValueError(f"a run configuration must be a table of keys, got {type(data).__name__}")
    flat: dict = {}
    for key, value in data.items():
        items: Iterable[tuple[object, object]]
        if key in SECTIONS and isinstance(value, dict):
            items = value.items()
        else:
            items = [(key, value)]
        for k, v in items:
            if k in flat:
                raise ValueError(_where(source, locate, k) + f"key {k!r} is given twice")
            flat[k] = v
    return flat


def read_toml(path) -> tuple[str, dict]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None


def find_line(text: str, key: str) -> int | None:
    """1-based line on which ``key`` is assigned in TOML ``text`` (first match)."""
    for i, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(key) and stripped[len(key) :].lstrip().startswith("="):
            return i
    return None


def _where(source, locate, key) -> str:
    if source is None:
        return ""
    line = locate(key) if locate else None
    return f"{source}:{line}: " if line else f"{source}: "
