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
kernel of :mod:`matsense.operators._triton`). A kernel that cannot run on
the arrays at hand (``triton`` on NumPy, ``numba`` on torch, ``numba`` in a
forked child, ...) says so once per process (:class:`KernelWarning`) and names
what runs instead. ``MATSENSE_THREADS=N`` fixes the thread count of both
one-pass kernels (see :func:`matsense.threads.threads_setting`; sweep workers
set it to 1); a bad value is the same one-line ``ValueError`` whichever
kernel would run.
"""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np

from ..threads import kernel_threads, threads_setting
from .blocking import block_rows_for
from .kernels import numba_kernel
from .kernels.numpy_loop import fused_numpy
from .kernels.two_pass import two_pass

KERNELS = ("auto", "numba", "numpy", "two-pass", "triton")

# Beyond this many trajectories the two passes are GEMMs with arithmetic
# intensity ~B/4 flop/byte (float64): compute bound, so re-reading A is free.
FUSED_MAX_BATCH = 4


class KernelWarning(UserWarning):
    """A requested kernel does not apply here; the message names what runs instead."""


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(message: str) -> None:
    """warnings.warn(message) the first time this process meets this message."""
    with _warned_lock:
        if message in _warned:
            return
        _warned.add(message)
    warnings.warn(message, KernelWarning, stacklevel=3)


def selected_kernel() -> str:
    """The kernel named by ``MATSENSE_KERNEL`` (default 'auto'); ValueError for others."""
    kernel = os.environ.get("MATSENSE_KERNEL", "auto") or "auto"
    if kernel not in KERNELS:
        raise ValueError(f"MATSENSE_KERNEL must be one of {', '.join(KERNELS)}, got {kernel!r}")
    return kernel


def _torch_pass(kernel: str, A, p, y):
    """torch tensors: two matmuls, or the Triton kernel when it is asked for and can run."""
    if kernel == "triton":
        from . import _triton  # looked up per call: tests replace _triton.fused_triton

        try:
            _triton.check_usable(A, p)
        except ValueError as exc:
            _warn_once(f"{exc}; using two-pass (two matrix products) instead")
        else:
            return _triton.fused_triton(A, p, y)
    elif kernel in ("numba", "numpy"):
        _warn_once(f"MATSENSE_KERNEL={kernel} runs NumPy arrays only; using two-pass (two matrix "
                   f"products) for torch tensors instead")
    return two_pass(A, p, y)


def residual_and_adjoint_flat(A, p, y, block_rows: int | None = None):
    """(r, s) for a flat operator matrix: one pass when it pays, else two GEMMs.

    NumPy inputs with B <= ``FUSED_MAX_BATCH`` take one pass: the numba
    kernel when numba is installed and ``block_rows`` is None, else the
    blocked NumPy loop (``block_rows`` rows per block; default from the cache
    size). torch (CPU or CUDA) and large batches use the two matrix products.
    ``MATSENSE_KERNEL`` overrides the choice (see the module docstring); a
    kernel that does not apply here says so once (:class:`KernelWarning`) and
    names what runs instead.
    """
    kernel = selected_kernel()
    threads = threads_setting()  # validated whichever kernel runs
    if not isinstance(A, np.ndarray):
        return _torch_pass(kernel, A, p, y)
    if kernel == "triton":
        _warn_once("MATSENSE_KERNEL=triton runs torch tensors on CUDA only; NumPy arrays use "
                   "the automatic choice (MATSENSE_KERNEL=auto) instead")
        kernel = "auto"
    if p.shape[0] > FUSED_MAX_BATCH or kernel == "two-pass":
        return two_pass(A, p, y)
    p = np.ascontiguousarray(p, dtype=A.dtype)
    y = np.ascontiguousarray(y, dtype=A.dtype)
    if kernel == "numba" or (kernel == "auto" and block_rows is None):
        why_not = numba_kernel.unavailable_reason(A)
        if why_not is None:
            return numba_kernel.fused_numba(A, p, y, threads)
        if kernel == "numba":
            _warn_once(f"MATSENSE_KERNEL=numba: {why_not}; using the NumPy one-pass loop instead")
    if block_rows is None:
        block_rows = block_rows_for(A.shape[1], A.dtype.itemsize)
    return fused_numpy(A, p, y, block_rows, kernel_threads(A.nbytes))
