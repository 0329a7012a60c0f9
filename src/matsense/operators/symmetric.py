"""Symmetrized sensing operator stored as packed upper triangles (half the bytes).

In the symmetric setting the loss ¼‖𝒜(X Xᵀ) − y‖² sees the measurement
matrices only through their symmetric parts, <A_i, X Xᵀ> = <sym(A_i), X Xᵀ>
with sym(A) = (A + Aᵀ)/2. This operator is

    𝒜_s(P)_i = <sym(A_i), P> / √m,      𝒜_s*(z) = Σ_i z_i sym(A_i) / √m,

stored as the isometric "svec" packing of each sym(A_i): the n(n+1)/2 upper
triangular entries, off-diagonals multiplied by √2 so that
<svec(S), svec(T)> = <S, T> for symmetric S, T. One iteration then reads
n(n+1)/2 instead of n² numbers per measurement.

**A different operator for asymmetric products.** For symmetric P (X Xᵀ, or a
PSD M*) 𝒜_s(P) = 𝒜(P) exactly, so a symmetric problem keeps its observations
y and the X Xᵀ trajectory is the dense operator's (up to rounding). For a non-
symmetric product F Gᵀ, 𝒜_s measures <sym(A_i), F Gᵀ> = <A_i, sym(F Gᵀ)>,
not <A_i, F Gᵀ>: the antisymmetric part of F Gᵀ is unobserved and S = 𝒜_s*(r)
is symmetric. Both are valid Gaussian-type sensing operators (for PSD M* they
have the same y and the same minimizers F Gᵀ = M*), but F Gᵀ trajectories
differ from the dense operator's. Select it explicitly with
:meth:`matsense.Problem.with_symmetric_operator`.

:data:`SYMMETRIC_GAUSSIAN` is the ensemble of symmetric Gaussian measurement
matrices A_i = (Z_i + Z_iᵀ)/2 stored this way (:mod:`matsense.ensembles`; also
spelled ``"symmetric"``, as in ``Problem.gaussian(..., ensemble="symmetric")``).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..ensemble import Ensemble
from .base import FlatMatrixOperator
from .dense import DenseOperator, generate

# Rows converted per chunk when packing a dense operator (bounds the temporary).
_PACK_CHUNK_BYTES = 64 * 2**20


def packing_indices(n: int):
    """Index and weight arrays of the svec packing of n×n matrices (NumPy).

    Returns
    -------
    upper, lower : (d,) int arrays
        Flat positions of (j, k) and (k, j), j <= k, in packed order (d = n(n+1)/2).
    pack_weight : (d,) float
        1/2 on the diagonal, 1/√2 off it: svec(sym(P)) = (P[upper] + P[lower]) · pack_weight.
    full_to_packed : (n²,) int array
        Packed position of every flat (a, b).
    unpack_weight : (n²,) float
        1 on the diagonal, 1/√2 off it: smat(v)[a, b] = v[full_to_packed] · unpack_weight.
    """
    j, k = np.triu_indices(n)
    upper = j * n + k
    lower = k * n + j
    diag = j == k
    pack_weight = np.where(diag, 0.5, 1 / math.sqrt(2))
    full_to_packed = np.empty(n * n, dtype=np.int64)
    full_to_packed[upper] = np.arange(upper.size)
    full_to_packed[lower] = np.arange(upper.size)
    unpack_weight = np.where(np.eye(n, dtype=bool).ravel(), 1.0, 1 / math.sqrt(2))
    return upper, lower, pack_weight, full_to_packed, unpack_weight


class SymmetricOperator(FlatMatrixOperator):
    """𝒜_s with rows svec(sym(A_i))/√m, shape (m, n(n+1)/2).

    Build it with :meth:`from_dense` (from a :class:`DenseOperator`, e.g. a
    problem's) or from raw square measurement matrices ``A`` (m, n, n).
    """

    def __init__(self, A):
        self._init_from(DenseOperator(A))

    @classmethod
    def from_dense(cls, dense: DenseOperator) -> SymmetricOperator:
        """Pack an existing dense operator (same backend, device and dtype)."""
        op = cls.__new__(cls)
        op._init_from(dense)
        return op

    def _init_from(self, dense: DenseOperator):
        n1, n2 = dense.shape
        if n1 != n2:
            raise ValueError(f"a symmetric operator needs square A_i, got n1={n1}, n2={n2}")
        n = n1
        tgt = backend.target_of(dense.A_flat)
        idx = packing_indices(n)
        self.upper, self.lower, self.full_to_packed = (
            backend.convert_index(a, tgt) for a in (idx[0], idx[1], idx[3])
        )
        self.pack_weight = backend.convert(idx[2], tgt)
        self.unpack_weight = backend.convert(idx[4], tgt)
        A = dense.A_flat
        xp = backend.namespace(A)
        m = A.shape[0]
        d = n * (n + 1) // 2
        packed = xp.empty((m, d), dtype=A.dtype, device=backend.device_of(A))
        rows = max(1, _PACK_CHUNK_BYTES // (n * n * A.dtype.itemsize))
        for lo in range(0, m, rows):
            packed[lo : lo + rows, ...] = self._pack_flat(A[lo : lo + rows, ...])
        FlatMatrixOperator.__init__(self, packed, n, n)

    def packs_symmetric(self) -> bool:
        return True

    def symmetric_packed(self) -> SymmetricOperator:
        return self

    def _pack_flat(self, Pf):
        xp = backend.namespace(Pf)
        return (
            xp.take(Pf, self.upper, axis=1) + xp.take(Pf, self.lower, axis=1)
        ) * self.pack_weight

    def pack(self, P):
        """svec(sym(P)) for a batch (B, n, n) → (B, n(n+1)/2)."""
        xp = backend.namespace(P)
        return self._pack_flat(xp.reshape(P, (P.shape[0], self.n1 * self.n2)))

    def unpack(self, s):
        """smat: packed (B, n(n+1)/2) → symmetric (B, n, n)."""
        xp = backend.namespace(s)
        full = xp.take(s, self.full_to_packed, axis=1) * self.unpack_weight
        return xp.reshape(full, (s.shape[0], self.n1, self.n2))

    def as_matrix(self):
        """The (m, n²) matrix of 𝒜_s on flattened n×n matrices: rows vec(sym(A_i))/√m."""
        xp = backend.namespace(self.A_flat)
        return xp.reshape(self.unpack(self.A_flat), (self.m, self.n1 * self.n2))

    def _convert(self, tgt: backend.Target) -> dict:
        out = super()._convert(tgt)
        for name in ("upper", "lower", "full_to_packed"):
            out[name] = backend.convert_index(getattr(self, name), tgt)
        for name in ("pack_weight", "unpack_weight"):
            out[name] = backend.convert(getattr(self, name), tgt)
        return out


def generate_packed(n1: int, n2: int | None = None, **kwargs):
    """The seeded symmetric-gaussian problem: :func:`.dense.generate` with the measurement
    matrices' symmetric parts stored packed (``Problem.gaussian(..., ensemble="symmetric")``)."""
    return generate(n1, n2, packed=True, name="symmetric-gaussian", **kwargs)


def packed_bytes(n1: int, n2: int, m: int, *, symmetric: bool = False) -> int:
    """Bytes while a packed symmetric problem is drawn (float64): the m dense n × n
    matrices, their packed copy (m·n(n+1)/2 numbers) and the packing's temporaries (two packed
    chunks of ``_PACK_CHUNK_BYTES`` of dense rows; measured: tests/test_ensemble_registry.py)."""
    d = n1 * (n1 + 1) // 2
    rows = min(m, max(1, _PACK_CHUNK_BYTES // (n1 * n2 * 8)))
    return 8 * (m * n1 * n2 + m * d + 2 * rows * d)


#: Symmetric Gaussian measurement matrices (GOE-like), packed: n1 = n2 (docs/ensembles.md).
SYMMETRIC_GAUSSIAN = Ensemble(
    "symmetric-gaussian",
    generate_packed,
    data_bytes=packed_bytes,
    aliases=("symmetric",),
    square=True,
    help="symmetric Gaussian measurement matrices (A_i + A_iᵀ)/2, stored packed; n1 = n2",
)
