"""One pass over A compiled with numba: each thread streams its own rows four at a time.

Each thread takes a contiguous range of rows, and for every group of four rows
computes their residuals and adds their share to a private partial 𝒜*(r)
while the rows are in L1/L2; one fork/join per call. The partial sums are
added in thread order afterwards.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from ...threads import numba_module, numba_usable

_numba_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _numba_kernel():
    """Compile-on-first-use numba kernel, or None when numba is not installed."""
    numba = numba_module()
    if numba is None:
        return None
    njit, prange = numba.njit, numba.prange

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
    return _numba_kernel() is not None and numba_usable()


def unavailable_reason(A) -> str | None:
    """Why :func:`fused_numba` cannot run on ``A`` in this process, or None when it can."""
    if _numba_kernel() is None:
        return "numba cannot be imported"
    if not numba_usable():
        return ("numba's thread pool does not survive fork and this process was forked from "
                "one that used it")
    if not A.flags.c_contiguous:
        return "the operator matrix is not C-contiguous"
    return None


def fused_numba(A: np.ndarray, p: np.ndarray, y: np.ndarray, threads: int | None = None):
    """r = p Aᵀ − y and s = r A in one pass, compiled with numba.

    Same arguments and results as :func:`~.numpy_loop.fused_numpy` (no block
    size: each thread streams its rows four at a time). ``threads`` caps the
    thread count for this call (at most numba's ``NUMBA_NUM_THREADS``); None
    keeps numba's current count. The partial sums, one per thread, are added
    in thread order, so a fixed thread count gives a fixed result. Calls are
    serialized by a lock because numba's default thread pool must not be
    entered from two Python threads at once. Raises ``RuntimeError`` if numba
    is not installed.
    """
    kernel = _numba_kernel()
    if kernel is None:
        raise RuntimeError("fused_numba needs numba (pip install numba)")
    numba = numba_module()
    m, d = A.shape
    B = p.shape[0]
    r = np.empty((B, m), dtype=A.dtype)
    with _numba_lock:
        saved = numba.get_num_threads()
        count = saved if threads is None else max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
        if count != saved:
            numba.set_num_threads(count)
        try:
            parts = np.empty((count, B, d), dtype=A.dtype)
            kernel(A, p, y, r, parts)
        finally:
            if count != saved:
                numba.set_num_threads(saved)
    return r, parts.sum(axis=0)
