"""What every matrix-backed sensing operator shares.

An operator stores one (m × d) matrix ``A_flat`` whose row i is the i-th
measurement matrix, already divided by √m and written in some packed form of
length d (the plain flattening for :class:`DenseOperator`, the weighted upper
triangle for :class:`SymmetricOperator`). A subclass only says how a batch of
products P (B, n1, n2) is packed to (B, d) and how a packed adjoint (B, d) is
unpacked to (B, n1, n2); apply / adjoint / the fused residual-and-adjoint and
backend conversion are written once here.

Convention (docs/conventions.md): 𝒜(M)_i = <A_i, M>/√m, 𝒜*(z) = Σ_i z_i A_i/√m.
"""

from __future__ import annotations

import copy

from .. import backend
from .dispatch import residual_and_adjoint_flat


class MatrixOperator:
    """Base class: 𝒜(P) = pack(P) A_flatᵀ, 𝒜*(z) = unpack(z A_flat).

    Attributes
    ----------
    A_flat : array (m, d)
        Scaled, packed measurement matrices (NumPy array or torch tensor).
    block_rows : int or None
        Rows of ``A_flat`` per block of the one-pass CPU kernel; ``None`` picks
        it from the cache size (see :mod:`matsense.operators.blocking`).
    """

    block_rows: int | None = None

    def __init__(self, A_flat, n1: int, n2: int):
        self.A_flat = A_flat
        self.m = int(A_flat.shape[0])
        self.n1, self.n2 = int(n1), int(n2)

    # ------------------------------------------------------------ the packing
    def pack(self, P):
        """Products (B, n1, n2) → rows (B, d) such that 𝒜(P) = pack(P) A_flatᵀ."""
        raise NotImplementedError

    def unpack(self, s):
        """Packed adjoint (B, d) → matrices (B, n1, n2)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- queries
    @property
    def shape(self) -> tuple[int, int]:
        return (self.n1, self.n2)

    @property
    def dtype(self):
        return self.A_flat.dtype

    @property
    def nbytes(self) -> int:
        """Bytes of measurement data read by one pass (the memory-bound floor's numerator)."""
        return int(self.A_flat.shape[0] * self.A_flat.shape[1] * self.A_flat.dtype.itemsize)

    @property
    def target(self) -> backend.Target:
        return backend.target_of(self.A_flat)

    # ---------------------------------------------------------------- algebra
    def apply(self, P):
        """𝒜(P) for a batch ``P`` of shape (B, n1, n2) → (B, m)."""
        return self.pack(P) @ self.A_flat.mT

    def adjoint(self, z):
        """𝒜*(z) for a batch ``z`` of shape (B, m) → (B, n1, n2)."""
        return self.unpack(z @ self.A_flat)

    def residual_and_adjoint(self, P, y):
        """Residual r = 𝒜(P) − y and S = 𝒜*(r) for a batch of products.

        One pass over ``A_flat`` on NumPy for small batches (cache-blocked),
        two matrix products otherwise. Returns ``(r, S)`` with shapes (B, m)
        and (B, n1, n2).
        """
        r, s = residual_and_adjoint_flat(self.A_flat, self.pack(P), y, self.block_rows)
        return r, self.unpack(s)

    # ------------------------------------------------------------- conversion
    def _convert(self, tgt: backend.Target) -> dict:
        """Converted array attributes (subclasses with index arrays add theirs)."""
        return {"A_flat": backend.convert(self.A_flat, tgt)}

    def to(self, tgt: backend.Target) -> "MatrixOperator":
        """The same operator with its arrays on ``tgt`` (see :func:`matsense.backend.target`)."""
        new = copy.copy(self)
        new.__dict__.update(self._convert(tgt))
        return new
