"""Dense Gaussian-ensemble sensing operator.

Convention (docs/conventions.md): 𝒜(M)_i = <A_i, M> / √m and 𝒜*(z) = Σ_i z_i A_i / √m.
The operator stores the m measurement matrices once, flattened and already
divided by √m, as an ``(m, n1·n2)`` matrix ``A_flat``. All calls take a leading
batch axis: products ``P`` of shape ``(B, n1, n2)``, vectors ``z`` of shape
``(B, m)``. :meth:`residual_and_adjoint` reads ``A_flat`` once per call on
NumPy (see :mod:`matsense.operators.kernels`).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from .base import FlatMatrixOperator


class DenseOperator(FlatMatrixOperator):
    """𝒜 given by explicit measurement matrices ``A`` of shape ``(m, n1, n2)``.

    Parameters
    ----------
    A : array, shape (m, n1, n2)
        Raw measurement matrices (entries N(0, 1) for the Gaussian ensemble).
        They are scaled by 1/√m here, once, into a new array (``A`` is not
        modified; see :meth:`from_raw_inplace` to avoid the copy).
    """

    def __init__(self, A):
        xp = backend.namespace(A)
        m, n1, n2 = A.shape
        super().__init__(xp.reshape(A, (m, n1 * n2)) / math.sqrt(m), n1, n2)

    @classmethod
    def from_raw_inplace(cls, A: np.ndarray) -> "DenseOperator":
        """Scale a NumPy ``A`` (m, n1, n2) by 1/√m **in place** and wrap it, without a copy.

        For builders that own ``A`` (e.g. :meth:`Problem.gaussian`): peak
        memory stays at one copy of the measurement data. Bitwise equal to
        ``DenseOperator(A)``.
        """
        m, n1, n2 = A.shape
        A = np.ascontiguousarray(A)
        np.divide(A, math.sqrt(m), out=A)
        op = cls.__new__(cls)
        FlatMatrixOperator.__init__(op, A.reshape(m, n1 * n2), n1, n2)
        return op

    def pack(self, P):
        xp = backend.namespace(P)
        return xp.reshape(P, (P.shape[0], self.n1 * self.n2))

    def unpack(self, s):
        xp = backend.namespace(s)
        return xp.reshape(s, (s.shape[0], self.n1, self.n2))

    def as_matrix(self):
        """The dense (m, n1·n2) matrix of 𝒜 (already scaled by 1/√m)."""
        return self.A_flat
