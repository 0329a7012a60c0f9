"""One pass over A compiled with numba: r = p Aᵀ − y and s = r A, each thread on its own rows.

Threads. Each thread takes a contiguous range of ``ceil(m / T)`` rows and, for
every tile of rows, computes their residuals and adds their share to a private
partial ``s`` while the rows are in L1/L2; one fork/join per call. The
partials are added in thread order afterwards, so a fixed thread count gives a
fixed result.

float64 (C-contiguous A): register tiles with explicit SIMD lanes. A tile is R
rows of A × W trajectories (rows of p): R·W dot products share each load of
A and of p, then the R residuals of each trajectory are added into its row of
``s`` in one pass over the tile's rows. The tile plan (:func:`tile_plan`):

* B ≤ 2: R = 8, one chunk of all B trajectories;
* B > 2: R = 5, B split into ⌈B/4⌉ chunks of near-equal width ≤ 4
  (e.g. 10 → 4, 3, 3);
* the rows a thread has left over (fewer than R) run as 1 row × 1
  trajectory tiles.

Why a trajectory's numbers do not depend on the batch. Every operation is an
IEEE add/subtract or an ``fma`` with one rounding, and none uses fast-math,
so the compiler cannot reorder them. The dot product of row i with ``p[b]``
is eight fma chains on an ``<8 x double>`` vector (lane l takes the columns
j ≡ l mod 8, j increasing), summed as ``((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7))``,
then a scalar fma chain over the last ``d mod 8`` columns, then ``− y[i]``;
``s[b, j]`` is an fma chain over the thread's rows in increasing order. None of
this involves R, W, B, the position of b in the batch or the other
trajectories, so ``r[b]`` and ``s[b]`` are bitwise the same whether a
trajectory runs alone or stacked with any others, at a given thread count
(which fixes the row ranges and the summation of the partials). The vector type
and its operations are in :mod:`._simd`; the tiles and one parallel driver per
tile plan are generated into :mod:`._numba_tiles` by :mod:`._gen_tiles`, and
compile on first use of a plan (B = 1 compiles one driver and two tiles) into
numba's on-disk cache.

Other dtypes (float32), and A that is not C-contiguous (dispatch never sends
one): a loop over rows four at a time that LLVM vectorizes with
``reassoc``/``contract``; its rounding depends on B.

Residual maps (robust losses, :mod:`matsense.losses`): with ``rmap`` the pass
returns r = p Aᵀ − y and s = φ(r) A, from the same tiles generated with φ
between the residual and the adjoint (``_numba_tiles_mapped``); the same
summation order, so the same independence of the batch. Without ``rmap`` the
code is the plain ℓ2 kernel above, untouched.
"""

from __future__ import annotations

import collections
import functools
import importlib
import threading

import numpy as np

from ...threads import numba_module, numba_usable

_numba_lock = threading.Lock()

#: Rows per tile for batches of at most two trajectories, and for larger batches.
ROWS_SMALL_BATCH, ROWS_LARGE_BATCH = 8, 5
#: The widest trajectory chunk of a tile.
MAX_WIDTH = 4


