"""One pass over A as a blocked loop of BLAS matrix–vector calls (NumPy only).

Residual i depends on row i of A only, so a loop over blocks of rows computes
block b's residuals and immediately adds that block's share ``r_b A_b`` to s
while A_b is still in the last-level cache: A is read from memory once.

Within a block every trajectory takes two BLAS matrix–vector calls, BLAS on
one thread. Operators of at least :data:`~matsense.threads.THREADED_MIN_BYTES`
are split into contiguous row ranges run by a small thread pool (NumPy
releases the GIL in BLAS), so the pass uses every core without BLAS's own
threads: a multi-threaded BLAS call is a barrier, and on a machine with any
other load each of the loop's hundreds of short calls can cost a scheduler
time slice (measured at n = 200: 1.77 s vs 84 ms per iteration), whereas pool
threads that find their core busy only wait their turn.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from ...threads import single_blas_thread


def _rows_pass(A, p, y, r, lo: int, hi: int, block_rows: int, rmap=None) -> np.ndarray:
    """Rows lo:hi of the one-pass loop: fill r[:, lo:hi], return this range's share of s.

    Within a block every trajectory takes two BLAS matrix–vector calls (the
    block is in cache for all of them): a GEMM with a few rows would copy
    ("pack") the block first and runs at about half the speed of B GEMVs.
    """
    B, d = p.shape
    s = np.zeros((B, d), dtype=A.dtype)
    part = np.empty(d, dtype=A.dtype)
    for b0 in range(lo, hi, block_rows):
        b1 = min(hi, b0 + block_rows)
        Ab = A[b0:b1]
        yb = y[b0:b1]
        for b in range(B):
            rb = r[b, b0:b1]
            np.matmul(Ab, p[b], out=rb)
            rb -= yb
            np.matmul(rb if rmap is None else rmap(rb), Ab, out=part)
            s[b] += part
    return s


def fused_numpy(
    A: np.ndarray, p: np.ndarray, y: np.ndarray, block_rows: int, threads: int = 1, rmap=None
):
    """r = p Aᵀ − y and s = r A (φ(r) A with a residual map) in one blocked pass over A (NumPy).

    Parameters
    ----------
    A : (m, d) C-contiguous array
    p : (B, d) array
    y : (m,) array
    block_rows : int
        Rows of A per block.
    threads : int
        Split the rows into this many contiguous ranges, one per thread of a
        shared pool (NumPy releases the GIL inside BLAS); their partial
        adjoints are summed in range order, so the result does not depend on
        which thread finishes first. BLAS runs single-threaded meanwhile.
    rmap : :class:`matsense.losses.ResidualMap` or None
        φ applied to each block's residuals before its share of s.

    Returns
    -------
    r : (B, m), s : (B, d)
    """
    m, d = A.shape
    B = p.shape[0]
    r = np.empty((B, m), dtype=A.dtype)
    threads = max(1, min(int(threads), m))
    with single_blas_thread():
        if threads == 1:
            return r, _rows_pass(A, p, y, r, 0, m, block_rows, rmap)
        cuts = np.linspace(0, m, threads + 1).astype(int)
        pool = _thread_pool(threads - 1)
        ranges = [
            (int(lo), int(hi), max(1, min(block_rows, int(hi - lo))))
            for lo, hi in zip(cuts[:-1], cuts[1:])
        ]
        # The calling thread takes the first range itself: one hand-off fewer.
        futures = [pool.submit(_rows_pass, A, p, y, r, *rng, rmap) for rng in ranges[1:]]
        s = _rows_pass(A, p, y, r, *ranges[0], rmap)
        for f in futures:
            s += f.result()
        return r, s


_pool = None
_pool_key = None
_pool_lock = threading.Lock()


def _thread_pool(threads: int):
    """A ThreadPoolExecutor shared by all calls (re-created after fork or to grow)."""
    global _pool, _pool_key
    from concurrent.futures import ThreadPoolExecutor

    with _pool_lock:
        if _pool is None or _pool_key[0] != os.getpid() or _pool_key[1] < threads:
            # A smaller pool is dropped, not shut down (another thread may still be
            # submitting to it); its idle threads exit once it is garbage-collected.
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="matsense-fused")
            _pool_key = (os.getpid(), threads)
        return _pool
