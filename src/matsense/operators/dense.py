"""Dense Gaussian-ensemble sensing operator.

Convention (PAPER.md §2): 𝒜(M)_i = <A_i, M> / √m and 𝒜*(z) = Σ_i z_i A_i / √m.
The operator stores the m measurement matrices once, flattened and already
divided by √m, as an ``(m, n1·n2)`` matrix ``A_flat``. All calls take a leading
batch axis: products ``P`` of shape ``(B, n1, n2)``, vectors ``z`` of shape
``(B, m)``.
"""

from __future__ import annotations

import math

from .. import backend


class DenseOperator:
    """𝒜 given by explicit measurement matrices ``A`` of shape ``(m, n1, n2)``.

    Parameters
    ----------
    A : array, shape (m, n1, n2)
        Raw measurement matrices (entries N(0, 1) for the Gaussian ensemble).
        They are scaled by 1/√m here, once.
    """

    def __init__(self, A):
        xp = backend.namespace(A)
        m, n1, n2 = A.shape
        self.m, self.n1, self.n2 = int(m), int(n1), int(n2)
        self.A_flat = xp.reshape(A, (m, n1 * n2)) / math.sqrt(m)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n1, self.n2)

    @property
    def dtype(self):
        return self.A_flat.dtype

    @property
    def nbytes(self) -> int:
        return int(self.A_flat.shape[0] * self.A_flat.shape[1] * self.A_flat.dtype.itemsize)

    def _flat(self, P):
        xp = backend.namespace(P)
        return xp.reshape(P, (P.shape[0], self.n1 * self.n2))

    def apply(self, P):
        """𝒜(P) for a batch ``P`` of shape (B, n1, n2) → (B, m)."""
        return self._flat(P) @ self.A_flat.mT

    def adjoint(self, z):
        """𝒜*(z) for a batch ``z`` of shape (B, m) → (B, n1, n2)."""
        xp = backend.namespace(z)
        return xp.reshape(z @ self.A_flat, (z.shape[0], self.n1, self.n2))

    def residual_and_adjoint(self, P, y):
        """Residual r = 𝒜(P) − y and S = 𝒜*(r) for a batch of products.

        Returns ``(r, S)`` with shapes (B, m) and (B, n1, n2).
        """
        r = self.apply(P) - y
        return r, self.adjoint(r)

    def as_matrix(self):
        """The dense (m, n1·n2) matrix of 𝒜 (already scaled by 1/√m)."""
        return self.A_flat
