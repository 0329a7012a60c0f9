"""Shared helpers for the benchmarks: timing, machine limits, memory.

Timings are wall-clock; on a shared or busy machine the *minimum* over
repetitions is the closest to the uncontended time, so both min and median
are reported and ratios use the minimum.
"""

from __future__ import annotations

import os
import platform
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def timeit(fn, *, min_reps: int = 3, max_reps: int = 50, budget_s: float = 0.5, sync=None):
    """Run ``fn`` once to warm up, then repeatedly; return dict(min, median, reps) in seconds."""
    fn()
    if sync:
        sync()
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return {"min": min(times), "median": float(np.median(times)), "reps": len(times)}


def memory_read_bandwidth(gib: float = 1.0, threads: int | None = None, reps: int = 5) -> dict:
    """DRAM read bandwidth (bytes/s) over a ``gib``-GiB array, far larger than any cache.

    Two probes, best of ``reps`` each: ``threads`` Python threads summing disjoint
    chunks (NumPy releases the GIL), and a BLAS matrix–vector product over the
    array (OpenBLAS threads). Returns both and their maximum, ``"best"``.
    """
    threads = threads or os.cpu_count() or 1
    a = np.ones(int(gib * 2**30) // 8)
    chunks = np.array_split(a, threads * 8)
    M = a.reshape(-1, 4096)
    v = np.ones(4096)
    best_sum = best_gemv = float("inf")
    with ThreadPoolExecutor(threads) as ex:
        for _ in range(reps):
            t0 = time.perf_counter()
            list(ex.map(np.sum, chunks))
            best_sum = min(best_sum, time.perf_counter() - t0)
            t0 = time.perf_counter()
            M @ v
            best_gemv = min(best_gemv, time.perf_counter() - t0)
    nbytes = a.nbytes
    del a, chunks, M
    out = {"threaded_sum": nbytes / best_sum, "gemv": nbytes / best_gemv}
    out["best"] = max(out.values())
    return out


def gemm_rate(dtype: str = "float64", n: int = 2048, reps: int = 5) -> float:
    """FLOP/s of a large square NumPy matmul (2n³ flops), best of ``reps``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    t = timeit(lambda: a @ b, min_reps=reps, max_reps=reps, budget_s=0)
    return 2 * n**3 / t["min"]


def traced_peak(fn) -> int:
    """Peak bytes newly allocated (tracemalloc; NumPy reports its buffers) while ``fn`` runs."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return int(peak - base)


def max_rss_bytes() -> int:
    """Peak resident set size of this process so far."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def machine_info() -> dict:
    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["torch"] = None
    return info
