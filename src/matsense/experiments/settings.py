"""Settings of the claim experiments: presets, overrides, and budgets derived from predicted rates.

One frozen :class:`ClaimSettings` holds the problem family every claim shares:
the problem (n1 × n2, rank r, m measurements, σ), the over-parameterized width
k, the step size η, the initialization scales α and the seeds. The numbers of
one claim — its iterations, fit windows, horizons — are that claim's
parameters (:class:`~matsense.experiments.declare.Param`, declared in the
claim's module with their defaults, quick-mode values and rules); the settings
carry their values and read them like fields (``settings.c4_window``), and
``--set NAME=VALUE`` changes the settable ones (:func:`settable_keys`).

*A family of settings, not one tuned case.* Only the problem (n1, n2, r, m,
σ, k, η) is chosen; everything else follows from it by fixed rules
(:mod:`matsense.experiments.predict`) when left ``None``:

* the α grid scales with σ_r and the predicted imbalance, so that the
  imbalance rate η·λ_min(Δ₀) stays well below the signal rate (C4's α² law
  is a small-α statement);
* iteration budgets are a few times the iterations the predicted rates need
  (∝ 1/(ησ_r) for k = r, ∝ 1/(ηλ_min(Δ₀)) for C4, the switch time plus the
  post-switch prediction for C7); runs stop at a tolerance, so a generous
  budget costs nothing when the prediction is pessimistic.

:meth:`ClaimSettings.resolve` fills them in; ``summary.json`` records the
resolved values. Presets (:data:`PRESETS`): ``default`` (the paper's claims' setting,
n = 30, r = 2, m = 900, σ = (1, 0.5), k = 4, η = 0.3), ``paper`` (the paper's
figures: 50 × 50, rank 3), ``ill-conditioned`` (κ = 10) and ``rectangular``
(n1 ≠ n2); :meth:`ClaimSettings.with_overrides` applies ``--set key=value``.
Quick mode (``mode='quick'``) takes :data:`QUICK` for the family and each claim
parameter's quick value.
Symmetric (PSD) problems of the claims C1, C2, C5, C6 are n1 × n1.

*Ensembles.* ``ensemble`` (``matsense reproduce --ensemble NAME``) names the
measurement model of every problem (:mod:`matsense.ensembles`); the family,
the rules and the criteria stay the same, and what differs per ensemble is
read from its record's claim defaults
(:class:`matsense.ensemble.ClaimDefaults`: the presets' size factor, the
values of its keys, extra builder arguments, the ``large`` sizes). Sizes are chosen so
that recovery is possible (docs/ensembles.md): the Gaussian ensembles and
rank-one use m = 900 = 7.5 (n1 + n2) r at the default setting (rank-one
needs m ≳ a few (n1 + n2) r); completion observes a fraction ``p`` of the
entries of each problem — m = round(p·n1·n2), drawn without replacement —
with p = :data:`COMPLETION_P` (= 2/3) unless ``--set p=...`` is given (``m``
is not used by completion), on presets :data:`COMPLETION_SIZE` times larger
(60 × 60 for the default setting: m = 2400 ≈ 5 n r log n, about 5× the
k(n1 + n2 − k) parameters of the k = 4 factors).
symmetric-gaussian needs n1 = n2. rank-one draws independent a_i, b_i for the
PSD problems too (covariance sensing b_i = a_i is not isotropic: docs/ensembles.md).

The thresholds that turn measured numbers into a verdict live with each
claim, as a typed dataclass (``matsense.experiments.CLAIMS[cid].criteria``),
fixed before any run and the same in every mode and setting; they are
explained claim by claim in ``docs/claims.md``.

Randomness: problem ``s`` is ``Problem.generate(ensemble, ..., seed=s)``; initial factors
are drawn from :func:`init_seed` (``s``, role), a ``SeedSequence`` of the seed
and a fixed role tag, so that the initialization never reuses the stream that
drew M* and the A_i, and every claim that shares a role (e.g. C4, C7, C8 on the
asymmetric problem) starts from the same factors.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field

import numpy as np

from .. import ensembles
from ..operators.completion_ensemble import COMPLETION_P, COMPLETION_SIZE  # re-exported
from . import declare

_ROLES = {"symmetric": 1, "asymmetric": 2}


def init_seed(seed: int, role: str) -> int:
    """Seed of the initial factors of ``role`` ('symmetric' / 'asymmetric') for problem seed ``seed``."""
    state = np.random.SeedSequence([int(seed), _ROLES[role]]).generate_state(1)[0]
    return int(state)


#: The named settings of ``matsense reproduce --setting NAME``: overrides of the defaults.
PRESETS: dict[str, dict] = {
    "default": {},
    "paper": dict(n1=50, r=3, m=1500, singular_values=(1.0, 0.75, 0.5), k=5),
    "ill-conditioned": dict(singular_values=(1.0, 0.1)),
    "rectangular": dict(n1=40, n2=25, m=1000),
    "large": {},  # per ensemble: LARGE
}

#: ``--setting large``: the claims of the asymmetric problem at the sizes where researchers run
#: over-parameterized models (issue #19), per ensemble (its record's ``claims.large``) —
#: completion with 100 observed entries per row at n = 10⁴, rank-one at n = 2000 with m = 10⁵;
#: r = 5, k = 10, σ from 1 to 0.5, η = 0.5.
LARGE = {name: dict(ensembles.get(name).claims.large or {}) for name in ensembles.with_large()}
#: What ``large`` sets on every ensemble of :data:`LARGE`: two seeds, the first two α of the
#: grid, C4's quick window and C8's quick horizon, no κ sweep of C7 (each κ is a new problem).
LARGE_SHARED = dict(
    r=5,
    k=10,
    singular_values=tuple(np.geomspace(1.0, 0.5, 5).round(6).tolist()),
    eta=0.5,
    n_seeds=2,
    quick_alphas=2,
    c4_window=(1e-4, 1e-6),
    c8_time=45.0,
    c7_kappas=(),
)
#: The claims ``large`` runs unless some are named: those on the asymmetric problem (the PSD
#: claims' 1/t tails need budgets far beyond 10 minutes at these sizes).
LARGE_CLAIMS = ("C3", "C4", "C7", "C8")

#: What quick mode changes in the family (fewer seeds and α); each claim parameter has its own
#: quick value (shorter horizons), the problem and the criteria stay.
QUICK = dict(n_seeds=2, quick_alphas=2)

#: Fields of the family that may be given on the command line (``--set key=value``).
FAMILY_SETTABLE = (
    "n1",
    "n2",
    "r",
    "m",
    "p",
    "singular_values",
    "k",
    "eta",
    "ratio",
    "alphas",
    "n_seeds",
    "budget_factor",
    "record_every",
    "long_record_every",
)


def settable_keys() -> tuple[str, ...]:
    """Every ``--set`` key: the family's, then the settable parameters of the declared claims."""
    return FAMILY_SETTABLE + tuple(p.name for p in declare.PARAMS.values() if p.settable)


