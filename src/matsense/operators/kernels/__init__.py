"""The CPU implementations of one residual-and-adjoint pass, one module each.

For a flat operator matrix ``A`` (m × d, rows already scaled) and a batch of
flattened products ``p`` (B × d), the iteration needs

    r = p Aᵀ − y            (B × m)
    s = r A                  (B × d)

* :func:`~.numba_kernel.fused_numba` — compiled one-pass kernel (numba);
* :func:`~.numpy_loop.fused_numpy` — one pass as a blocked loop of BLAS
  matrix–vector calls;
* :func:`~.two_pass.two_pass` — the two matrix products (A read twice; the
  batched GEMM path for large B, and the only path for torch).

Which one runs is decided in :mod:`matsense.operators.dispatch`.
"""

from .numba_kernel import fused_numba, numba_available
from .numpy_loop import fused_numpy
from .two_pass import two_pass

__all__ = ["fused_numba", "fused_numpy", "two_pass", "numba_available"]
