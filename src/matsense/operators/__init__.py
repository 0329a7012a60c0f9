"""Sensing operators 𝒜: R^{n1×n2} → R^m (docs/conventions.md).

* :class:`DenseOperator` — explicit Gaussian measurement matrices, (m, n1·n2).
* :class:`SymmetricOperator` — their symmetric parts packed as upper
  triangles, (m, n(n+1)/2): half the bytes for symmetric problems.
* :class:`RankOneOperator` — rank-one measurements a_i b_iᵀ, two m × n matrices.
* :class:`EntryOperator` — matrix completion: observed entries as indices.

:class:`MatrixOperator` (an abstract base class) is the contract; its core call
``residual_and_grads(F, G, y)`` returns r = 𝒜(F Gᵀ) − y, S G and Sᵀ F.

Both return the residual and 𝒜*(residual) from one call, in one pass over the
measurement data on the CPU where that is fastest: :mod:`matsense.operators.dispatch`
picks a kernel of :mod:`matsense.operators.kernels`, timed by the planner
(:mod:`matsense.operators.planner`); ``planned_kernel(operator, B)`` names it.
``single_threaded()`` (from :mod:`matsense.threads`) runs the pass (and NumPy's BLAS)
on one thread with a fixed kernel, so results do not depend on the machine.

Each ensemble's record (:class:`matsense.ensemble.Ensemble`) lives with its
operator; :data:`BUILTIN_ENSEMBLES` lists them in order for :mod:`matsense.ensembles`.
"""

from ..threads import single_threaded
from .base import DENSE_LIMIT, FlatMatrixOperator, MatrixOperator
from .completion import EntryOperator
from .completion_ensemble import COMPLETION
from .dense import GAUSSIAN, DenseOperator
from .dispatch import KernelWarning, planned_kernel
from .planner import clear_plans
from .rank_one import RANK_ONE, RankOneOperator
from .symmetric import SYMMETRIC_GAUSSIAN, SymmetricOperator

#: The built-in ensembles' records, in order (the first is the default ensemble).
BUILTIN_ENSEMBLES = (GAUSSIAN, SYMMETRIC_GAUSSIAN, RANK_ONE, COMPLETION)

__all__ = [
    "MatrixOperator",
    "FlatMatrixOperator",
    "DenseOperator",
    "SymmetricOperator",
    "RankOneOperator",
    "EntryOperator",
    "DENSE_LIMIT",
    "single_threaded",
    "planned_kernel",
    "clear_plans",
    "KernelWarning",
    "BUILTIN_ENSEMBLES",
]