@dataclass(frozen=True, init=False)
class ClaimSettings:
    """The problem family of the claim experiments, and the claims' parameters; see the module
    docstring.

    ``ClaimSettings(k=5, c4_window=(1e-4, 1e-6))``: family fields and declared claim
    parameters alike (``params`` holds the parameters given; a parameter not given has its
    declared default, or quick value in quick mode). Values left ``None`` are derived by
    :meth:`resolve`. Iteration counts are maxima: runs with a tolerance stop early once every
    trajectory of the batch has met it. Windows are ``(upper, lower)`` bounds on the error
    relative to its value at the start of the fit (:func:`matsense.rates.linear_rate`).
    """

    setting: str = "default"
    mode: str = "full"
    ensemble: str = ensembles.DEFAULT
    p: float | None = None  # completion: observed fraction (None: the record's, 2/3)
    # the problem family
    n1: int = 30
    n2: int | None = None
    r: int = 2
    m: int = 900
    singular_values: tuple = (1.0, 0.5)
    k: int = 4
    eta: float = 0.3
    ratio: float = 1 / 3
    # initialization scales (None: derived from σ_r and the predicted imbalance)
    alphas: tuple | None = None
    quick_alphas: int | None = None  # use only the first N α where a claim sweeps α
    n_seeds: int = 3
    record_every: int = 5
    long_record_every: int = 10
    divergence_factor: float = 1e6
    budget_factor: float = 3.0  # iteration budgets: this × the predicted iterations
    # the claims' parameters given (name -> value; see matsense.experiments.declare)
    params: dict = field(default_factory=dict)

    def __init__(self, **values):
        params = dict(values.pop("params", None) or {})
        params.update((name, values.pop(name)) for name in list(values) if name not in _FAMILY)
        for name in params:
            if declare.param(name) is None:
                raise TypeError(
                    f"ClaimSettings has no field or claim parameter {name!r}; fields: "
                    f"{', '.join(_FAMILY)}; claim parameters: "
                    f"{', '.join(declare.PARAMS)}"
                )
        for f in dataclasses.fields(ClaimSettings):
            if f.name != "params":
                object.__setattr__(self, f.name, values.get(f.name, f.default))
        object.__setattr__(self, "params", params)
        self.__post_init__()

    def __getattr__(self, name):
        """A claim parameter: its value given, else its default in this mode."""
        if name.startswith("_") or name == "params":
            raise AttributeError(name)
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        p = declare.param(name)
        if p is None:
            raise AttributeError(f"ClaimSettings has no field or claim parameter {name!r}")
        return p.value(self.__dict__.get("mode", "full"))

    def __post_init__(self):
        from .. import _validate as V

        n1 = V.int_in_range("n1", self.n1, 2)
        n2 = n1 if self.n2 is None else V.int_in_range("n2", self.n2, 2)
        V.int_in_range("r", self.r, 1)
        V.int_in_range("m", self.m, 1)
        if not self.r < self.k <= min(n1, n2):
            raise ValueError(
                f"need 1 <= r < k <= min(n1, n2), got r={self.r}, k={self.k}, n1={n1}, n2={n2}"
            )
        sv = tuple(self.singular_values)
        if len(sv) != self.r:
            raise ValueError(f"singular_values needs r={self.r} entries, got {list(sv)}")
        for value in sv:
            V.positive_float("singular_values", value)
        V.positive_float("eta", self.eta)
        V.positive_float("ratio", self.ratio)
        V.int_in_range("n_seeds", self.n_seeds, 1)
        V.positive_float("budget_factor", self.budget_factor)
        declare.positive_values("alphas", self.alphas, self)
        for name, value in self.params.items():
            check = declare.PARAMS[name].check if name in declare.PARAMS else None
            if value is not None and check is not None:
                check(name, value, self)
        record = ensembles.get(self.ensemble)
        try:
            ensembles.check_keys(record, self._ensemble_values())
        except ValueError as exc:
            raise ValueError(exc.args[1]) from None
        record.check_shape(n1, n2)
        if self.mode not in ("full", "quick"):
            raise ValueError(f"mode must be 'full' or 'quick', got {self.mode!r}")

    # ------------------------------------------------------------- presets
    @classmethod
    def preset(
        cls,
        name: str = "default",
        *,
        quick: bool = False,
        ensemble: str = ensembles.DEFAULT,
        **overrides,
    ) -> ClaimSettings:
        """The named setting of :data:`PRESETS` (quick or full mode) on ``ensemble``, with
        ``overrides``."""
        if name not in PRESETS:
            raise ValueError(f"unknown setting {name!r}; known settings: {', '.join(PRESETS)}")
        values = dict(PRESETS[name], setting=name, ensemble=ensemble)
        record = ensembles.get(ensemble)
        if name == "large":
            if record.claims.large is None:
                raise ValueError(
                    f"setting 'large' is defined for the ensembles "
                    f"{', '.join(ensembles.with_large())}, not {ensemble!r} (its "
                    f"measurement data at that size do not fit in memory)"
                )
            values.update(LARGE_SHARED, **record.claims.large)
            if "m" not in record.sizes(values.get("m", cls.m), values):
                values.pop("m")  # a key of the ensemble replaces m (completion reads p)
        elif record.claims.size != 1:
            for key in ("n1", "n2"):
                size = values.get(key, getattr(cls, key))
                if size is not None:
                    values[key] = record.claims.size * size
        if quick:
            values.update(QUICK, mode="quick")
        values.update(overrides)
        return cls(**values)

    @classmethod
    def full(cls) -> ClaimSettings:
        """The default setting (docs/claims.md), full mode: 3 seeds."""
        return cls.preset("default")

    @classmethod
    def quick(cls) -> ClaimSettings:
        """The default setting in quick mode: 2 seeds, two α for C4 and C8, shorter horizons."""
        return cls.preset("default", quick=True)

    def replace(self, **changes) -> ClaimSettings:
        return dataclasses.replace(self, **changes)

    def with_overrides(self, items) -> ClaimSettings:
        """Apply ``key=value`` strings or a dict (values parsed by the field's type).

        ``n`` sets n1 (and n2 when it was not set); tuples are comma-separated
        (``singular_values=1,0.2``). Unknown keys and unparsable values raise
        ``ValueError`` naming the key and what is allowed.
        """
        pairs = items.items() if isinstance(items, dict) else [_split(item) for item in items]
        changes = {}
        for key, value in pairs:
            if key == "n":
                key = "n1"
            declared = None if key in FAMILY_SETTABLE else declare.param(key)
            if key not in FAMILY_SETTABLE and not (declared and declared.settable):
                raise ValueError(
                    f"unknown setting key {key!r}; allowed: n, {', '.join(settable_keys())}"
                )
            kind = declared.type if declared else _FIELD_TYPES[key]
            changes[key] = _parse(key, value, kind)
        return self.replace(**changes)

    # --------------------------------------------------------------- derived
    @property
    def n(self) -> int:
        """Size of the symmetric (PSD) problems, n1 × n1."""
        return self.n1

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the asymmetric problems."""
        return (self.n1, self.n1 if self.n2 is None else self.n2)

    def resolve(self) -> ClaimSettings:
        """These settings with every ``None`` replaced by its rule (see the module docstring)."""
        from . import predict

        s = self
        if s.n2 is None:
            s = s.replace(n2=s.n1)
        if s.alphas is None:
            a = predict.alpha_max(s)
            s = s.replace(alphas=tuple(float(f"{a / d:.3g}") for d in (1, 2, 4)))
        unset = {
            key: value
            for key, value in ensembles.get(s.ensemble).claims.params.items()
            if getattr(s, key) is None
        }
        if unset:  # the ensemble's keys at its defaults (completion: p = 2/3)
            s = s.replace(**unset)
        return s.replace(params={**s.params, **declare.resolved(s)})

    def as_dict(self) -> dict:
        """Every family field and every declared claim parameter, JSON-ready (tuples as lists)."""
        names = [f.name for f in dataclasses.fields(self) if f.name != "params"]
        names += list(dict.fromkeys([*declare.PARAMS, *self.params]))
        return {
            name: (list(v) if isinstance(v := getattr(self, name), tuple) else v) for name in names
        }

    def family(self) -> ClaimSettings:
        """These settings with everything derived unset again (to derive it for another σ): α and
        the claim parameters whose rule says so (``Param.rederive``)."""
        keep = {
            name: value
            for name, value in self.params.items()
            if not (
                name in declare.PARAMS
                and declare.PARAMS[name].derive is not None
                and declare.PARAMS[name].rederive
            )
        }
        return self.replace(alphas=None, params=keep)

    def with_kappa(self, kappa: float) -> ClaimSettings:
        """The same family with σ spaced geometrically from σ_1 to σ_1/κ, derived anew."""
        s1 = max(self.singular_values)
        sv = tuple(float(v) for v in np.geomspace(s1, s1 / kappa, self.r))
        return self.family().replace(singular_values=sv).resolve()

    def problem_kwargs(self) -> dict:
        return dict(r=self.r, m=self.m, singular_values=list(self.singular_values))

    def _ensemble_values(self, defaults: bool = False) -> dict:
        """The ensemble keys' values (``defaults``: unset ones at the record's claim defaults)."""
        record = ensembles.get(self.ensemble)
        values = {key: getattr(self, key) for key in _ENSEMBLE_KEYS}
        if defaults:
            values.update({k: v for k, v in record.claims.params.items() if values.get(k) is None})
        return values

    def measurements(self, n1: int, n2: int) -> int:
        """m of an n1 × n2 problem: ``m``, or what the ensemble's keys give (round(p·n1·n2)
        observed entries for completion)."""
        return ensembles.get(self.ensemble).measurements(
            n1, n2, self.m, self._ensemble_values(defaults=True)
        )

    def make_problem(self, symmetric: bool, seed: int):
        """The seeded problem of this setting: PSD n1 × n1 or general n1 × n2, on the ensemble."""
        from ..problems import Problem

        n1, n2 = (self.n, self.n) if symmetric else self.shape
        # the record's extra arguments, e.g. rank-one: independent a_i, b_i on the PSD problems
        # too (isotropic, like the general Gaussian A_i of the paper's PSD problems)
        extra = ensembles.get(self.ensemble).claims.generate
        return Problem.generate(
            self.ensemble,
            n1,
            n2,
            r=self.r,
            m=self.measurements(n1, n2),
            singular_values=list(self.singular_values),
            symmetric=symmetric,
            seed=seed,
            **extra,
        )

    def describe(self) -> str:
        """One line naming the setting: 'default: 30×30, r = 2, m = 900, σ = (1, 0.5), k = 4,
        η = 0.3, gaussian measurements' (completion: m and p of the n1 × n2 problem)."""
        n1, n2 = self.shape
        sv = ", ".join(f"{v:g}" for v in self.singular_values)
        m = f"m = {self.measurements(n1, n2)}"
        for key, value in self._ensemble_values(defaults=True).items():
            if value is not None:  # the ensemble's own keys (completion: p)
                m += f" ({key} = {value:.3g})"
        return (
            f"{self.setting}: {n1}×{n2}, r = {self.r}, {m}, σ = ({sv}), "
            f"k = {self.k}, η = {self.eta:g}, {self.ensemble} measurements"
        )


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(ClaimSettings)}
_FAMILY = tuple(name for name in _FIELD_TYPES if name != "params")
declare.RESERVED.update(_FIELD_TYPES, (n for n in dir(ClaimSettings) if not n.startswith("_")))
#: The ensemble keys (of any ensemble) that are fields here: completion's p.
_ENSEMBLE_KEYS = tuple(key for key in ensembles.keys() if key in _FIELD_TYPES)