def tile_plan(B: int) -> tuple[int, tuple[int, ...]]:
    """(R, chunk widths) for a batch of B ≥ 1: rows per tile, and trajectories per chunk (sum B)."""
    if B <= 2:
        return ROWS_SMALL_BATCH, (B,)
    n = -(-B // MAX_WIDTH)
    q, rem = divmod(B, n)
    return ROWS_LARGE_BATCH, (q + 1,) * rem + (q,) * (n - rem)


def driver_name(R: int, widths) -> str:
    """Name of the generated driver for R-row tiles with chunks of the given widths."""
    return f"rows{R}_w" + "".join(str(w) for w in sorted(set(widths), reverse=True))


_CompileStats = collections.namedtuple("_CompileStats", "cache_hits cache_misses")


class _Kernels:
    """The compiled kernels of this process (numba dispatchers, each compiled on first use)."""

    def __init__(self, reassoc):
        self.reassoc = reassoc
        self._tiles = importlib.import_module("._numba_tiles", __package__)
        self._mapped = None
        self._plans = {}

    def tiled(self, B: int, mapped: bool = False):
        """(driver, chunks) of the float64 tile plan for B ≥ 1; chunks: int64 rows
        (first trajectory, width). ``mapped``: the driver with a residual map."""
        plan = self._plans.get(B)
        if plan is None:
            R, widths = tile_plan(B)
            starts = np.cumsum((0,) + widths[:-1])
            plan = self._plans[B] = (
                driver_name(R, widths),
                np.array([starts, widths], dtype=np.int64).T.copy(),
            )
        name, chunks = plan
        if mapped and self._mapped is None:
            self._mapped = importlib.import_module("._numba_tiles_mapped", __package__)
        return getattr(self._mapped if mapped else self._tiles, name), chunks

    def _entry_points(self):
        yield self.reassoc
        for R, widths in {tile_plan(B) for B in self._plans}:
            yield getattr(self._tiles, driver_name(R, widths))

    @property
    def stats(self):
        """numba's cache hits and misses of the kernels called from Python, keyed by
        (function, signature). The tiles a driver calls are compiled (or not) with it
        and not counted."""
        hits, misses = collections.Counter(), collections.Counter()
        for dispatcher in set(self._entry_points()):
            st = dispatcher.stats
            name = dispatcher.py_func.__name__
            hits.update({(name, sig): n for sig, n in st.cache_hits.items()})
            misses.update({(name, sig): n for sig, n in st.cache_misses.items()})
        return _CompileStats(hits, misses)


@functools.lru_cache(maxsize=1)
def _numba_kernel():
    """The compiled kernels (:class:`_Kernels`, compiled on first use), or None when
    numba is not installed."""
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
                        S[b, j] += (
                            r0 * A[i, j] + r1 * A[i + 1, j] + r2 * A[i + 2, j] + r3 * A[i + 3, j]
                        )
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

    return _Kernels(kernel)


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
        return (
            "numba's thread pool does not survive fork and this process was forked from "
            "one that used it"
        )
    if not A.flags.c_contiguous:
        return "the operator matrix is not C-contiguous"
    return None


def fused_numba(A: np.ndarray, p: np.ndarray, y: np.ndarray, threads: int | None = None, rmap=None):
    """r = p Aᵀ − y and s = r A (s = φ(r) A with a residual map) in one pass, compiled with numba.

    Same arguments and results as :func:`~.numpy_loop.fused_numpy` (no block
    size: each thread streams its rows in tiles, see the module docstring).
    ``threads`` caps the thread count for this call (at most numba's
    ``NUMBA_NUM_THREADS``); None keeps numba's current count. The partial sums,
    one per thread, are added in thread order, so a fixed thread count gives a
    fixed result; for float64 each trajectory's ``r[b]``, ``s[b]`` are moreover
    the same bits whatever other trajectories share the call. ``p`` and ``y``
    that are not C-contiguous are copied. Calls are serialized by a lock
    because numba's default thread pool must not be entered from two Python
    threads at once. Raises ``RuntimeError`` if numba is not installed.
    ``rmap`` (a :class:`matsense.losses.ResidualMap`) runs the mapped tiles; outside
    the float64 tiles (float32) it takes the two products instead.
    """
    kernels = _numba_kernel()
    if kernels is None:
        raise RuntimeError("fused_numba needs numba (pip install numba)")
    numba = numba_module()
    p = np.ascontiguousarray(p)
    y = np.ascontiguousarray(y)
    m, d = A.shape
    B = p.shape[0]
    f64 = np.dtype(np.float64)
    tiled = (
        B > 0 and A.dtype == f64 and p.dtype == f64 and y.dtype == f64 and A.flags.c_contiguous
    )  # the tiles' vector loads assume C-contiguous rows
    if rmap is not None and not tiled:  # float32 & co.: no mapped tiles, two products
        from .two_pass import two_pass

        return two_pass(A, p, y, rmap)
    r = np.empty((B, m), dtype=A.dtype)
    with _numba_lock:
        saved = numba.get_num_threads()
        count = (
            saved if threads is None else max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
        )
        if count != saved:
            numba.set_num_threads(count)
        try:
            parts = np.empty((count, B, d), dtype=A.dtype)
            if rmap is not None:
                driver, chunks = kernels.tiled(B, mapped=True)
                driver(A, p, y, r, parts, chunks, rmap.code, rmap.scale, rmap.delta)
            elif tiled:
                driver, chunks = kernels.tiled(B)
                driver(A, p, y, r, parts, chunks)
            else:
                kernels.reassoc(A, p, y, r, parts)
        finally:
            if count != saved:
                numba.set_num_threads(saved)
    return r, (parts[0] if count == 1 else parts.sum(axis=0))
