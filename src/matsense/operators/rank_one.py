"""Rank-one measurements A_i = a_i b_iᵀ (bilinear / covariance sensing), matrix-free.

Convention (docs/conventions.md): 𝒜(M)_i = <a_i b_iᵀ, M>/√m = a_iᵀ M b_i/√m and
𝒜*(z) = Σ_i z_i a_i b_iᵀ/√m = aᵀ diag(z) b/√m, with a (m × n1) and b (m × n2)
holding the vectors as rows. With a_i ~ N(0, I), b_i ~ N(0, I) independent,
E[𝒜*𝒜] = I. The symmetric variant (covariance sensing) uses b_i = a_i and
stores ``a`` once.

The factored calls never form an n1 × n2 matrix; one GD iteration is four
GEMMs of size m × n × k:

    r = (a F ⊙ b G) 1/√m − y,     S G = aᵀ (r ⊙ b G)/√m,     Sᵀ F = bᵀ (r ⊙ a F)/√m,

O(m (n1 + n2) k) flops, and the only temporaries are the two m × k products.

:data:`RANK_ONE` is the ensemble's record (:mod:`matsense.ensembles`), drawn by
:func:`generate`.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from .. import backend
from ..ensemble import ClaimDefaults, Ensemble
from .base import MatrixOperator


def _tmul(A, Z):
    """Aᵀ Z for the 2-D measurement vectors A (m, n) and a batch Z (B, m, j) → (B, n, j).

    NumPy: ``A.mT @ Z`` (one transposed GEMM per batch element). torch: ``(Zᵀ A)ᵀ``,
    which torch folds into one GEMM; its ``A.mT @ Z`` first copies the m × n matrix A
    (measured 6× slower at m = 10⁵, n = 1000, and 1.6 GB more at n = 2000).
    """
    if isinstance(A, np.ndarray):
        return A.mT @ Z
    return (Z.mT @ A).mT


class RankOneOperator(MatrixOperator):
    """𝒜(M)_i = a_iᵀ M b_i/√m for rows a_i of ``a`` (m, n1) and b_i of ``b`` (m, n2).

    Parameters
    ----------
    a : array, shape (m, n1)
    b : array, shape (m, n2), or None
        ``None``: b_i = a_i (symmetric measurements a_iᵀ M a_i; n1 = n2).
        The arrays are kept as given (not copied, not scaled).
    """

    #: Rows of ``a`` per block of the dense :meth:`apply` (bounds its m × n2 temporary).
    APPLY_ROWS = 4096

    def __init__(self, a, b=None):
        self.a = a
        self.b = b
        if b is not None and b.shape[0] != a.shape[0]:
            raise ValueError(
                f"a and b need one row per measurement: a has {a.shape[0]} rows, b has {b.shape[0]}"
            )
        self.scale = 1.0 / math.sqrt(a.shape[0])

    @classmethod
    def draw(
        cls, rng: np.random.Generator, m: int, n1: int, n2: int, *, symmetric: bool = False
    ) -> RankOneOperator:
        """a_i ~ N(0, I_n1), b_i ~ N(0, I_n2) i.i.d. from ``rng`` (a first), or b = a."""
        a = rng.standard_normal((m, n1))
        if symmetric:
            if n1 != n2:
                raise ValueError(
                    f"symmetric rank-one measurements need n1 == n2, got n1={n1}, n2={n2}"
                )
            return cls(a, None)
        return cls(a, rng.standard_normal((m, n2)))

    # ------------------------------------------------------------ properties
    @property
    def symmetric(self) -> bool:
        """Whether b_i = a_i."""
        return self.b is None

    @property
    def _b(self):
        return self.a if self.b is None else self.b

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.a.shape[1]), int(self._b.shape[1]))

    @property
    def m(self) -> int:
        return int(self.a.shape[0])

    @property
    def dtype(self):
        return self.a.dtype

    @property
    def nbytes(self) -> int:
        itemsize = backend.to_numpy(self.a[:1, :1]).dtype.itemsize
        cols = self.a.shape[1] + (0 if self.b is None else self.b.shape[1])
        return int(self.a.shape[0] * cols * itemsize)

    @property
    def target(self) -> backend.Target:
        return backend.target_of(self.a)

    def _probe(self):
        return self.a

    # --------------------------------------------------------- factored calls
    def apply_factored(self, F, G):
        xp = backend.namespace(F)
        return xp.sum((self.a @ F) * (self._b @ G), axis=-1) * self.scale

    def adjoint_matmul(self, z, G):
        return _tmul(self.a, z[..., None] * (self._b @ G)) * self.scale

    def adjoint_rmatmul(self, z, F):
        return _tmul(self._b, z[..., None] * (self.a @ F)) * self.scale

    def kernel_for(self, B: int = 1) -> str | None:
        return "four-gemm"

    def residual_and_grads(self, F, G, y, rmap=None):
        """r, S G, Sᵀ F from four GEMMs (a F and b G are computed once); S = 𝒜*(φ(r))
        with a residual map ``rmap``."""
        xp = backend.namespace(F)
        aF = self.a @ F
        bG = aF if (G is F and self.b is None) else self._b @ G
        r = xp.sum(aF * bG, axis=-1) * self.scale - y
        rs = (r if rmap is None else rmap(r))[..., None] * self.scale
        SG = _tmul(self.a, rs * bG)
        StF = SG if (G is F and self.b is None) else _tmul(self._b, rs * aF)
        return r, SG, StF

    # ------------------------------------------------------------ dense calls
    def apply(self, P):
        # In blocks of rows: a @ P is m × n2 per product (1.6 GB at m = 10⁵, n2 = 2000).
        xp = backend.namespace(P)
        out = xp.empty((P.shape[0], self.m), dtype=P.dtype, device=backend.device_of(P))
        for i in range(0, self.m, self.APPLY_ROWS):
            sl = slice(i, i + self.APPLY_ROWS)
            out[:, sl] = xp.sum((self.a[sl] @ P) * self._b[sl], axis=-1)
        out *= self.scale
        return out

    def adjoint(self, z):
        self.check_dense("the adjoint as n1 × n2 matrices")
        return _tmul(self.a, z[..., None] * self._b) * self.scale

    # ------------------------------------------------------------- conversion
    def to(self, tgt: backend.Target) -> RankOneOperator:
        new = copy.copy(self)
        new.a = backend.convert(self.a, tgt)
        new.b = backend.convert(self.b, tgt)
        return new


def generate(
    n1: int,
    n2: int | None = None,
    *,
    r: int,
    m: int,
    singular_values=None,
    kappa: float = 1.0,
    spacing: str = "geometric",
    symmetric: bool = False,
    noise: float = 0.0,
    seed: int = 0,
    symmetric_measurements: bool | None = None,
    max_memory=None,
):
    """The seeded rank-one problem (:meth:`matsense.Problem.rank_one` documents it)."""
    from .. import _validate as V
    from ..problems import Problem, check_memory, common_arguments, draw_truth

    n1, n2, r, sigma, noise, seed = common_arguments(
        n1, n2, r, kappa, singular_values, spacing, symmetric, noise, seed, max_memory
    )
    symmetric = bool(symmetric)  # validated: a bool or a NumPy bool
    m = V.int_in_range("m", m, 1)
    shared = (
        symmetric
        if symmetric_measurements is None
        else V.strict_bool("symmetric_measurements", symmetric_measurements)
    )
    check_memory(
        "the measurement vectors a_i, b_i", vector_bytes(n1, n2, m, symmetric=shared), max_memory
    )
    rng = np.random.default_rng(seed)
    truth = draw_truth(rng, n1, n2, r, sigma, symmetric)
    op = RankOneOperator.draw(rng, m, n1, n2, symmetric=shared)
    return Problem.observe(
        op,
        rng,
        truth,
        noise,
        symmetric,
        dict(ensemble="rank-one", n1=n1, n2=n2, r=r, m=m, seed=seed),
    )


def vector_bytes(n1: int, n2: int, m: int, *, symmetric: bool = False) -> int:
    """Bytes of the vectors a_i (n1) and b_i (n2) of m measurements (b = a when symmetric)."""
    return 8 * m * (n1 + (0 if symmetric else n2))


def _from_rank_one(*args, **kwargs):
    from ..problems import Problem

    return Problem.from_rank_one(*args, **kwargs)


#: Rank-one measurements A_i = a_i b_iᵀ; the claims draw independent a_i, b_i on the PSD
#: problems too (covariance sensing b_i = a_i is not isotropic: docs/ensembles.md), and
#: ``--setting large`` is n = 2000 with m = 10⁵.
RANK_ONE = Ensemble(
    "rank-one",
    generate,
    from_data=_from_rank_one,
    data_bytes=vector_bytes,
    work_bytes=lambda m, k: 2 * 8 * m * k,
    help="rank-one measurements a_i b_iᵀ (m·(n1 + n2) numbers)",
    claims=ClaimDefaults(
        generate={"symmetric_measurements": False}, large={"n1": 2000, "m": 100_000}
    ),
)