def _split(item: str) -> tuple[str, str]:
    key, sep, value = str(item).partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE, got {item!r}")
    return key.strip(), value.strip()


def _parse(key: str, value, annotation: object):
    """``value`` (a string from the command line, or already typed) as field ``key``'s type."""
    text = str(annotation)
    if not isinstance(value, str):
        raw = value
    elif value.lower() in ("none", "auto", ""):
        if "None" not in text:
            raise ValueError(f"{key} cannot be unset (got {value!r})")
        return None
    else:
        try:
            raw = (
                tomllib.loads(f"v = [{value}]")["v"]
                if "tuple" in text
                else tomllib.loads(f"v = {value}")["v"]
            )
        except tomllib.TOMLDecodeError:
            raise ValueError(f"{key}: cannot read {value!r} as {_kind(text)}") from None
    out: object
    try:
        if "tuple" in text:
            out = tuple(float(x) for x in (raw if isinstance(raw, (list, tuple)) else [raw]))
        elif text.startswith("int"):
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw != int(raw):
                raise TypeError
            out = int(raw)
        elif text.startswith("float"):
            if isinstance(raw, bool):
                raise TypeError
            out = float(raw)
        else:
            out = raw
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be {_kind(text)}, got {value!r}") from None
    if isinstance(out, float) and not math.isfinite(out):
        raise ValueError(f"{key} must be finite, got {value!r}")
    return out


def _kind(annotation: str) -> str:
    if "tuple" in annotation:
        return "a comma-separated list of numbers"
    if annotation.startswith("int"):
        return "an integer"
    if annotation.startswith("float"):
        return "a number"
    return "a value"


__all__ = [
    "ClaimSettings",
    "PRESETS",
    "LARGE",
    "LARGE_CLAIMS",
    "QUICK",
    "FAMILY_SETTABLE",
    "settable_keys",
    "COMPLETION_P",
    "COMPLETION_SIZE",
    "init_seed",
]
