"""Which kernel computes the residual and adjoint for a call.

For a flat operator matrix ``A`` (m × d, rows already scaled) and a batch of
flattened products ``p`` (B × d), the iteration needs r = p Aᵀ − y (B × m)
and s = r A (B × d). Residual i depends on row i of A only, so a kernel can
read A **once** per iteration instead of twice (:mod:`.kernels`): the
memory-bound regime of small B, whose floor is bytes(A) / memory bandwidth.
For large B the two products are GEMMs and compute bound.

NumPy arrays, ``MATSENSE_KERNEL=auto`` (the default):

* normally the **planner** (:mod:`.planner`) times the candidates — the
  numba one-pass kernel (the NumPy one-pass loop where numba cannot run)
  and the two BLAS products —
  on the first call of each configuration (shape, dtype, B, threads) and
  keeps the fastest;
* inside :func:`matsense.threads.single_threaded` (sweeps, ``reproduce``) the
  kernel is fixed so results are bitwise the same on every machine: numba on
  one thread for B ≤ :data:`FUSED_MAX_BATCH` (16), the two GEMMs beyond (the NumPy
  loop replaces numba when numba cannot be imported, with a warning);
* a ``block_rows`` set on the operator asks for the NumPy loop.

``MATSENSE_KERNEL=numba | numpy | two-pass`` forces that kernel for every
batch size; ``triton`` is the experimental one-pass GPU kernel of
:mod:`matsense.operators._triton` (torch on CUDA, one trajectory). torch
tensors otherwise use two matrix products. A kernel that cannot run on the
arrays at hand (``triton`` on NumPy, ``numba`` on torch, ``numba`` in a
forked child, ...) says so once per process (:class:`KernelWarning`) and
names what runs instead. ``MATSENSE_THREADS=N`` fixes the thread count of
both one-pass kernels (see :func:`matsense.threads.threads_setting`; sweep
workers set it to 1); a bad value is the same one-line ``ValueError``
whichever kernel would run. :func:`planned_kernel` says which kernel an
operator uses.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

from ..threads import (
    env_value,
    is_single_threaded,
    kernel_threads,
    numba_import_error,
    numba_threads,
    threads_setting,
)
from . import planner
from .blocking import block_rows_for
from .kernels import numba_kernel
from .kernels.numpy_loop import fused_numpy
from .kernels.two_pass import two_pass

KERNELS = ("auto", "numba", "numpy", "two-pass", "triton")

# The fixed choice of bitwise mode runs the one-pass kernel up to this many trajectories
# and the two GEMMs beyond (the planner measures instead). numba's register tiles on one
# thread beat OpenBLAS's GEMMs on one thread up to B = 32 on the 2-core VM (B = 16: 46 vs
# 80 ms at m = 2500, d = 10⁴; 1.7 vs 1.9 ms at 900 × 900; B = 64: 211 vs 167 ms), and
# compute each trajectory exactly as alone, so run_together stacks up to this many.
FUSED_MAX_BATCH = 16
# The NumPy one-pass loop (numba absent) runs B matrix-vector products per block: the
# GEMMs overtake it sooner.
LOOP_MAX_BATCH = 4


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
    kernel = env_value("MATSENSE_KERNEL") or "auto"
    if kernel not in KERNELS:
        raise ValueError(f"MATSENSE_KERNEL must be one of {', '.join(KERNELS)}, got {kernel!r}")
    return kernel


def _torch_pass(kernel: str, A, p, y, rmap=None):
    """torch tensors: two matmuls, or the Triton kernel when it is asked for and can run."""
    if rmap is not None:  # the Triton kernel has no residual map
        if kernel == "triton":
            _warn_once(
                "MATSENSE_KERNEL=triton has no residual map (robust losses); using "
                "two-pass (two matrix products) for them instead"
            )
        return two_pass(A, p, y, rmap)
    if kernel == "triton":
        from . import _triton  # looked up per call: tests replace _triton.fused_triton

        try:
            _triton.check_usable(A, p)
        except ValueError as exc:
            _warn_once(f"{exc}; using two-pass (two matrix products) instead")
        else:
            return _triton.fused_triton(A, p, y)
    elif kernel in ("numba", "numpy"):
        _warn_once(
            f"MATSENSE_KERNEL={kernel} runs NumPy arrays only; using two-pass (two matrix "
            f"products) for torch tensors instead"
        )
    return two_pass(A, p, y)


def _numba_or_loop(A, warn: bool) -> str:
    """'numba' when the compiled kernel can run on ``A`` here, else 'numpy' (the loop).

    numba is a dependency, so failing to import it is worth a warning (once); a
    process forked from a numba user uses the loop silently (documented).
    """
    why_not = numba_kernel.unavailable_reason(A)
    if why_not is None:
        return "numba"
    error = numba_import_error()
    if warn and error is not None:
        _warn_once(
            f"numba cannot be imported ({error}); using the NumPy one-pass loop instead "
            f"of the compiled kernel (pip install numba)"
        )
    return "numpy"


def _decide(A, B: int, block_rows, kernel: str, threads, warn: bool = True, rmap=None):
    """The kernel name for this call, or the :class:`~.planner.Plan` that will choose it."""
    if kernel == "triton":
        if warn:
            _warn_once(
                "MATSENSE_KERNEL=triton runs torch tensors on CUDA only; NumPy arrays use "
                "the automatic choice (MATSENSE_KERNEL=auto) instead"
            )
        kernel = "auto"
    if kernel == "numba":
        why_not = numba_kernel.unavailable_reason(A)
        if why_not is not None and warn:
            _warn_once(f"MATSENSE_KERNEL=numba: {why_not}; using the NumPy one-pass loop instead")
        return "numpy" if why_not else "numba"
    if kernel != "auto":
        return kernel
    if block_rows is not None:  # a block size set on the operator asks for the NumPy loop
        return "numpy"
    one_pass = _numba_or_loop(A, warn)
    if is_single_threaded():
        # Bitwise mode: a fixed kernel, never one picked by timing.
        cap = FUSED_MAX_BATCH if one_pass == "numba" else LOOP_MAX_BATCH
        return one_pass if B <= cap else "two-pass"
    # The NumPy loop races only where numba cannot run: next to numba it never won on the
    # quiet 2-core VM of benchmarks/bench_kernels.py, and every candidate makes planning
    # dearer (planning must stay under 2 % of a 1000-iteration run).
    candidates = [one_pass, "two-pass"]
    key: tuple = (A.shape, A.dtype.str, B, threads)
    if rmap is not None:  # a mapped pass is planned on its own
        key += (rmap.kind,)
    return planner.plan_for(key, candidates) if warn else planner.lookup(key)


def _run(name: str, A, p, y, block_rows, rmap=None):
    """Kernel ``name`` on NumPy arrays (p, y of A's dtype, C-contiguous)."""
    if name == "numba":
        if rmap is not None:
            return numba_kernel.fused_numba(A, p, y, numba_threads(A.nbytes), rmap)
        return numba_kernel.fused_numba(A, p, y, numba_threads(A.nbytes))
    if name == "numpy":
        if block_rows is None:
            block_rows = block_rows_for(A.shape[1], A.dtype.itemsize)
        if rmap is not None:
            return fused_numpy(A, p, y, block_rows, kernel_threads(A.nbytes), rmap)
        return fused_numpy(A, p, y, block_rows, kernel_threads(A.nbytes))
    return two_pass(A, p, y, rmap)


def _candidate_failed(name: str, error: BaseException) -> None:
    _warn_once(
        f"kernel {name!r} failed while the planner timed it ({type(error).__name__}: "
        f"{error}); it is not used for this configuration"
    )


def residual_and_adjoint_flat(A, p, y, block_rows: int | None = None, rmap=None):
    """(r, s) = (p Aᵀ − y, r A) for a flat operator matrix, by the kernel that suits.

    With a residual map φ (``rmap``, :class:`matsense.losses.ResidualMap`, for
    the robust losses) s = φ(r) A, by the same kernels (the numba one runs its
    mapped tiles); ``rmap=None`` is the plain ℓ2 code.

    NumPy arrays: ``MATSENSE_KERNEL`` (numba, numpy, two-pass) forces a kernel
    for every batch size; with the default ``auto`` the planner
    (:mod:`.planner`) times the candidates on the first call of each
    configuration and keeps the fastest — except inside
    :func:`~matsense.threads.single_threaded`, where the kernel is fixed:
    numba on one thread for B ≤ ``FUSED_MAX_BATCH`` (the NumPy loop for
    B ≤ ``LOOP_MAX_BATCH`` when numba cannot be imported), the two GEMMs beyond. A ``block_rows`` set on
    the operator asks for the NumPy loop with that block size. torch tensors
    use two matrix products (or the Triton kernel when asked for). A kernel
    that does not apply says so once (:class:`KernelWarning`).
    """
    kernel = selected_kernel()
    threads = threads_setting()  # validated whichever kernel runs
    if not isinstance(A, np.ndarray):
        return _torch_pass(kernel, A, p, y, rmap)
    p_in, y_in = p, y
    p = np.ascontiguousarray(p, dtype=A.dtype)
    y = np.ascontiguousarray(y, dtype=A.dtype)

    def run(name):
        if name == "two-pass":  # the GEMMs on the caller's arrays, as they always were
            return two_pass(A, p_in, y_in, rmap)
        return _run(name, A, p, y, block_rows, rmap)

    decision = _decide(A, p.shape[0], block_rows, kernel, threads, rmap=rmap)
    if isinstance(decision, str):
        return run(decision)
    return planner.run_planned(decision, run, _candidate_failed)


def planned_kernel(operator, B: int = 1) -> str | None:
    """The kernel ``operator.residual_and_adjoint`` uses for a batch of ``B``, by name.

    One of 'numba', 'numpy' (the NumPy one-pass loop), 'two-pass' (two matrix
    products; the batched GEMM path) or 'triton'; None when the planner has
    not seen this configuration yet (it plans on the first call). It
    follows the same rules as the call itself: ``MATSENSE_KERNEL``,
    :func:`~matsense.threads.single_threaded`, the planner's choice. Warns
    about nothing and runs no kernel.
    """
    A = operator.A_flat
    kernel = selected_kernel()
    threads = threads_setting()
    if not isinstance(A, np.ndarray):
        if kernel == "triton":
            from . import _triton

            try:
                _triton.check_usable(A, np.empty((B, 0)))
            except ValueError:
                return "two-pass"
            return "triton"
        return "two-pass"
    decision = _decide(A, int(B), operator.block_rows, kernel, threads, warn=False)
    if decision is None or isinstance(decision, str):
        return decision
    return decision.choice
