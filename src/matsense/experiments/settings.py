"""Settings of the claim experiments (PAPER.md §5) and the criteria of their verdicts.

One frozen :class:`ClaimSettings` holds every number an experiment uses: the
problem (n, r, m, σ), the over-parameterized width k, the step size η, the
initialization scales α, the iterations and fit windows of every claim, and
the seeds. :meth:`ClaimSettings.full` and :meth:`ClaimSettings.quick` are the
two presets of :func:`matsense.experiments.reproduce`; tests build smaller
ones with :meth:`ClaimSettings.replace`.

The thresholds that turn measured numbers into a verdict live with each
claim, as a typed dataclass (``matsense.experiments.CLAIMS[cid].criteria``),
fixed before any run and the same in every mode; they are explained claim by
claim in ``docs/claims.md``.

Randomness: problem ``s`` is ``Problem.gaussian(..., seed=s)``; initial factors
are drawn from :func:`init_seed` (``s``, role), a ``SeedSequence`` of the seed
and a fixed role tag, so that the initialization never reuses the stream that
drew M* and the A_i, and every claim that shares a role (e.g. C4, C7, C8 on the
asymmetric problem) starts from the same factors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

_ROLES = {"symmetric": 1, "asymmetric": 2}


def init_seed(seed: int, role: str) -> int:
    """Seed of the initial factors of ``role`` ('symmetric' / 'asymmetric') for problem seed ``seed``."""
    state = np.random.SeedSequence([int(seed), _ROLES[role]]).generate_state(1)[0]
    return int(state)


@dataclass(frozen=True)
class ClaimSettings:
    """Everything the claim experiments use; see the module docstring.

    Iteration counts are maxima: runs with a ``tol`` stop early once every
    trajectory of the batch has met it. Windows are ``(upper, lower)`` bounds
    on the error relative to its value at the start of the fit
    (:func:`matsense.rates.linear_rate`).
    """

    mode: str = "full"
    n: int = 30
    r: int = 2
    m: int = 900
    singular_values: tuple = (1.0, 0.5)
    k: int = 4
    eta: float = 0.3
    alphas: tuple = (0.08, 0.04, 0.02)
    n_seeds: int = 3
    record_every: int = 5
    long_record_every: int = 10
    divergence_factor: float = 1e6
    # C1 / C3: exact parameterization k = r
    exact_iters: int = 600
    exact_window: tuple = (1e-4, 1e-12)
    # C2: X Xᵀ with k > r (also the XXᵀ curve of C5 and C6)
    c2_alphas: tuple = (0.08,)
    c2_iters: int = 10000
    c2_tail: float = 0.5
    # C4: F Gᵀ with k > r, rate vs α
    c4_alphas: tuple = (0.08, 0.04, 0.02)
    c4_iters: int = 20000
    c4_window: tuple = (1e-4, 1e-8)
    # C5 / C6: F Gᵀ on the symmetric PSD problem
    c5_alpha: float = 0.08
    c5_iters: int = 3000
    c6_tail: float = 0.5
    # C7: rebalanced GD
    tau: float = 1e-2
    c7_iters: int = 2000
    c7_window: tuple = (1e-2, 1e-10)
    c7_tol: float = 1e-13
    # C8: imbalance drift at η and η/2 over the same time η·t
    c8_alphas: tuple = (0.08, 0.04, 0.02)
    c8_iters: int = 1000
    c8_checkpoints: int = 24

    def __post_init__(self):
        if self.c5_alpha not in self.c2_alphas:
            raise ValueError(f"c5_alpha={self.c5_alpha} must be one of c2_alphas={self.c2_alphas}: "
                             "C5 and C6 compare against the C2 run at that α")
        if self.c5_iters > self.c2_iters:
            raise ValueError(f"c5_iters={self.c5_iters} must be <= c2_iters={self.c2_iters}: "
                             "C5 and C6 compare against the C2 run at the same iteration")
        if not 1 <= self.r < self.k <= self.n:
            raise ValueError(f"need 1 <= r < k <= n, got r={self.r}, k={self.k}, n={self.n}")
        if len(self.singular_values) != self.r:
            raise ValueError(f"singular_values needs r={self.r} entries, got {self.singular_values}")
        if self.n_seeds < 1:
            raise ValueError(f"n_seeds must be >= 1, got {self.n_seeds}")
        if self.eta <= 0:
            raise ValueError(f"eta must be > 0, got {self.eta}")

    @classmethod
    def full(cls) -> "ClaimSettings":
        """The PAPER.md §5 settings, 3 seeds (≈ 2–3 minutes on a 2-core CPU)."""
        return cls()

    @classmethod
    def quick(cls) -> "ClaimSettings":
        """Same problem and criteria, 2 seeds and shorter runs (≈ 20–30 s).

        C4 keeps two of the three α (0.08, 0.04) and fits its rates on the
        window 1e-4…1e-6; C2 and C5/C6 run shorter horizons (3000 and 1200
        iterations), C8 a shorter drift horizon.
        """
        return cls(mode="quick", n_seeds=2, exact_iters=400, c2_iters=3000,
                   c4_alphas=(0.08, 0.04), c4_iters=5000, c4_window=(1e-4, 1e-6),
                   c5_iters=1200, c8_alphas=(0.08, 0.04), c8_iters=300, c8_checkpoints=16)

    def replace(self, **changes) -> "ClaimSettings":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    def problem_kwargs(self) -> dict:
        return dict(r=self.r, m=self.m, singular_values=list(self.singular_values))
