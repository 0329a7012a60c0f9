"""One pass over the measurement data: residual and adjoint together (CPU / NumPy).

For a flat operator matrix ``A`` (m × d, rows already scaled) and a batch of
flattened products ``p`` (B × d), the iteration needs

    r = p Aᵀ − y            (B × m)
    s = r A                  (B × d)

Residual i depends on row i of A only, so a loop over blocks of rows computes
block b's residuals and immediately adds that block's share ``r_b A_b`` to s
while A_b is still in cache: A is read from memory **once** per iteration
instead of twice. This is the memory-bound regime (small B): the floor is
bytes(A) / memory bandwidth. For large B the two products are GEMMs and
compute bound, so :func:`residual_and_adjoint_flat` falls back to them.

Two implementations of the pass, same result up to rounding:

* :func:`fused_numba` — a compiled kernel (optional dependency ``numba``):
  each thread takes a contiguous range of rows, and for every group of four
  rows computes their residuals and adds their share to a private partial
  𝒜*(r) while the rows are in L1/L2; one fork/join per call. Used when numba
  imports (``pip install numba``).
* :func:`fused_numpy` — the NumPy fallback: blocks of rows, two BLAS
  matrix–vector calls per block. Fast on a dedicated machine; but each
  multi-threaded BLAS call is a barrier, and with more runnable threads than
  cores every barrier can cost a scheduler time slice, so on an oversubscribed
  machine run with ``OPENBLAS_NUM_THREADS=1`` or choose another kernel.

The environment variable ``MATSENSE_KERNEL`` picks the implementation:
``auto`` (default: numba if installed; else the NumPy loop for operators
below ``backend.SMALL_OPERATOR_BYTES`` — which :func:`matsense.run` runs with
one BLAS thread — and two BLAS calls above it), ``numba``,
``numpy`` (the blocked loop) or ``two-pass`` (two BLAS calls, A read twice).

Block size (NumPy fallback): big enough that the two BLAS calls per block
amortize their fixed cost (a few µs), small enough that a block stays in the
last-level cache between the two calls. The default is a quarter of the L3
size read from sysfs, clamped to 1–8 MiB, see :func:`default_block_bytes`.
"""

from __future__ import annotations

import functools
import os
import threading

import numpy as np

from ..backend import SMALL_OPERATOR_BYTES

KERNELS = ("auto", "numba", "numpy", "two-pass")

# Beyond this many trajectories the two passes are GEMMs with arithmetic
# intensity ~B/4 flop/byte (float64): compute bound, so re-reading A is free.
FUSED_MAX_BATCH = 4

_FALLBACK_L3 = 8 * 2**20


