"""Sensing operators 𝒜: R^{n1×n2} → R^m (PAPER.md §2).

* :class:`DenseOperator` — explicit Gaussian measurement matrices, (m, n1·n2).
* :class:`SymmetricOperator` — their symmetric parts packed as upper
  triangles, (m, n(n+1)/2): half the bytes for symmetric problems.

Both return the residual and 𝒜*(residual) from one call, in one pass over the
measurement data on the CPU (:mod:`matsense.operators.dispatch` picks the kernel of
:mod:`matsense.operators.kernels`). ``single_threaded()`` (from :mod:`matsense.threads`)
runs that pass (and NumPy's BLAS) on one thread, so results do not depend on the core
count.
"""

from ..threads import single_threaded
from .base import MatrixOperator
from .dense import DenseOperator
from .symmetric import SymmetricOperator

__all__ = ["MatrixOperator", "DenseOperator", "SymmetricOperator", "single_threaded"]
