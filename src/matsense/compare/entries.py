"""What the comparison runs: the methods with their starts, and the grid (docs/methods.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from .. import _validate as V
from .. import ensembles
from .. import init as _init
from ..methods import GD, SVP, AlternatingPrecGD, PrecGD, RebalancedGD, ScaledGD, ScaledGDLambda
from ..methods.scaledsm import ScaledSM
from ..methods.subgm import SubGM

#: How the comparison's random starts are scaled: F_0 at α/√n, G_0 at α/(3√n), X_0 at α/√n.
INIT_RATIO = 1 / 3
INIT_NORMALIZATION = "sqrt_n"


@dataclass(frozen=True)
class Entry:
    """One method of the comparison with its initialization.

    ``make_method(sigma_1)`` builds the method (GD's step is 0.5/σ_1);
    ``init`` names the start in :data:`matsense.init.INITS`: 'spectral' (top-k
    SVD of 𝒜*(y)), 'small_random' (F_0, G_0 at α/√n and α/(3√n)),
    'symmetric_random' (X_0 at α/√n) or 'zeros' (M_0 = 0). A start for X Xᵀ
    (``symmetric``) runs X Xᵀ on the PSD version of the problem (same seed,
    same law of A) instead of F Gᵀ on the general one.
    """

    key: str
    label: str
    make_method: Callable[[float], object]
    init: str
    hyper: str = ""

    def __post_init__(self):
        _init.get_init(self.init)

    @property
    def symmetric(self) -> bool:
        return _init.INITS[self.init].symmetric

    def initial_factors(self, problem, k: int, alpha: float, seed: int):
        """The start of this entry on ``problem`` (seed ``seed`` for the random ones)."""
        return _init.INITS[self.init].build(
            problem, k, alpha, ratio=INIT_RATIO, normalization=INIT_NORMALIZATION, seed=seed
        )


ENTRIES: tuple[Entry, ...] = (
    Entry("gd", "GD (vanilla, spectral)", lambda s1: GD(0.5 / s1), "spectral", hyper="η = 0.5/σ₁"),
    Entry(
        "rebalanced_gd",
        "Rebalanced GD (paper §5, small random)",
        lambda s1: RebalancedGD(0.5 / s1),
        "small_random",
        hyper="η = 0.5/σ₁, τ = 1e-2",
    ),
    Entry("scaledgd", "ScaledGD (spectral)", lambda s1: ScaledGD(0.5), "spectral", hyper="η = 0.5"),
    Entry(
        "apgd",
        "Alternating PrecGD (small random)",
        lambda s1: AlternatingPrecGD(1.0),
        "small_random",
        hyper="η = 1",
    ),
    Entry("svp", "SVP (M₀ = 0)", lambda s1: SVP(0.5), "zeros", hyper="η = 0.5"),
    Entry(
        "gd_sym",
        "GD on XXᵀ (small random)",
        lambda s1: GD(0.5 / s1),
        "symmetric_random",
        hyper="η = 0.5/σ₁",
    ),
    Entry(
        "precgd",
        "PrecGD on XXᵀ (small random)",
        lambda s1: PrecGD(0.5),
        "symmetric_random",
        hyper="η = 0.5, λ_t = √(½‖r_t‖²)",
    ),
    Entry(
        "scaledgd_lambda",
        "ScaledGD(λ) on XXᵀ (small random)",
        lambda s1: ScaledGDLambda(0.5, 1e-3),
        "symmetric_random",
        hyper="η = 0.5, λ = 1e-3",
    ),
)
#: The ℓ2 methods run by default (``methods`` of :class:`CompareSettings`).
ENTRY_KEYS = tuple(e.key for e in ENTRIES)

#: The robust (ℓ1) methods, run when named (``matsense compare --methods``, docs/robust.md):
#: both from the trimmed spectral start with Polyak steps, as in the ScaledSM experiments.
ROBUST_ENTRIES: tuple[Entry, ...] = (
    Entry(
        "subgm",
        "SubGM, ℓ1 (Polyak, trimmed spectral)",
        lambda s1: SubGM(schedule="polyak"),
        "spectral_trimmed",
        hyper="ℓ1 loss, Polyak η_t = (f − f*)/‖g‖², f* = f(M*)",
    ),
    Entry(
        "scaledsm",
        "ScaledSM, ℓ1 (Polyak, trimmed spectral)",
        lambda s1: ScaledSM(),
        "spectral_trimmed",
        hyper="ℓ1 loss, Polyak step in the scaled norm, f* = f(M*)",
    ),
)
#: Every entry a comparison can run, in the order of the tables.
ALL_ENTRIES = ENTRIES + ROBUST_ENTRIES
ALL_KEYS = tuple(e.key for e in ALL_ENTRIES)


@dataclass(frozen=True)
class CompareSettings:
    """The grid and budgets of a comparison.

    m = ``m_factor``·n·r measurements; k = multiplier·r for each of
    ``k_multipliers``; ``max_iters`` per run, except the methods named in
    ``max_iters_override`` (key → budget). ``ensemble``: the measurement model
    (:func:`matsense.ensembles.names`; completion observes m of the n² entries).
    ``methods``: keys of :data:`ALL_KEYS` (default the ℓ2 ones, :data:`ENTRY_KEYS`).
    ``outlier_fraction`` p_s > 0 adds outliers to every problem of the grid
    (``outlier_scale``, ``outlier_mode``: :class:`matsense.corruption.Outliers`).
    """

    n: int = 100
    r: int = 5
    m_factor: int = 5
    kappas: tuple = (1.0, 10.0, 100.0)
    k_multipliers: tuple = (1, 2)
    spacing: str = "linear"
    tol: float = 1e-10
    max_iters: int = 3000
    max_iters_override: tuple = ()
    alpha: float = 1e-3
    record_every: int = 1
    methods: tuple = ENTRY_KEYS
    name: str = "full"
    ensemble: str = ensembles.DEFAULT
    outlier_fraction: float = 0.0
    outlier_scale: float = 10.0
    outlier_mode: str = "add"

    def __post_init__(self):
        ensembles.get(self.ensemble)  # ValueError listing the known ones
        self.outliers()  # ValueError naming a bad fraction, scale or mode
        V.int_in_range("n", self.n, 2)
        V.int_in_range("r", self.r, 1, self.n)
        V.int_in_range("m_factor", self.m_factor, 1)
        for kap in self.kappas:
            if V.positive_float("kappa", kap) < 1:
                raise ValueError(f"kappa must be >= 1, got {kap}")
        for mult in self.k_multipliers:
            V.int_in_range("k multiplier", mult, 1, max(1, self.n // self.r))
        V.positive_float("tol", self.tol)
        V.int_in_range("max_iters", self.max_iters, 1)
        V.positive_float("alpha", self.alpha)
        V.int_in_range("record_every", self.record_every, 1)
        unknown = [m for m in self.methods if m not in ALL_KEYS]
        if unknown or not self.methods:
            raise ValueError(
                f"methods must be a non-empty subset of {', '.join(ALL_KEYS)}, "
                f"got {list(self.methods)}"
            )

    def outliers(self) -> dict:
        """The outlier keys of :meth:`matsense.Problem.generate` ({} without outliers)."""
        from ..corruption import Outliers

        o = Outliers(self.outlier_fraction, self.outlier_scale, self.outlier_mode)
        if o.fraction == 0:
            return {}
        return {"outlier_fraction": o.fraction, "outlier_scale": o.scale, "outlier_mode": o.mode}

    @property
    def m(self) -> int:
        return self.m_factor * self.n * self.r

    def budget(self, key: str) -> int:
        return dict(self.max_iters_override).get(key, self.max_iters)

    def entries(self) -> list[Entry]:
        """The entries of ``methods``, in the order of :data:`ALL_ENTRIES`."""
        return [e for e in ALL_ENTRIES if e.key in self.methods]

    def grid(self):
        """(κ, multiplier, k) in the order of the records: κ outer, k inner."""
        return [
            (kappa, mult, mult * self.r) for kappa in self.kappas for mult in self.k_multipliers
        ]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["m"] = self.m
        d["max_iters_override"] = dict(self.max_iters_override)
        d["kappas"] = list(self.kappas)
        d["k_multipliers"] = list(self.k_multipliers)
        d["methods"] = list(self.methods)
        for key in ("outlier_fraction", "outlier_scale", "outlier_mode"):
            del d[key]
        d.update(self.outliers())  # recorded only when there are outliers
        return d


FULL = CompareSettings()
QUICK = CompareSettings(n=30, r=2, m_factor=5, max_iters=1500, max_iters_override=(), name="quick")
DEFAULT_SEEDS = {"full": 3, "quick": 1}