def _parse_size(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * mult


@functools.lru_cache(maxsize=1)
def last_level_cache_bytes() -> int:
    """Size of the largest CPU cache (Linux sysfs); 8 MiB when it cannot be read."""
    best = 0
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(base):
            try:
                with open(os.path.join(base, entry, "size")) as fh:
                    best = max(best, _parse_size(fh.read()))
            except (OSError, ValueError):
                continue
    except OSError:
        pass
    return best or _FALLBACK_L3


def default_block_bytes() -> int:
    """Bytes of A per block: L3/4, clamped to [1 MiB, 8 MiB]."""
    return int(min(max(last_level_cache_bytes() // 4, 2**20), 8 * 2**20))


def block_rows_for(d: int, itemsize: int, block_bytes: int | None = None) -> int:
    """Rows of an (m × d) matrix per block."""
    block_bytes = default_block_bytes() if block_bytes is None else block_bytes
    return max(1, int(block_bytes) // (d * itemsize))


def fused_numpy(A: np.ndarray, p: np.ndarray, y: np.ndarray, block_rows: int):
    """r = p Aᵀ − y and s = r A in one blocked pass over the rows of A (NumPy).

    Parameters
    ----------
    A : (m, d) C-contiguous array
    p : (B, d) array
    y : (m,) array
    block_rows : int
        Rows of A per block.

    Returns
    -------
    r : (B, m), s : (B, d)
    """
    m, d = A.shape
    B = p.shape[0]
    r = np.empty((B, m), dtype=A.dtype)
    s = np.zeros((B, d), dtype=A.dtype)
    part = np.empty((B, d), dtype=A.dtype)
    if B == 1:
        # Matrix-vector products: keep 1-d operands so NumPy calls gemv.
        p1, r1, s1, part1 = p[0], r[0], s[0], part[0]
        for lo in range(0, m, block_rows):
            Ab = A[lo:lo + block_rows]
            rb = r1[lo:lo + block_rows]
            np.matmul(Ab, p1, out=rb)
            rb -= y[lo:lo + block_rows]
            np.matmul(rb, Ab, out=part1)
            s1 += part1
        return r, s
    for lo in range(0, m, block_rows):
        Ab = A[lo:lo + block_rows]
        rb = np.matmul(p, Ab.T)
        rb -= y[lo:lo + block_rows]
        r[:, lo:lo + block_rows] = rb
        np.matmul(rb, Ab, out=part)
        s += part
    return r, s


# ------------------------------------------------------------------ numba
_numba_lock = threading.Lock()
_numba_pid = None  # the process that first used the kernel (see numba_available)


@functools.lru_cache(maxsize=1)
def _numba_kernel():
    """Compile-on-first-use numba kernel, or None when numba is not installed."""
    try:
        from numba import njit, prange
    except ImportError:
        return None

    # 'reassoc'/'contract' let LLVM vectorize the dot products with FMAs; no
    # 'nnan'/'ninf', so NaN and inf propagate as in NumPy (divergence detection).
    @njit(parallel=True, fastmath={"reassoc", "contract"}, cache=True, nogil=True)
    def kernel(A, p, y, r, parts):  # pragma: no cover - compiled
        m, d = A.shape
        B = p.shape[0]
        T = parts.shape[0]
        chunk = (m + T - 1) // T
        for t in prange(T):
            S = parts[t]
            S[:, :] = 0.0
            i = t * chunk
            hi = min(m, i + chunk)
            while i + 4 <= hi:
                for b in range(B):
                    a0 = 0.0
                    a1 = 0.0
                    a2 = 0.0
                    a3 = 0.0
                    for j in range(d):
                        pj = p[b, j]
                        a0 += A[i, j] * pj
                        a1 += A[i + 1, j] * pj
                        a2 += A[i + 2, j] * pj
                        a3 += A[i + 3, j] * pj
                    r0 = a0 - y[i]
                    r1 = a1 - y[i + 1]
                    r2 = a2 - y[i + 2]
                    r3 = a3 - y[i + 3]
                    r[b, i] = r0
                    r[b, i + 1] = r1
                    r[b, i + 2] = r2
                    r[b, i + 3] = r3
                    for j in range(d):
                        S[b, j] += r0 * A[i, j] + r1 * A[i + 1, j] + r2 * A[i + 2, j] + r3 * A[i + 3, j]
                i += 4
            while i < hi:
                for b in range(B):
                    acc = 0.0
                    for j in range(d):
                        acc += A[i, j] * p[b, j]
                    ri = acc - y[i]
                    r[b, i] = ri
                    for j in range(d):
                        S[b, j] += ri * A[i, j]
                i += 1

    return kernel


def numba_available() -> bool:
    """True when the numba kernel can be used here.

    False if numba is not installed, or in a process forked from one that
    already ran the kernel (numba's default thread pool does not survive
    ``fork``; such children use the NumPy loop).
    """
    global _numba_pid
    if _numba_kernel() is None:
        return False
    if _numba_pid is None:
        _numba_pid = os.getpid()
    return _numba_pid == os.getpid()


def fused_numba(A: np.ndarray, p: np.ndarray, y: np.ndarray):
    """r = p Aᵀ − y and s = r A in one pass, compiled with numba (all threads).

    Same arguments and results as :func:`fused_numpy` (no block size: each
    thread streams its rows four at a time). Calls are serialized by a lock
    because numba's default thread pool must not be entered from two Python
    threads at once. Raises ``RuntimeError`` if numba is not installed.
    """
    kernel = _numba_kernel()
    if kernel is None:
        raise RuntimeError("fused_numba needs numba (pip install numba)")
    from numba import get_num_threads

    m, d = A.shape
    B = p.shape[0]
    r = np.empty((B, m), dtype=A.dtype)
    with _numba_lock:
        parts = np.empty((get_num_threads(), B, d), dtype=A.dtype)
        kernel(A, p, y, r, parts)
    return r, parts.sum(axis=0)


def two_pass(A, p, y):
    """The textbook r = p Aᵀ − y, s = r A (any array-API backend): two reads of A."""
    r = p @ A.mT - y
    return r, r @ A


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
    if isinstance(A, np.ndarray) and p.shape[0] <= FUSED_MAX_BATCH and kernel != "two-pass":
        p = np.ascontiguousarray(p, dtype=A.dtype)
        y = np.ascontiguousarray(y, dtype=A.dtype)
        if (block_rows is None and kernel != "numpy" and A.flags.c_contiguous
                and numba_available()):
            return fused_numba(A, p, y)
        if block_rows is None and kernel == "auto" and A.nbytes >= SMALL_OPERATOR_BYTES:
            # Large A, multi-threaded BLAS: the blocked loop's hundreds of short
            # BLAS calls are each a thread barrier, and with any other load on
            # the machine they cost 20-60x (measured at n=200: 1.77 s vs 84 ms
            # per iteration). Two long calls are robust; MATSENSE_KERNEL=numpy
            # opts into the loop on a dedicated machine.
            return two_pass(A, p, y)
        if block_rows is None:
            block_rows = block_rows_for(A.shape[1], A.dtype.itemsize)
        return fused_numpy(A, p, y, block_rows)
    return two_pass(A, p, y)
