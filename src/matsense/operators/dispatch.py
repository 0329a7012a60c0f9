"""Which kernel computes the residual and adjoint: one pass when it pays, else two GEMMs.

For a flat operator matrix ``A`` (m × d, rows already scaled) and a batch of
flattened products ``p`` (B × d), the iteration needs r = p Aᵀ − y (B × m)
and s = r A (B × d). Residual i depends on row i of A only, so a kernel can
read A **once** per iteration instead of twice (:mod:`.kernels`). This is
the memory-bound regime (small B): the floor is bytes(A) / memory bandwidth.
For large B the two products are GEMMs and compute bound, so
:func:`residual_and_adjoint_flat` falls back to them.

The environment variable ``MATSENSE_KERNEL`` picks the implementation:
``auto`` (default: numba if installed, else the NumPy loop), ``numba``,
``numpy`` (the blocked loop), ``two-pass`` (two BLAS calls, A read twice) or
``triton`` (torch on CUDA, one trajectory: the experimental one-pass GPU
kernel of :mod:`matsense.operators._triton`; NumPy problems ignore it).
``MATSENSE_THREADS=N`` fixes the NumPy loop's thread count (see
:func:`matsense.threads.kernel_threads`; sweep workers set it to 1).
"""

from __future__ import annotations

import os

import numpy as np

from ..threads import kernel_threads
from .blocking import block_rows_for
from .kernels.numba_kernel import fused_numba, numba_available
from .kernels.numpy_loop import fused_numpy
from .kernels.two_pass import two_pass

KERNELS = ("auto", "numba", "numpy", "two-pass", "triton")

# Beyond this many trajectories the two passes are GEMMs with arithmetic
# intensity ~B/4 flop/byte (float64): compute bound, so re-reading A is free.
FUSED_MAX_BATCH = 4


def selected_kernel() -> str:
    """The kernel named by ``MATSENSE_KERNEL`` (default 'auto'); ValueError for others."""
    kernel = os.environ.get("MATSENSE_KERNEL", "auto") or "auto"
    if kernel not in KERNELS:
        raise ValueError(f"MATSENSE_KERNEL must be one of {', '.join(KERNELS)}, got {kernel!r}")
    return kernel


def residual_and_adjoint_flat(A, p, y, block_rows: int | None = None):
    """(r, s) for a flat operator matrix: one pass when it pays, else two GEMMs.

    NumPy inputs with B <= ``FUSED_MAX_BATCH`` take one pass: the numba
    kernel when numba is installed and ``block_rows`` is None, else the
    blocked NumPy loop (``block_rows`` rows per block; default from the cache
    size). torch (CPU or CUDA) and large batches use the two matrix products.
    ``MATSENSE_KERNEL`` overrides the choice (see the module docstring).
    """
    kernel = selected_kernel()
    if kernel == "triton" and not isinstance(A, np.ndarray):
        from . import _triton  # looked up per call: tests replace _triton.fused_triton

        return _triton.fused_triton(A, p, y)
    if isinstance(A, np.ndarray) and p.shape[0] <= FUSED_MAX_BATCH and kernel != "two-pass":
        p = np.ascontiguousarray(p, dtype=A.dtype)
        y = np.ascontiguousarray(y, dtype=A.dtype)
        if (block_rows is None and kernel != "numpy" and A.flags.c_contiguous
                and numba_available()):
            return fused_numba(A, p, y)
        threads = kernel_threads(A.nbytes)
        if block_rows is None:
            block_rows = block_rows_for(A.shape[1], A.dtype.itemsize)
        return fused_numpy(A, p, y, block_rows, threads)
    return two_pass(A, p, y)
