"""Matrix-free ensembles at scale: rank-one and completion against their targets (issue #10).

One run measures, each case in a child process of its own (so that its peak RSS is
its own; the baseline is taken after the imports and the compiled kernels are warm):

* **rank-one**, n1 = n2 = 2000, r = 5, k = 10, m = 100 000: one GD iteration
  (``ms.GD().step``) and the operator call alone, next to its four GEMMs measured
  alone (a F, b G, aᵀX, bᵀY of the same shapes), repetitions interleaved so that
  both see the same machine; target ≤ 1.25×. Peak RSS of generation + iterations
  over the two m × n matrices; target ≤ 1.1×.
* **completion**, n1 = n2 = 100 000, r = 5, k = 10, 10⁷ observed entries: one GD
  iteration (wall, and CPU time of the calling thread: the whole step with
  ``MATSENSE_THREADS=1``, else the kernel's other threads are not counted); target
  ≤ 0.5 s. Peak RSS over the index + value arrays (int32 rows, cols; y); target ≤ 2×.
  The cost of one record of the recorder (error from factors, off-subspace norm,
  singular values, imbalance drift), which must be O((n1 + n2)k²), and whether a
  dense n1 × n2 call is refused with one line.
* **completion kernel side by side** (issue #19, part 4), n = 10⁵, m = 10⁷, k = 10, all
  in one process, repetitions interleaved: the *stream* (one read of the stored index and
  value arrays — int32 rows, cols and float64 y — and, for comparison with earlier
  numbers, of int64 copies of the indices), ``residual_and_grads`` and one GD step with
  ``MATSENSE_THREADS=1`` and ``2``, and the iteration as a user would write it with
  scipy.sparse (gathered-row SDDMM ``einsum('ij,ij->i', F[rows], G[cols])``, then a COO →
  CSR matrix and its two SpMMs); targets ≤ 8× the stream with one thread, ≤ 4× with two.
  The L3 size, a float64 GEMM rate and the load average are printed with the times; the
  results of 1 and 2 threads are compared bitwise, scipy's to 1e-12.
* **completion, GD from small init to relative error 1e-6** (k = r = 5 and
  k = 10 > r, the α²-slow regime): iterations, wall time, final error, each
  within a wall-clock budget (``--converge-budget``).
* **torch CPU** (no target): one GD step on ``problem.to("torch")`` next to NumPy,
  rank-one and completion at the sizes above.
* **dense Gaussian at today's sizes** (n = 100, m = 1500, r = 3, k = 6): the
  factored ``residual_and_grads`` against the old ``residual_and_adjoint(P)`` and
  two matmuls, ratio in one run (target ≤ 1.0 within noise).

Timings are wall-clock minima over repetitions (``_common.timeit``), with CPU
times next to them: on a shared machine (load above the core count) the wall
time of a serial kernel is inflated by the other tenants and its CPU time is
the honest measure; the load average is printed with every case.

Usage::

    python benchmarks/bench_ensembles.py                # ~10 minutes on 2 cores, 6 GB RSS
    python benchmarks/bench_ensembles.py --quick        # tiny sizes (seconds): a smoke run
    python benchmarks/bench_ensembles.py --cases rank-one,gaussian
    python benchmarks/bench_ensembles.py --cases completion-kernel   # ~2 minutes, 1.5 GB
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

CASES = ("rank-one", "completion", "completion-kernel", "converge", "gaussian", "torch")

FULL = {"rank_one": dict(n=2000, m=100_000, r=5, k=10),
        "completion": dict(n=100_000, m=10_000_000, r=5, k=10),
        "converge": dict(n=100_000, m=10_000_000, r=5, ks=(5, 10), eta=0.5, alpha=1e-3),
        "gaussian": dict(n=100, m=1500, r=3, k=6)}
QUICK = {"rank_one": dict(n=100, m=3000, r=5, k=10),
         "completion": dict(n=2000, m=40_000, r=5, k=10),
         "converge": dict(n=400, m=40_000, r=5, ks=(5,), eta=0.5, alpha=1e-3),
         "gaussian": dict(n=30, m=450, r=3, k=6)}

TARGETS = {"rank_one_step_over_gemms": 1.25, "rank_one_peak_over_ab": 1.1,
           "completion_step_s": 0.5, "completion_peak_over_data": 2.0,
           "completion_kernel_1t_over_stream": 8.0, "completion_kernel_2t_over_stream": 4.0,
           "converge_rel_error": 1e-6, "gaussian_factored_over_old": 1.0}


# ------------------------------------------------------------------ helpers
def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _interleaved(fns: dict, reps: int, budget_s: float) -> dict:
    """Each function once to warm up, then rounds of all of them (same machine state for
    each round; the order reversed every other round, so neither always runs first); min
    and median of wall and CPU (process) time per function."""
    for fn in fns.values():
        fn()
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    start = time.perf_counter()
    items = list(fns.items())
    rounds = 0
    while rounds < reps or (time.perf_counter() - start < budget_s and rounds < 200):
        rounds += 1
        for key, fn in (items if rounds % 2 else items[::-1]):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    return {k: {"min": min(wall[k]), "median": float(np.median(wall[k])), "cpu_min": min(cpu[k]),
                "reps": len(wall[k])} for k in fns}


def _warm_numba():
    """Compile (or load) the one-pass kernels on a tiny problem, so the RSS baseline has them."""
    import matsense as ms
    from matsense.init import small_random

    p = ms.Problem.completion(20, r=2, m=100, seed=0)
    F, G = small_random(p, 2, 0.1, seed=0)
    p.residual_and_grads(F[None], G[None])


# ------------------------------------------------------------------ cases (children)
def case_rank_one(s: dict, quick: bool) -> dict:
    import matsense as ms
    from matsense.init import small_random

    n, m, r, k = s["n"], s["m"], s["r"], s["k"]
    base = _rss()
    t0 = time.perf_counter()
    p = ms.Problem.rank_one(n, r=r, m=m, seed=0)
    gen = time.perf_counter() - t0
    op = p.operator
    ab = int(op.a.nbytes + op.b.nbytes)
    F, G = small_random(p, k, 0.1, normalization="sqrt_n", seed=1)
    F, G = F[None], G[None]
    a, b = op.a, op.b
    X = np.ones((1, m, k))
    Y = np.ones((1, m, k))
    gd = ms.GD(0.3)
    st = gd.init(p, (F, G))

    def gemms():
        a @ F
        b @ G
        a.mT @ X
        b.mT @ Y

    t = _interleaved({"gemms": gemms, "gd_step": lambda: gd.step(p, st),
                      "residual_and_grads": lambda: p.residual_and_grads(F, G)},
                     reps=3, budget_s=1.0 if quick else 8.0)
    step_peak = C.traced_peak(lambda: gd.step(p, st))
    peak = _maxrss() - base
    return {"n": n, "m": m, "r": r, "k": k, "generate_s": gen, "ab_bytes": ab,
            "times": t, "step_over_gemms": t["gd_step"]["min"] / t["gemms"]["min"],
            "step_over_gemms_cpu": t["gd_step"]["cpu_min"] / t["gemms"]["cpu_min"],
            "op_over_gemms": t["residual_and_grads"]["min"] / t["gemms"]["min"],
            "step_traced_alloc_bytes": step_peak, "peak_rss_delta_bytes": peak,
            "peak_over_ab": peak / ab, "load": _load()}


def _record_once(p, fac, truth, Delta0):
    """What the recorder computes for one record (driver.record.Recorder.row), from factors: the
    error (the QR formula at these sizes), then one compiled call for the rest — or the
    NumPy calls where that does not apply."""
    from matsense import diagnostics

    truth.error(fac)
    if diagnostics.row_stats(fac, U=truth.U, V=truth.V, Delta0=Delta0,
                             singular_values=True) is None:
        truth.off_subspace(fac)
        diagnostics.product_singular_values(fac)
        diagnostics.imbalance_drift(*fac, Delta0)


def case_completion(s: dict, quick: bool) -> dict:
    """Measured under the BLAS thread limit ``matsense.run`` sets for the operator."""
    import matsense as ms

    p = ms.Problem.completion(20, r=2, m=100, seed=0)
    with ms.threads.blas_threads_for(p.operator, p.y):
        return _case_completion(s, quick)


def _case_completion(s: dict, quick: bool) -> dict:
    import matsense as ms
    from matsense import diagnostics
    from matsense.init import small_random

    n, m, r, k = s["n"], s["m"], s["r"], s["k"]
    base = _rss()
    t0 = time.perf_counter()
    p = ms.Problem.completion(n, r=r, m=m, seed=0)
    gen = time.perf_counter() - t0
    gen_peak = _maxrss() - base
    op = p.operator
    data = int(op.rows.nbytes + op.cols.nbytes + p.y.nbytes)
    F, G = small_random(p, k, 1e-3, normalization="sqrt_n", seed=1)
    F, G = F[None], G[None]
    gd = ms.GD(0.5)
    st = gd.init(p, (F, G))
    t_step = C.timeit(lambda: gd.step(p, st), min_reps=3, max_reps=10,
                      budget_s=1.0 if quick else 6.0)
    c0 = time.thread_time()
    reps = 3
    for _ in range(reps):
        gd.step(p, st)
    step_cpu = (time.thread_time() - c0) / reps
    truth = diagnostics.Truth.of(p, F)
    Delta0 = diagnostics.imbalance(F, G)
    t_rec = C.timeit(lambda: _record_once(p, (F, G), truth, Delta0), min_reps=3, max_reps=20,
                     budget_s=0.5)
    # O((n1 + n2) k²) per record: compare with the same record at a tenth of n
    small = ms.Problem.completion(n // 10, r=r, m=max(m // 100, 1000), seed=0)
    Fs, Gs = small_random(small, k, 1e-3, normalization="sqrt_n", seed=1)
    Fs, Gs = Fs[None], Gs[None]
    ts = diagnostics.Truth.of(small, Fs)
    Ds = diagnostics.imbalance(Fs, Gs)
    t_rec_small = C.timeit(lambda: _record_once(small, (Fs, Gs), ts, Ds), min_reps=3,
                           max_reps=50, budget_s=0.5)
    try:
        op.adjoint(p.y[None])
        refused = None
    except ValueError as exc:
        refused = str(exc)
    peak = _maxrss() - base
    return {"n": n, "m": m, "r": r, "k": k, "generate_s": gen, "generate_peak_bytes": gen_peak,
            "data_bytes": data, "M_star_is_None": p.M_star is None, "truth_factored": truth.factored,
            "step": t_step, "step_thread_cpu_s": step_cpu,
            "record_s": t_rec["min"], "record_s_at_n_over_10": t_rec_small["min"],
            "dense_refused": refused, "peak_rss_delta_bytes": peak,
            "peak_over_data": peak / data, "load": _load()}


def _l3_bytes() -> int | None:
    """The last-level cache of cpu0 (sysfs), or None."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    sizes = []
    for idx in base.glob("index*"):
        try:
            level = int((idx / "level").read_text())
            text = (idx / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        sizes.append((level, int(text.rstrip("KMG")) * mult))
    return max(sizes)[1] if sizes else None


def case_completion_kernel(s: dict, quick: bool) -> dict:
    """The stream, matsense on 1 and 2 threads, scipy.sparse: one process, interleaved."""
    import matsense as ms
    from scipy import sparse

    from matsense.init import small_random

    n, m, r, k = s["n"], s["m"], s["r"], s["k"]
    p = ms.Problem.completion(n, r=r, m=m, seed=0)
    op = p.operator
    rows, cols, y, c = op.rows, op.cols, p.y, op.scale
    rows64, cols64 = rows.astype(np.int64), cols.astype(np.int64)
    F, G = small_random(p, k, 1e-3, normalization="sqrt_n", seed=1)
    F, G = F + 0.01, G - 0.01  # not tiny: the same work whatever the values
    Fb, Gb = F[None], G[None]
    gd = ms.GD(0.5)
    st = gd.init(p, (Fb, Gb))
    def words(a):
        """The bytes of ``a`` as int64 words (a read at memory speed, whatever a's dtype)."""
        a = a[: a.nbytes // 8 * 8 // a.itemsize]
        return a.view(np.int64)

    try:
        from numba import njit

        @njit(cache=False, nogil=True)
        def _read(a, b, v):  # pragma: no cover - compiled
            s = 0
            for i in range(a.shape[0]):
                s += a[i]
            for i in range(b.shape[0]):
                s += b[i]
            for i in range(v.shape[0]):
                s += v[i]
            return s

        def stream(a, b):
            a, b, v = words(a), words(b), words(y)
            return lambda: _read(a, b, v)
    except ImportError:  # pragma: no cover - numba is a core dependency
        def stream(a, b):
            return lambda: (words(a).sum(), words(b).sum(), words(y).sum())

    def threads(count, fn):
        def call():
            saved = os.environ.get("MATSENSE_THREADS")
            os.environ["MATSENSE_THREADS"] = str(count)
            try:
                return fn()
            finally:
                if saved is None:
                    del os.environ["MATSENSE_THREADS"]
                else:
                    os.environ["MATSENSE_THREADS"] = saved
        return call

    def scipy_iteration():
        res = c * np.einsum("ij,ij->i", F[rows], G[cols]) - y
        S = sparse.coo_matrix((c * res, (rows, cols)), shape=(n, n)).tocsr()
        return res, S @ G, S.T @ F

    kernel = lambda: op.residual_and_grads(Fb, Gb, y)  # noqa: E731
    from matsense.operators.completion import _entries_kernel

    def before():
        """The scalar one-pass kernel of 2026-12-02 (serial, LLVM's lanes), int64 indices."""
        res = np.empty((1, m))
        SG, StF = np.zeros_like(Fb), np.zeros_like(Gb)
        _entries_kernel().generic(rows64, cols64, c, Fb, Gb, y[None], res, SG, StF)
        return res, SG, StF

    fns = {"stream": stream(rows, cols), "stream_int64": stream(rows64, cols64),
           "kernel_before": before,
           "kernel_1t": threads(1, kernel), "kernel_2t": threads(2, kernel),
           "gd_step_1t": threads(1, lambda: gd.step(p, st)),
           "gd_step_2t": threads(2, lambda: gd.step(p, st)),
           "scipy_sparse": scipy_iteration}
    one, two, ref = fns["kernel_1t"](), fns["kernel_2t"](), scipy_iteration()
    bitwise = all(np.array_equal(a, b) for a, b in zip(one, two))
    diff = max(float(np.abs(a.reshape(b.shape) - b).max() / np.abs(b).max())
               for a, b in zip(one, ref))
    load0 = os.getloadavg()
    t = _interleaved(fns, reps=3, budget_s=1.0 if quick else 20.0)
    base = t["stream"]["min"]
    ratios = {key: t[key]["min"] / base for key in fns}
    medians = {key: t[key]["median"] / t["stream"]["median"] for key in fns}
    # process CPU time: on a loaded machine a long call is preempted more often than a short
    # one, so the wall-time minimum favours the stream; CPU time does not (2 threads: both)
    cpu = {key: t[key]["cpu_min"] / t["stream"]["cpu_min"] for key in fns}
    return {"n": n, "m": m, "r": r, "k": k, "times": t, "over_stream": ratios,
            "over_stream_median": medians, "over_stream_cpu": cpu,
            "over_stream_int64": {key: t[key]["min"] / t["stream_int64"]["min"] for key in fns},
            "stream_bytes": int(rows.nbytes + cols.nbytes + y.nbytes),
            "stream_int64_bytes": int(rows64.nbytes + cols64.nbytes + y.nbytes),
            "threads_bitwise_equal": bitwise, "scipy_max_rel_diff": diff,
            "l3_bytes": _l3_bytes(), "gemm_float64_flops": C.gemm_rate("float64", 1024, 3),
            "load_start": load0, "load": os.getloadavg()}


def case_converge(s: dict, quick: bool, k: int, budget: float, iters: int,
                  method: str = "gd") -> dict:
    import matsense as ms
    from matsense.init import small_random

    n, m, r = s["n"], s["m"], s["r"]
    p = ms.Problem.completion(n, r=r, m=m, seed=0)
    F, G = small_random(p, k, s["alpha"], normalization="sqrt_n", seed=1)
    start = time.perf_counter()
    c0 = time.process_time()
    progress = []

    def stop(t, info):
        if info["error"] is not None and t % 10 == 0:
            progress.append((t, float(info["error"][0] / p.M_star_norm)))
        return time.perf_counter() - start > budget

    gd = ms.GD(s["eta"]) if method == "gd" else ms.RebalancedGD(s["eta"])
    traj = ms.run(p, gd, (F, G), iters=iters, tol=1e-6, record_every=10**9, callback=stop)
    wall = time.perf_counter() - start
    rel = traj.history["rel_error"]
    switched = traj.extras.get("switch_iteration") if method != "gd" else None
    return {"n": n, "m": m, "r": r, "k": k, "eta": s["eta"], "alpha": s["alpha"],
            "method": method, "switched_at": None if switched is None else int(switched),
            "status": str(traj.status), "iterations": int(traj.iterations), "wall_s": wall,
            "cpu_s": time.process_time() - c0, "final_rel_error": float(rel[-1]),
            "progress": progress, "budget_s": budget, "load": _load()}


def case_gaussian(s: dict, quick: bool) -> dict:
    import matsense as ms
    from matsense.init import small_random

    n, m, r, k = s["n"], s["m"], s["r"], s["k"]
    p = ms.Problem.gaussian(n, r=r, m=m, seed=0)
    out = {"n": n, "m": m, "r": r, "k": k, "load": _load()}
    for B in (1, 8):
        F, G = small_random(p, k, [0.1] * B, seed=list(range(B)))

        def old():
            _, S = p.residual_and_adjoint(F @ G.mT)
            return S @ G, S.mT @ F

        t = _interleaved({"factored": lambda: p.residual_and_grads(F, G), "old": old},
                         reps=5, budget_s=0.5 if quick else 10.0)
        out[f"B{B}"] = {"times": t, "factored_over_old": t["factored"]["min"] / t["old"]["min"]}
        # same numbers
        r1, SG1, StF1 = p.residual_and_grads(F, G)
        SG0, StF0 = old()
        out[f"B{B}"]["max_rel_diff"] = float(max(np.abs(SG1 - SG0).max() / np.abs(SG0).max(),
                                                 np.abs(StF1 - StF0).max() / np.abs(StF0).max()))
    return out


def case_torch(sizes: dict, quick: bool) -> dict:
    """One GD step on torch CPU next to NumPy, for rank-one and completion (no target)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return {"skipped": "torch not installed"}
    import matsense as ms
    from matsense.init import small_random

    out = {"load": _load()}
    for name, build in (("rank_one", lambda s: ms.Problem.rank_one(s["n"], r=s["r"], m=s["m"],
                                                                   seed=0)),
                        ("completion", lambda s: ms.Problem.completion(s["n"], r=s["r"],
                                                                       m=s["m"], seed=0))):
        s = sizes[name]
        p = build(s)
        F, G = small_random(p, s["k"], 1e-3, normalization="sqrt_n", seed=1)
        pt = p.to("torch", "cpu")
        gd = ms.GD(0.3)
        st = gd.init(p, (F[None], G[None]))
        stt = gd.init(pt, (torch.from_numpy(F[None]), torch.from_numpy(G[None])))
        threads = torch.get_num_threads()

        def torch_step(count):
            def step():
                saved = torch.get_num_threads()
                torch.set_num_threads(count)
                try:
                    gd.step(pt, stt)
                finally:
                    torch.set_num_threads(saved)
            return step

        fns = {"numpy": lambda: gd.step(p, st), "torch": torch_step(threads)}
        if threads > 1:  # torch's OpenMP threads spin-wait on a loaded machine
            fns["torch_1_thread"] = torch_step(1)
        with ms.threads.blas_threads_for(p.operator, p.y):
            t = _interleaved(fns, reps=2, budget_s=0.5 if quick else 5.0)
        out[name] = {"times": t, "torch_threads": threads,
                     "torch_over_numpy": t["torch"]["min"] / t["numpy"]["min"]}
        del p, pt, st, stt
    return out


def child(args) -> None:
    sizes = QUICK if args.quick else FULL
    _warm_numba()
    if args.child == "rank-one":
        res = case_rank_one(sizes["rank_one"], args.quick)
    elif args.child == "completion":
        res = case_completion(sizes["completion"], args.quick)
    elif args.child == "completion-kernel":
        res = case_completion_kernel(sizes["completion"], args.quick)
    elif args.child == "converge":
        res = case_converge(sizes["converge"], args.quick, args.k, args.converge_budget,
                            args.converge_iters, args.converge_method)
    elif args.child == "torch":
        res = case_torch(sizes, args.quick)
    else:
        res = case_gaussian(sizes["gaussian"], args.quick)
    print("RESULT " + json.dumps(res, default=float))


# ------------------------------------------------------------------ parent
def _run_child(name: str, args, extra=()) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, *extra]
    if args.quick:
        cmd.append("--quick")
    cmd += ["--converge-budget", str(args.converge_budget),
            "--converge-iters", str(args.converge_iters),
            "--converge-method", args.converge_method]
    print(f"# {name} {' '.join(extra)} ... (load {_load()})", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _ms(x: float) -> str:
    if x < 1e-3:
        return f"{x * 1e6:.0f} µs"
    return f"{x * 1e3:.1f} ms" if x < 10 else f"{x:.1f} s"


def verdicts(res: dict) -> list[tuple[str, str, str, bool | None]]:
    """(measure, value, target, met) rows."""
    rows = []
    ro = res.get("rank-one")
    if ro and "error" not in ro:
        rows.append(("rank-one GD step / its four GEMMs (wall, interleaved)",
                     f"{ro['step_over_gemms']:.2f} ({_ms(ro['times']['gd_step']['min'])} vs "
                     f"{_ms(ro['times']['gemms']['min'])}; CPU-time ratio "
                     f"{ro['step_over_gemms_cpu']:.2f})",
                     f"≤ {TARGETS['rank_one_step_over_gemms']}",
                     ro["step_over_gemms"] <= TARGETS["rank_one_step_over_gemms"]))
        rows.append(("rank-one peak RSS (generate + iterate) / bytes(a, b)",
                     f"{ro['peak_over_ab']:.3f} ({ro['peak_rss_delta_bytes'] / 2**30:.2f} GiB / "
                     f"{ro['ab_bytes'] / 2**30:.2f} GiB)", f"≤ {TARGETS['rank_one_peak_over_ab']}",
                     ro["peak_over_ab"] <= TARGETS["rank_one_peak_over_ab"]))
    co = res.get("completion")
    if co and "error" not in co:
        rows.append(("completion GD step (wall; thread CPU)",
                     f"{_ms(co['step']['min'])}; {_ms(co['step_thread_cpu_s'])}",
                     f"≤ {TARGETS['completion_step_s']} s",
                     co["step"]["min"] <= TARGETS["completion_step_s"]))
        rows.append(("completion peak RSS (generate + iterate) / bytes(rows, cols, y)",
                     f"{co['peak_over_data']:.2f} ({co['peak_rss_delta_bytes'] / 2**20:.0f} MiB / "
                     f"{co['data_bytes'] / 2**20:.0f} MiB)",
                     f"≤ {TARGETS['completion_peak_over_data']}",
                     co["peak_over_data"] <= TARGETS["completion_peak_over_data"]))
        rows.append(("completion one record (from factors) at n, and at n/10",
                     f"{_ms(co['record_s'])}, {_ms(co['record_s_at_n_over_10'])}",
                     "O((n1+n2)k²), < a step", co["record_s"] < co["step"]["min"]))
        rows.append(("completion: M* kept as factors, dense call refused",
                     f"{co['M_star_is_None']}, {co['dense_refused'] is not None}", "True, True",
                     bool(co["M_star_is_None"] and co["dense_refused"])))
    ck = res.get("completion-kernel")
    if ck and "error" not in ck:
        t, q, q64 = ck["times"], ck["over_stream"], ck["over_stream_int64"]
        note = (f"stream {_ms(t['stream']['min'])} ({ck['stream_bytes'] / 2**20:.0f} MiB; int64 "
                f"indices {_ms(t['stream_int64']['min'])}); load {ck['load'][0]:.1f}")
        for key, label, target in (("kernel_1t", "1 thread", "completion_kernel_1t_over_stream"),
                                   ("kernel_2t", "2 threads", "completion_kernel_2t_over_stream")):
            rows.append((f"completion residual_and_grads, {label} / stream (n = {ck['n']}, "
                         f"m = {ck['m']}, k = {ck['k']})",
                         f"{q[key]:.1f}× ({_ms(t[key]['min'])}; CPU time "
                         f"{ck['over_stream_cpu'][key]:.1f}×; {q64[key]:.1f}× the int64 stream; "
                         f"{note})", f"≤ {TARGETS[target]}", q[key] <= TARGETS[target]))
        rows.append(("completion GD step 1 / 2 threads; the kernel before (scalar, serial); "
                     "scipy.sparse iteration (as a user writes it)",
                     f"{_ms(t['gd_step_1t']['min'])} / {_ms(t['gd_step_2t']['min'])}; before "
                     f"{_ms(t['kernel_before']['min'])} ({q['kernel_before']:.1f}× the stream)"
                     f"; scipy {_ms(t['scipy_sparse']['min'])} ({q['scipy_sparse']:.0f}× the "
                     f"stream, {t['scipy_sparse']['min'] / t['kernel_1t']['min']:.1f}× matsense "
                     "1 thread)", "—", None))
        rows.append(("completion kernel: 1 and 2 threads bitwise equal; scipy within 1e-12",
                     f"{ck['threads_bitwise_equal']}, {ck['scipy_max_rel_diff']:.1e}",
                     "True, ≤ 1e-12",
                     bool(ck["threads_bitwise_equal"] and ck["scipy_max_rel_diff"] <= 1e-12)))
        l3 = ck["l3_bytes"]
        rows.append(("host: L3, float64 GEMM rate (next to the times above)",
                     f"{'?' if l3 is None else f'{l3 / 2**20:.0f} MiB'}, "
                     f"{ck['gemm_float64_flops'] / 1e9:.0f} GFLOP/s", "—", None))
    for cv in res.get("converge", []):
        if "error" in cv:
            continue
        name = "GD" if cv.get("method", "gd") == "gd" else "rebalanced GD"
        rows.append((f"completion {name} to rel. error 1e-6, k = {cv['k']} (η = {cv['eta']}, "
                     f"α = {cv['alpha']})",
                     f"{cv['status']} after {cv['iterations']} iterations, {cv['wall_s']:.0f} s "
                     f"wall, rel. error {cv['final_rel_error']:.2e}",
                     "reaches 1e-6", cv["final_rel_error"] <= TARGETS["converge_rel_error"]))
    ga = res.get("gaussian")
    if ga and "error" not in ga:
        for B in (1, 8):
            g = ga[f"B{B}"]
            cpu = g["times"]["factored"]["cpu_min"] / g["times"]["old"]["cpu_min"]
            rows.append((f"dense Gaussian n={ga['n']}, m={ga['m']}, k={ga['k']}, B={B}: "
                         "factored / old", f"{g['factored_over_old']:.3f} "
                         f"({_ms(g['times']['factored']['min'])} vs {_ms(g['times']['old']['min'])}"
                         f"; CPU-time ratio {cpu:.3f})",
                         "≤ 1 (noise ±5%)", g["factored_over_old"] <= 1.05))
    tc = res.get("torch")
    if tc and "error" not in tc and "skipped" not in tc:
        for name in ("rank_one", "completion"):
            t = tc[name]["times"]
            one = (f"; 1 torch thread {_ms(t['torch_1_thread']['min'])}"
                   if "torch_1_thread" in t else "")
            rows.append((f"{name.replace('_', '-')} GD step, torch CPU / NumPy (no target)",
                         f"{tc[name]['torch_over_numpy']:.2f} ({_ms(t['torch']['min'])} vs "
                         f"{_ms(t['numpy']['min'])}{one})", "—", None))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--converge-budget", type=float, default=None,
                    help="wall seconds per convergence run (default 600; --quick 20)")
    ap.add_argument("--converge-iters", type=int, default=3000)
    ap.add_argument("--converge-method", choices=("gd", "rebalanced_gd"), default="gd",
                    help="the convergence runs' method: plain GD (default) or GD with the "
                         "paper's one rebalancing step")
    ap.add_argument("--converge-ks", default=None,
                    help="comma-separated k of the convergence runs (default 5,10)")
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / "results"
                                          / "bench_ensembles.json"))
    ap.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, default=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.converge_budget is None:
        args.converge_budget = 20.0 if args.quick else 600.0
    if args.child:
        return child(args)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(CASES)
    if unknown:
        ap.error(f"unknown cases {sorted(unknown)}; known: {', '.join(CASES)}")
    info = C.machine_info()
    print(f"# machine: {info.get('cpu')}, {info['cpu_count']} cores, load {info.get('load_average')}")
    t_start = time.perf_counter()
    res = {"info": info, "quick": args.quick, "sizes": QUICK if args.quick else FULL,
           "targets": TARGETS}
    for name in cases:
        if name == "converge":
            ks = (QUICK if args.quick else FULL)["converge"]["ks"]
            if args.converge_ks:
                ks = tuple(int(k) for k in args.converge_ks.split(","))
            res["converge"] = [_run_child(name, args, ("--k", str(k))) for k in ks]
        else:
            res[name] = _run_child(name, args)
        if name != "converge" and "error" in res[name]:
            print(f"# {name} failed:\n{res[name]['error']}")
    rows = verdicts(res)
    res["verdicts"] = [dict(measure=a, value=b, target=c, met=d) for a, b, c, d in rows]
    res["wall_s"] = time.perf_counter() - t_start
    res["load_end"] = os.getloadavg()
    print(f"{'measure':70} {'value':60} {'target':18} met")
    for a, b, c, d in rows:
        print(f"{a:70} {b:60} {c:18} {'—' if d is None else 'yes' if d else 'NO'}")
    if args.quick:
        print("# --quick: tiny sizes (a smoke run); the verdicts are for the full sizes' targets "
              "and mean nothing here")
    print(f"# wall {res['wall_s']:.0f} s; load at end {res['load_end']}")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1, default=float))
    print(f"# wrote {path}")
    return res


if __name__ == "__main__":
    main()
