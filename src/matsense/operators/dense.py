"""Dense Gaussian-ensemble sensing operator.

Convention (docs/conventions.md): 𝒜(M)_i = <A_i, M> / √m and 𝒜*(z) = Σ_i z_i A_i / √m.
The operator stores the m measurement matrices once, flattened and already
divided by √m, as an ``(m, n1·n2)`` matrix ``A_flat``. All calls take a leading
batch axis: products ``P`` of shape ``(B, n1, n2)``, vectors ``z`` of shape
``(B, m)``. :meth:`residual_and_adjoint` reads ``A_flat`` once per call on
NumPy (see :mod:`matsense.operators.kernels`).

:data:`GAUSSIAN` is the ensemble's record (:mod:`matsense.ensembles`): i.i.d.
N(0, 1) measurement matrices, drawn by :func:`generate`.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..ensemble import Ensemble
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
    def from_raw_inplace(cls, A: np.ndarray) -> DenseOperator:
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

    def packs_symmetric(self) -> bool:
        return True

    def symmetric_packed(self) -> FlatMatrixOperator:
        """The packed symmetric part (:meth:`SymmetricOperator.from_dense`); n1 = n2 only."""
        from .symmetric import SymmetricOperator

        return SymmetricOperator.from_dense(self)


def generate(
    n1: int,
    n2: int | None = None,
    *,
    r: int,
    m: int,
    kappa: float = 1.0,
    singular_values=None,
    spacing: str = "geometric",
    symmetric: bool = False,
    noise: float = 0.0,
    seed: int = 0,
    max_memory=None,
    packed: bool = False,
    name: str = "gaussian",
):
    """The seeded dense Gaussian problem (:meth:`matsense.Problem.gaussian` documents it);
    ``packed``: the measurement matrices' symmetric parts, stored packed (the ensemble
    ``name`` = 'symmetric-gaussian')."""
    from .. import _validate as V
    from .. import ensembles
    from ..problems import Problem, check_memory, common_arguments, draw_truth

    n1, n2, r, sigma, noise, seed = common_arguments(
        n1, n2, r, kappa, singular_values, spacing, symmetric, noise, seed, max_memory
    )
    symmetric = bool(symmetric)  # validated: a bool or a NumPy bool
    m = V.int_in_range("m", m, 1)
    if packed and n1 != n2:
        raise ValueError(f"symmetric measurement matrices need n1 == n2, got n1={n1}, n2={n2}")
    check_memory(
        f"the measurement matrices A (m={m} × {n1} × {n2} float64)",
        ensembles.get(name).memory(n1, n2, 0, m),
        max_memory,
    )
    rng = np.random.default_rng(seed)
    truth = draw_truth(rng, n1, n2, r, sigma, symmetric)
    # Scaled in place: no second copy of the m·n1·n2 measurement data.
    dense = DenseOperator.from_raw_inplace(rng.standard_normal((m, n1, n2)))
    op = dense.symmetric_packed() if packed else dense
    return Problem.observe(
        op, rng, truth, noise, symmetric, dict(ensemble=name, n1=n1, n2=n2, r=r, m=m, seed=seed)
    )


def dense_bytes(n1: int, n2: int, m: int, *, symmetric: bool = False) -> int:
    """Bytes of the m dense n1 × n2 measurement matrices (float64)."""
    return 8 * m * n1 * n2


def _from_arrays(*args, **kwargs):
    from ..problems import Problem

    return Problem.from_arrays(*args, **kwargs)


#: The dense Gaussian ensemble: A_i with i.i.d. N(0, 1) entries, stored as (m, n1·n2).
GAUSSIAN = Ensemble(
    "gaussian",
    generate,
    from_data=_from_arrays,
    data_bytes=dense_bytes,
    help="dense Gaussian measurement matrices (the paper's; m·n1·n2 numbers)",
)
