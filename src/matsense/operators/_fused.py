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

* :func:`fused_numba` — a compiled kernel (optional dependency ``numba``,
  the ``[fast]`` extra): each thread takes a contiguous range of rows, and for
  every group of four rows computes their residuals and adds their share to a
  private partial 𝒜*(r) while the rows are in L1/L2; one fork/join per call.
  Used when numba imports.
* :func:`fused_numpy` — the NumPy implementation: blocks of rows, two BLAS
  matrix–vector calls per block and trajectory, BLAS on one thread. Operators
  of at least :data:`THREADED_MIN_BYTES` are split into contiguous row ranges
  run by a small thread pool (NumPy releases the GIL in BLAS), so the pass
  uses every core without BLAS's own threads: a multi-threaded BLAS call is a
  barrier, and on a machine with any other load each of the loop's hundreds
  of short calls can cost a scheduler time slice (measured at n = 200:
  1.77 s vs 84 ms per iteration), whereas pool threads that find their core
  busy only wait their turn.

The environment variable ``MATSENSE_KERNEL`` picks the implementation:
``auto`` (default: numba if installed, else the NumPy loop), ``numba``,
``numpy`` (the blocked loop), ``two-pass`` (two BLAS calls, A read twice) or
``triton`` (torch on CUDA, one trajectory: the experimental one-pass GPU
kernel of :mod:`matsense.operators._triton`; NumPy problems ignore it).
``MATSENSE_THREADS=N`` fixes the NumPy loop's thread count (see
:func:`kernel_threads`; sweep workers set it to 1).

Block size (NumPy loop): big enough that the two BLAS calls per block
amortize their fixed cost (a few µs), small enough that a block stays in the
last-level cache between the two calls. The default is a quarter of the L3
size read from sysfs, clamped to 1–8 MiB, see :func:`default_block_bytes`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading

import numpy as np

KERNELS = ("auto", "numba", "numpy", "two-pass", "triton")

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


def _rows_pass(A, p, y, r, lo: int, hi: int, block_rows: int) -> np.ndarray:
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
            np.matmul(rb, Ab, out=part)
            s[b] += part
    return s


def fused_numpy(A: np.ndarray, p: np.ndarray, y: np.ndarray, block_rows: int,
                threads: int = 1):
    """r = p Aᵀ − y and s = r A in one blocked pass over the rows of A (NumPy).

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

    Returns
    -------
    r : (B, m), s : (B, d)
    """
    m, d = A.shape
    B = p.shape[0]
    r = np.empty((B, m), dtype=A.dtype)
    threads = max(1, min(int(threads), m))
    with _single_blas_thread():
        if threads == 1:
            return r, _rows_pass(A, p, y, r, 0, m, block_rows)
        cuts = np.linspace(0, m, threads + 1).astype(int)
        pool = _thread_pool(threads - 1)
        ranges = [(int(lo), int(hi), max(1, min(block_rows, int(hi - lo))))
                  for lo, hi in zip(cuts[:-1], cuts[1:])]
        # The calling thread takes the first range itself: one hand-off fewer.
        futures = [pool.submit(_rows_pass, A, p, y, r, *rng) for rng in ranges[1:]]
        s = _rows_pass(A, p, y, r, *ranges[0])
        for f in futures:
            s += f.result()
        return r, s


# Below this size one thread is faster: handing work to the pool costs tens of µs,
# and a small A is read from the cache at a rate one core nearly saturates.
THREADED_MIN_BYTES = 8 * 2**20

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


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's controller of NumPy's BLAS (the one np.matmul calls), or None.

    A NumPy wheel bundles its BLAS in ``numpy.libs``; other BLAS libraries
    loaded later (SciPy's, torch's) are not this kernel's business. When no
    library is recognisably NumPy's (a system BLAS), all loaded ones are kept.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    ctl = ThreadpoolController().select(user_api="blas")
    package = os.path.dirname(np.__file__)
    mine = [lib for lib in ctl.lib_controllers
            if lib.filepath.startswith(package) or lib.filepath.startswith(package + ".libs")]
    if mine:
        ctl.lib_controllers = mine
    return ctl


def _single_blas_thread():
    """Context: NumPy's BLAS on one thread (a few µs with the cached controller)."""
    ctl = _blas_controller()
    if ctl is None or all(lib.get_num_threads() == 1 for lib in ctl.lib_controllers):
        return contextlib.nullcontext()
    return ctl.limit(limits=1)


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_threads_override = None


@contextlib.contextmanager
def single_threaded():
    """Within this context the one-pass kernels (NumPy loop and numba) and NumPy's BLAS
    use one thread.

    Partial sums then always add up in the same order, whatever the machine's
    core count: the sweep engine and ``reproduce`` run every batch inside it,
    so a run's result does not depend on the process or worker it lands on.
    """
    global _threads_override
    saved = _threads_override
    _threads_override = 1
    numba_threads = None
    if numba_available():  # not in a forked child of a numba user: its pool is gone there
        import numba

        numba_threads = numba.get_num_threads()
        numba.set_num_threads(1)
    try:
        with _single_blas_thread():
            yield
    finally:
        _threads_override = saved
        if numba_threads is not None:
            import numba

            numba.set_num_threads(numba_threads)


def kernel_threads(nbytes: int) -> int:
    """Threads for the NumPy one-pass loop over an operator of ``nbytes``.

    ``MATSENSE_THREADS=N`` sets it (the sweep executors' workers use 1);
    otherwise 1 below :data:`THREADED_MIN_BYTES`, else the usable cores (at most 8:
    beyond that one pass over A is limited by memory bandwidth, not cores).
    """
    if _threads_override is not None:
        return _threads_override
    setting = os.environ.get("MATSENSE_THREADS", "").strip()
    if setting:
        try:
            value = int(setting)
            if value < 1:
                raise ValueError
        except ValueError:
            raise ValueError(f"MATSENSE_THREADS must be an integer >= 1, got {setting!r}") from None
        return value
    if nbytes < THREADED_MIN_BYTES:
        return 1
    return min(usable_cores(), 8)


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
    if kernel == "triton" and not isinstance(A, np.ndarray):
        from ._triton import fused_triton

        return fused_triton(A, p, y)
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
