"""Threads: the cores matsense may use, and how many threads its kernels and BLAS take.

One home for every thread decision, so the operator kernels, the driver and the
sweep executors agree:

* :func:`usable_cores` — CPU cores this process may run on (its affinity mask);
* :func:`threads_setting`, :func:`kernel_threads` — threads of the one-pass
  kernels (``MATSENSE_THREADS=N`` fixes them: numba's and the NumPy loop's);
* :func:`single_blas_thread`, :func:`blas_threads_for` — limits on NumPy's BLAS
  (``MATSENSE_BLAS_THREADS``);
* :func:`single_threaded` — a context in which the kernels and NumPy's BLAS run
  on one thread, so results do not depend on the machine's core count (the
  sweep engine and ``matsense reproduce`` run inside it); the kernel planner
  does not time kernels there but uses a fixed one
  (:mod:`matsense.operators.planner`);
* :func:`numba_usable` — whether numba's thread pool can be used in this
  process (it does not survive ``fork``).

Why threads are limited at all: a multi-threaded BLAS call is a barrier, and on
a machine where another process holds a core each barrier can wait for a
scheduler time slice (``docs/performance.md``, *Threads on a shared machine*).
"""

from __future__ import annotations

import contextlib
import functools
import os

import numpy as np

__all__ = [
    "usable_cores",
    "kernel_threads",
    "threads_setting",
    "single_threaded",
    "is_single_threaded",
    "single_blas_thread",
    "blas_threads_for",
    "numba_usable",
    "numba_import_error",
    "THREADED_MIN_BYTES",
    "SMALL_OPERATOR_BYTES",
    "numba_threads",
]

# Below this size one thread is faster for the NumPy loop: handing work to the pool costs
# tens of µs, and a small A is read from the cache at a rate one core nearly saturates.
THREADED_MIN_BYTES = 8 * 2**20

#: Operators smaller than this run with one BLAS thread (see :func:`blas_threads_for`).
SMALL_OPERATOR_BYTES = 64 * 2**20


# os.environ.get costs ~0.7 µs (it encodes the name and decodes the value) and the kernel
# dispatch reads two settings per call; on POSIX os.environ keeps its bytes in a dict that
# every os.environ assignment updates, and reading that costs ~0.05 µs.
_ENV_BYTES = getattr(os.environ, "_data", None) if os.name == "posix" else None


def env_value(name: str) -> str:
    """The environment variable ``name`` as a stripped string, '' when unset (cheap)."""
    if _ENV_BYTES is not None:
        raw = _ENV_BYTES.get(name.encode())
        return "" if raw is None else os.fsdecode(raw).strip()
    return os.environ.get(name, "").strip()  # pragma: no cover - not POSIX


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask; all cores where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ------------------------------------------------------------------ BLAS
@functools.lru_cache(maxsize=1)
def numpy_blas_controller():
    """threadpoolctl's controller of NumPy's BLAS (the one np.matmul calls), or None.

    A NumPy wheel bundles its BLAS in ``numpy.libs``; other BLAS libraries
    loaded later (SciPy's, torch's) are not the kernels' business. When no
    library is recognisably NumPy's (a system BLAS), all loaded ones are kept.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    ctl = ThreadpoolController().select(user_api="blas")
    package = os.path.dirname(np.__file__)
    mine = [
        lib
        for lib in ctl.lib_controllers
        if lib.filepath.startswith(package) or lib.filepath.startswith(package + ".libs")
    ]
    if mine:
        ctl.lib_controllers = mine
    return ctl


def single_blas_thread():
    """Context: NumPy's BLAS on one thread (a few µs with the cached controller)."""
    ctl = numpy_blas_controller()
    if ctl is None or all(lib.get_num_threads() == 1 for lib in ctl.lib_controllers):
        return contextlib.nullcontext()
    return ctl.limit(limits=1)


def blas_threads_for(operator, y):
    """Context limiting BLAS threads while running on a small NumPy operator.

    For an operator of a few MiB one iteration is a handful of short BLAS
    calls; extra OpenBLAS threads only add synchronisation and, when another
    process holds a core, spin-wait for it (measured: ``matsense reproduce
    --quick`` 30 s with one thread, 439 s with two on a 2-core machine with
    one core busy). Below :data:`SMALL_OPERATOR_BYTES` matsense therefore uses
    one BLAS thread, and so it does for operators whose iteration is no BLAS
    call at all (``operator.blas_bound`` False: matrix completion, whose BLAS
    work is the recorder's n × k QR factorizations — at n = 10⁵ under load,
    0.41 s with two threads, 0.05 s with one).

    ``MATSENSE_BLAS_THREADS=N`` sets the count for every size,
    ``MATSENSE_BLAS_THREADS=default`` leaves BLAS alone; unset or empty means
    ``auto`` (as an empty ``MATSENSE_KERNEL`` or ``MATSENSE_THREADS`` means unset).
    """
    setting = env_value("MATSENSE_BLAS_THREADS").lower() or "auto"
    if not isinstance(y, np.ndarray) or setting == "default":
        return contextlib.nullcontext()
    if setting == "auto":
        if operator.nbytes >= SMALL_OPERATOR_BYTES and getattr(operator, "blas_bound", True):
            return contextlib.nullcontext()
        limit = 1
    else:
        try:
            limit = int(setting)
            if limit < 1:
                raise ValueError
        except ValueError:
            raise ValueError(
                "MATSENSE_BLAS_THREADS must be 'auto', 'default' or an integer >= 1, "
                f"got {setting!r}"
            ) from None
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=limit, user_api="blas")


# ------------------------------------------------------------------ numba's pool
_numba_pid = None  # the process that first used numba's thread pool (see numba_usable)


_numba_import_error = None


@functools.lru_cache(maxsize=1)
def numba_module():
    """The imported ``numba`` module, or None when it cannot be imported."""
    global _numba_import_error
    try:
        import numba
    except ImportError as exc:  # a core dependency, but a broken install must not stop us
        _numba_import_error = f"{type(exc).__name__}: {exc}"
        return None
    _numba_import_error = None
    _cache_writes_may_fail()
    return numba


_cache_patched = False


def _cache_writes_may_fail() -> None:
    """Make numba's on-disk kernel cache best effort (once per process).

    The compiled kernels use ``cache=True``: numba writes each compiled kernel next to its
    source (or under ``NUMBA_CACHE_DIR``). On a full disk (no space, a quota, a file-size
    limit) that write raised out of the *computation* that needed the kernel — a run, a
    sweep batch or a claim failed although the kernel had compiled. Now such a write is
    skipped: the kernel runs from memory and a later process compiles it again. numba
    writes the cache through a temporary file that it removes on failure, so nothing
    partial is left. Other errors are raised as before.
    """
    global _cache_patched
    if _cache_patched:
        return
    _cache_patched = True
    try:
        from numba.core import caching

        original = caching.Cache.save_overload
    except (ImportError, AttributeError):  # pragma: no cover - another numba layout
        return
    from ._files import DISK_FULL_ERRNOS

    @functools.wraps(original)
    def save_overload(self, sig, data):
        try:
            original(self, sig, data)
        except OSError as exc:
            if exc.errno not in DISK_FULL_ERRNOS:
                raise

    caching.Cache.save_overload = save_overload  # type: ignore[method-assign]  # the patch


def numba_import_error() -> str | None:
    """Why numba could not be imported (``'ImportError: ...'``), or None when it imports."""
    numba_module()
    return _numba_import_error


def numba_usable() -> bool:
    """True when numba imports and its thread pool can be used in this process.

    False in a process forked from one that already used numba here (numba's
    default thread pool does not survive ``fork``; such children use the
    NumPy loop).
    """
    global _numba_pid
    if numba_module() is None:
        return False
    if _numba_pid is None:
        _numba_pid = os.getpid()
    return _numba_pid == os.getpid()


# ------------------------------------------------------------------ kernel threads
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
    if numba_usable():  # not in a forked child of a numba user: its pool is gone there
        numba = numba_module()
        numba_threads = numba.get_num_threads()
        numba.set_num_threads(1)
    try:
        with single_blas_thread():
            yield
    finally:
        _threads_override = saved
        if numba_threads is not None:
            numba_module().set_num_threads(numba_threads)


@functools.lru_cache(maxsize=8)
def _parse_threads(setting: str) -> int | None:
    if not setting:
        return None
    try:
        value = int(setting)
        if value < 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"MATSENSE_THREADS must be an integer >= 1, got {setting!r}") from None
    return value


def is_single_threaded() -> bool:
    """True inside :func:`single_threaded` (results must not depend on the machine)."""
    return _threads_override is not None


def threads_setting() -> int | None:
    """The kernels' thread count if one is fixed, else None (each kernel's own default).

    1 inside :func:`single_threaded`; else ``MATSENSE_THREADS=N`` when set.
    Every kernel asks, so a bad value (``0``, ``-1``, ``abc``) raises the same
    one-line ``ValueError`` whichever kernel would run.
    """
    if _threads_override is not None:
        return _threads_override
    return _parse_threads(env_value("MATSENSE_THREADS"))


def numba_threads(nbytes: int) -> int | None:
    """Threads for the numba one-pass kernel over an operator of ``nbytes``.

    :func:`threads_setting` when fixed; otherwise 1 below
    :data:`THREADED_MIN_BYTES` (a pass over a few MiB takes ~0.1 ms: a
    fork/join across cores buys little there and, when another process holds
    a core, waits a scheduler slice for it — benchmarks/bench_kernels.py with
    one core kept busy measured the two-thread kernel at 2–3× the two BLAS
    products at n = 30), else None (numba's thread count, the usable cores).
    """
    fixed = threads_setting()
    if fixed is not None:
        return fixed
    return 1 if nbytes < THREADED_MIN_BYTES else None


def kernel_threads(nbytes: int) -> int:
    """Threads for the NumPy one-pass loop over an operator of ``nbytes``.

    :func:`threads_setting` when fixed (``MATSENSE_THREADS=N``; the sweep
    executors' workers use 1); otherwise 1 below :data:`THREADED_MIN_BYTES`,
    else the usable cores (at most 8: beyond that one pass over A is limited
    by memory bandwidth, not cores).
    """
    fixed = threads_setting()
    if fixed is not None:
        return fixed
    if nbytes < THREADED_MIN_BYTES:
        return 1
    return min(usable_cores(), 8)
