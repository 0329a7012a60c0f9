"""Per-iteration cost of matrix sensing GD against the machine's memory and GEMM limits.

One run measures, for n in --sizes (default 50, 100, 200), r = 3, m = 5·n·r,
float64 and float32:

* the machine: DRAM read bandwidth (all cores, 1 GiB array), GEMM rate;
* the floors: one trajectory must read A once, floor = bytes(A) / bandwidth;
  B trajectories sharing A do two GEMMs, floor = max(4·B·m·n1·n2 / GEMM rate,
  bytes(A) / bandwidth), reported per trajectory;
* per-iteration times of
  (a) matsense, one trajectory: the operator call alone (``residual_and_adjoint``)
      and one full GD step through the method;
  (b) matsense, B = --batch trajectories (one GD step, per trajectory);
  (c) the usual two-pass implementation (A @ p, then Aᵀ @ r) in NumPy, and
      in torch on the CPU (and matsense's GD step on torch) if installed;
  (d) a straightforward per-measurement implementation (np.einsum over the
      m×n1×n2 tensor);
  (e) the symmetric packed operator (one X Xᵀ step; its floor is its own bytes);
* each as a ratio to its floor, and the peak memory allocated during one
  iteration (tracemalloc) next to the operator's size. Two ratios: ``ratio``
  uses the best bandwidth seen anywhere in the run (never flattering: on a
  shared host the probes vary by ±30% as other tenants come and go), and
  ``local`` the better of the two probes taken just before and just after
  the row's group (the bandwidth the kernel actually had available);
* the driver's overhead (``matsense.run``) per iteration at the settings of
  PAPER.md §5 (n = 30, m = 900) and n = 100, m = 1500.

With a CUDA GPU visible to torch the same rows are measured on it
(``--device cuda``; default: cuda when available). Results: a table on stdout
and JSON (``--json``).

Usage::

    python benchmarks/bench_iteration.py               # a few minutes on 2 cores
    python benchmarks/bench_iteration.py --quick       # n = 50, 100; fewer repetitions
    python benchmarks/bench_iteration.py --sizes 100 --dtypes float64
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import matsense as ms  # noqa: E402
from matsense.init import small_random, symmetric_random  # noqa: E402
from matsense.methods.base import product  # noqa: E402
from matsense import threads  # noqa: E402
from matsense.operators import blocking  # noqa: E402
from matsense.operators.kernels.numba_kernel import numba_available  # noqa: E402

R = 3
K = 3


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _row(label, t, nbytes, flops=0.0, per=1, extra=None):
    """A measured row: time per iteration (per trajectory if ``per`` > 1) and what bounds it.

    The floor is filled in by :func:`finalize` once the run's best bandwidth is known:
    floor = max(nbytes / bandwidth, flops / GEMM rate) / per.
    """
    row = {"impl": label, "time_s": t["min"] / per, "time_median_s": t["median"] / per,
           "reps": t["reps"], "floor_bytes": nbytes, "floor_flops": flops, "per": per}
    row.update(extra or {})
    return row


def finalize(group, bandwidth, gemm):
    """Floors and ratios for every row of a group, from the final machine limits."""
    for row in group["rows"]:
        floor = max(row["floor_bytes"] / bandwidth, row["floor_flops"] / gemm) / row["per"]
        row["floor_s"] = floor
        row["ratio"] = row["time_s"] / floor
        local = group.get("bandwidth_here_Bps")
        if local:
            row["ratio_local"] = row["time_s"] / (
                max(row["floor_bytes"] / local, row["floor_flops"] / gemm) / row["per"])
        if row["floor_flops"]:
            row["gemm_fraction"] = row["floor_flops"] / (row["time_s"] * row["per"]) / gemm
        if "dense_bytes" in row:
            row["ratio_to_dense_floor"] = row["time_s"] / (row["dense_bytes"] / bandwidth)


# ------------------------------------------------------------------ CPU rows
def bench_cpu(n, dtype, B, machine, args):
    m = 5 * n * R
    problem = ms.Problem.gaussian(n, r=R, m=m, seed=0)
    if dtype != "float64":
        problem = problem.to(dtype=dtype)
    gc.collect()
    op = problem.operator
    A, y = op.A_flat, problem.y
    N = n * n
    # Bandwidth re-measured next to each group (a shared machine drifts); floors
    # use the best bandwidth seen in the whole run, so ratios are never flattered.
    local = C.memory_read_bandwidth(0.5, reps=3)
    machine["bandwidth_Bps"] = max(machine["bandwidth_Bps"], local["best"])
    nb = op.nbytes
    flopsB = 4.0 * B * m * N
    budget = args.budget
    rows = []
    info = {"n": n, "m": m, "dtype": dtype, "operator_bytes": nb,
            "bandwidth_here_Bps": local["best"], "load_average": os.getloadavg()}

    F0, G0 = small_random(problem, K, 0.1, seed=1)
    F1, G1 = F0[None].astype(dtype), G0[None].astype(dtype)
    P1 = np.ascontiguousarray(product((F1, G1)))
    p1 = P1.reshape(1, N)

    # (a) single trajectory: operator alone (each one-pass kernel), and one GD step
    kernels = [("numba", None)] if numba_available() else []
    n_threads = threads.kernel_threads(nb)
    kernels.append((f"numpy-blocked x{n_threads}", blocking.block_rows_for(N, A.dtype.itemsize)))
    for name, block_rows in kernels:
        op.block_rows = block_rows
        t = C.timeit(lambda: problem.residual_and_adjoint(P1), budget_s=budget)
        peak = C.traced_peak(lambda: problem.residual_and_adjoint(P1))
        rows.append(_row(f"matsense op (B=1), {name} one-pass", t, nb,
                         extra={"peak_alloc_bytes": peak}))
    op.block_rows = None
    gd = ms.GD(step_size=0.3)
    st = gd.init(problem, (F1, G1))
    # One GD step with each one-pass kernel: numba (the [fast] extra) and the NumPy
    # loop (what the default install runs).
    for name, block_rows in kernels:
        op.block_rows = block_rows
        t = C.timeit(lambda: gd.step(problem, st), budget_s=budget)
        peak = C.traced_peak(lambda: gd.step(problem, st))
        rows.append(_row(f"matsense GD step (B=1), {name}", t, nb,
                         extra={"peak_alloc_bytes": peak}))
    op.block_rows = None

    # (b) batched
    FB, GB = small_random(problem, K, [0.1] * B, seed=list(range(B)))
    stB = gd.init(problem, (FB.astype(dtype), GB.astype(dtype)))
    t = C.timeit(lambda: gd.step(problem, stB), min_reps=2, budget_s=budget)
    peak = C.traced_peak(lambda: gd.step(problem, stB))
    rows.append(_row(f"matsense GD step (B={B}), per traj", t, nb, flopsB, B,
                     extra={"peak_alloc_bytes": peak}))

    # (c) the usual two passes, NumPy
    def two_pass():
        r = A @ p1[0] - y
        return r, r @ A
    t = C.timeit(two_pass, budget_s=budget)
    rows.append(_row("numpy two-pass (B=1)", t, nb, extra={"peak_alloc_bytes": C.traced_peak(two_pass)}))

    torch = _torch()
    if torch is not None:
        At, yt = torch.from_numpy(A), torch.from_numpy(y)
        pt = torch.from_numpy(p1[0].copy())
        t = C.timeit(lambda: ((At @ pt - yt) @ At), budget_s=budget)
        rows.append(_row("torch-cpu two-pass (B=1)", t, nb))
        ptorch = problem.to("torch")
        stt = gd.init(ptorch, (torch.from_numpy(F1), torch.from_numpy(G1)))
        t = C.timeit(lambda: gd.step(ptorch, stt), budget_s=budget)
        rows.append(_row("matsense GD step torch-cpu (B=1)", t, nb))
        sttB = gd.init(ptorch, (torch.from_numpy(FB.astype(dtype)), torch.from_numpy(GB.astype(dtype))))
        t = C.timeit(lambda: gd.step(ptorch, sttB), min_reps=2, budget_s=budget)
        rows.append(_row(f"matsense GD step torch-cpu (B={B}), per traj", t, nb, flopsB, B))
        del ptorch, stt, sttB, At

    # (d) per-measurement einsum over the (m, n1, n2) tensor
    if not args.no_einsum:
        A3 = A.reshape(m, n, n)
        P2 = P1[0]

        def einsum_pass():
            r = np.einsum("ijk,jk->i", A3, P2) - y
            return r, np.einsum("i,ijk->jk", r, A3)
        t = C.timeit(einsum_pass, min_reps=1, max_reps=5, budget_s=budget)
        rows.append(_row("numpy einsum per-measurement (B=1)", t, nb))

    # (e) symmetric packed operator on a symmetric problem (X Xᵀ step)
    if not args.no_symmetric:
        del problem, op, A
        gc.collect()
        ps = ms.Problem.gaussian(n, r=R, m=m, symmetric=True, seed=0)
        if dtype != "float64":
            ps = ps.to(dtype=dtype)
        X1 = symmetric_random(ps, K, 0.1, seed=1)[None].astype(dtype)
        dense_bytes = ps.operator.nbytes
        ps = ps.with_symmetric_operator()
        gc.collect()
        sts = gd.init(ps, (X1,))
        t = C.timeit(lambda: gd.step(ps, sts), budget_s=budget)
        rows.append(_row("matsense XXᵀ step, packed symmetric op (B=1)", t, ps.operator.nbytes, extra={
            "operator_bytes": ps.operator.nbytes, "dense_bytes": dense_bytes,
            "peak_alloc_bytes": C.traced_peak(lambda: gd.step(ps, sts))}))
        del ps
    gc.collect()
    # Bandwidth again right after the group: the "local" bandwidth is the better of the
    # probes just before and just after it (other tenants of the host move it by ±30%).
    after = C.memory_read_bandwidth(0.5, reps=3)
    machine["bandwidth_Bps"] = max(machine["bandwidth_Bps"], after["best"])
    info["bandwidth_here_Bps"] = max(info["bandwidth_here_Bps"], after["best"])
    return info, rows


# ------------------------------------------------------------------ GPU rows
def bench_cuda(n, dtype, B, gpu, args):
    torch = _torch()
    sync = torch.cuda.synchronize
    m = 5 * n * R
    problem = ms.Problem.gaussian(n, r=R, m=m, seed=0).to("torch", "cuda", dtype)
    gc.collect()
    op = problem.operator
    N = n * n
    nb = op.nbytes
    info = {"n": n, "m": m, "dtype": dtype, "operator_bytes": nb}
    rows = []
    gd = ms.GD(step_size=0.3)
    F0, G0 = small_random(problem, K, 0.1, seed=1)
    tdt = getattr(torch, dtype)
    F1 = torch.as_tensor(F0[None], dtype=tdt, device="cuda")
    G1 = torch.as_tensor(G0[None], dtype=tdt, device="cuda")
    P1 = product((F1, G1))
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    t = C.timeit(lambda: problem.residual_and_adjoint(P1), budget_s=args.budget, sync=sync)
    rows.append(_row("matsense op cuda (B=1), two-pass", t, nb))
    try:
        import triton  # noqa: F401  (the experimental one-pass kernel, operators/_triton.py)
    except ImportError:
        pass
    else:
        saved = os.environ.get("MATSENSE_KERNEL")
        os.environ["MATSENSE_KERNEL"] = "triton"
        try:
            t = C.timeit(lambda: problem.residual_and_adjoint(P1), budget_s=args.budget, sync=sync)
            rows.append(_row("matsense op cuda (B=1), triton one-pass", t, nb))
        finally:
            if saved is None:
                os.environ.pop("MATSENSE_KERNEL")
            else:
                os.environ["MATSENSE_KERNEL"] = saved
    st = gd.init(problem, (F1, G1))
    t = C.timeit(lambda: gd.step(problem, st), budget_s=args.budget, sync=sync)
    rows.append(_row("matsense GD step cuda (B=1)", t, nb,
                     extra={"peak_alloc_bytes": torch.cuda.max_memory_allocated() - base}))
    FB, GB = small_random(problem, K, [0.1] * B, seed=list(range(B)))
    stB = gd.init(problem, (torch.as_tensor(FB, dtype=tdt, device="cuda"),
                            torch.as_tensor(GB, dtype=tdt, device="cuda")))
    t = C.timeit(lambda: gd.step(problem, stB), budget_s=args.budget, sync=sync)
    rows.append(_row(f"matsense GD step cuda (B={B}), per traj", t, nb, 4.0 * B * m * N, B))
    del problem, op, st, stB
    gc.collect()
    torch.cuda.empty_cache()
    return info, rows


def gpu_limits(torch):
    sync = torch.cuda.synchronize
    a = torch.ones(2**30 // 4, device="cuda", dtype=torch.float32)  # 1 GiB
    t = C.timeit(lambda: a.sum(), min_reps=5, budget_s=0.5, sync=sync)
    bw = a.numel() * 4 / t["min"]
    del a
    flops = {}
    for name in ("float64", "float32"):
        dt = getattr(torch, name)
        x = torch.randn(8192, 8192, device="cuda", dtype=dt)
        t = C.timeit(lambda: x @ x, min_reps=3, budget_s=0.5, sync=sync)
        flops[name] = 2 * 8192**3 / t["min"]
        del x
    torch.cuda.empty_cache()
    return {"bandwidth_Bps": bw, "gemm_flops": flops, "name": torch.cuda.get_device_name(0)}


# ------------------------------------------------------------------ driver
def bench_driver(args):
    """matsense.run per iteration vs the bare method step (PAPER.md §5 settings and n = 100)."""
    out = []
    for n, r, m in ((30, 2, 900), (100, 3, 1500)):
        problem = ms.Problem.gaussian(n, r=r, m=m, seed=0)
        F0, G0 = small_random(problem, 4, 0.04, seed=0)
        gd = ms.GD(step_size=0.3)
        iters = 200 if args.quick else 400

        def steps():
            st = gd.init(problem, (F0[None], G0[None]))
            for _ in range(iters):
                st, _ = gd.step(problem, st)

        def run(record_every):
            return lambda: ms.run(problem, gd, (F0, G0), iters=iters, record_every=record_every)
        res = {"n": n, "m": m, "iters": iters}
        for name, fn in (("step_only", steps), ("run_record_every_1", run(1)),
                         ("run_record_every_inf", run(10**9))):
            res[name + "_s"] = C.timeit(fn, min_reps=2, max_reps=3, budget_s=0)["min"] / iters
        res["overhead_record_every_1"] = res["run_record_every_1_s"] / res["step_only_s"] - 1
        res["overhead_record_every_inf"] = res["run_record_every_inf_s"] / res["step_only_s"] - 1
        out.append(res)
    return out


# ------------------------------------------------------------------ main
def fmt_s(x):
    return f"{x * 1e3:9.3f} ms" if x >= 1e-3 else f"{x * 1e6:9.1f} µs"


def show_table(groups):
    header = (f"{'n':>4} {'m':>5} {'dtype':>7}  {'implementation':50} {'time/iter':>12} "
              f"{'floor':>12} {'ratio':>7} {'local':>6}  extra")
    print(header)
    print("-" * len(header))
    for g in groups:
        if "bandwidth_here_Bps" in g:
            print(f"# n={g['n']} {g['dtype']}: A = {g['operator_bytes'] / 2**20:.0f} MiB; bandwidth "
                  f"measured next to this group {g['bandwidth_here_Bps'] / 1e9:.1f} GB/s, "
                  f"load {g['load_average'][0]:.1f}")
        for row in g["rows"]:
            extra = []
            if "gemm_fraction" in row:
                extra.append(f"GEMM {100 * row['gemm_fraction']:.0f}%")
            if "peak_alloc_bytes" in row:
                extra.append(f"peak alloc {row['peak_alloc_bytes'] / 2**20:.2f} MiB")
            if "ratio_to_dense_floor" in row:
                extra.append(f"{row['ratio_to_dense_floor']:.2f}× dense floor")
            print(f"{g['n']:>4} {g['m']:>5} {g['dtype']:>7}  {row['impl']:50} "
                  f"{fmt_s(row['time_s']):>12} {fmt_s(row['floor_s']):>12} {row['ratio']:7.2f} "
                  f"{row.get('ratio_local', float('nan')):6.2f}  "
                  + "; ".join(extra), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=None, help="comma-separated n (default 50,100,200; --quick: 50,100)")
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="n = 50, 100 and shorter timing budgets")
    ap.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    ap.add_argument("--no-einsum", action="store_true")
    ap.add_argument("--no-symmetric", action="store_true")
    ap.add_argument("--no-driver", action="store_true")
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / "results" / "bench_iteration.json"))
    args = ap.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or ("50,100" if args.quick else "50,100,200")).split(",")]
    dtypes = [ms.backend.check_dtype(d) for d in args.dtypes.split(",")]
    args.budget = 0.2 if args.quick else 0.6
    torch = _torch()
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch is not None
                                         and torch.cuda.is_available())
    if args.device == "cuda":
        ms.backend.target("torch", "cuda", "float32")  # one-line ValueError if impossible

    t_start = time.perf_counter()
    info = C.machine_info()
    print(f"# machine: {info.get('cpu')}, {info['cpu_count']} cores, load {info.get('load_average')}")
    bwd = C.memory_read_bandwidth(0.5 if args.quick else 1.0)
    bw = bwd["best"]
    bw1 = C.memory_read_bandwidth(0.5 if args.quick else 1.0, threads=1)["threaded_sum"]
    gemm = {d: C.gemm_rate(d) for d in dtypes}
    machine = {"bandwidth_Bps": bw, "bandwidth_start": bwd, "bandwidth_1thread_Bps": bw1,
               "gemm_flops": gemm, "numba": numba_available(),
               "block_bytes": blocking.default_block_bytes(),
               "llc_bytes": blocking.last_level_cache_bytes()}
    print(f"# memory read bandwidth: {bw / 1e9:.1f} GB/s ({os.cpu_count()} threads), "
          f"{bw1 / 1e9:.1f} GB/s (1 thread); GEMM: "
          + ", ".join(f"{d} {g / 1e9:.1f} GFLOP/s" for d, g in gemm.items())
          + f"; numpy fused block {machine['block_bytes'] / 2**20:.1f} MiB; numba "
          + ("available" if machine["numba"] else "not installed"))
    results = {"machine": machine, "info": info, "batch": args.batch, "r": R, "k": K, "cpu": [], "cuda": []}

    for n in sizes:
        for dtype in dtypes:
            print(f"# measuring n={n} {dtype} on the CPU ...", flush=True)
            i, rows = bench_cpu(n, dtype, args.batch, machine, args)
            results["cpu"].append({**i, "rows": rows})
    for group in results["cpu"]:
        finalize(group, machine["bandwidth_Bps"], machine["gemm_flops"][group["dtype"]])
    print(f"# floors use bandwidth {machine['bandwidth_Bps'] / 1e9:.1f} GB/s (best seen in this run)")
    show_table(results["cpu"])
    if use_cuda:
        gpu = gpu_limits(torch)
        results["gpu"] = gpu
        print(f"# GPU {gpu['name']}: bandwidth {gpu['bandwidth_Bps'] / 1e9:.0f} GB/s; GEMM "
              + ", ".join(f"{d} {g / 1e12:.1f} TFLOP/s" for d, g in gpu["gemm_flops"].items()))
        for n in sizes:
            for dtype in dtypes:
                i, rows = bench_cuda(n, dtype, args.batch, gpu, args)
                group = {**i, "rows": rows}
                finalize(group, gpu["bandwidth_Bps"], gpu["gemm_flops"][dtype])
                results["cuda"].append(group)
        show_table(results["cuda"])
    else:
        print("# no CUDA GPU visible to torch: GPU rows not measured")

    if not args.no_driver:
        results["driver"] = bench_driver(args)
        print("# driver overhead (matsense.run vs bare GD steps, float64, B = 1):")
        for d in results["driver"]:
            print(f"#   n={d['n']:>3} m={d['m']:>5}: step {fmt_s(d['step_only_s'])}, "
                  f"run(record_every=1) {fmt_s(d['run_record_every_1_s'])} "
                  f"(+{100 * d['overhead_record_every_1']:.0f}%), "
                  f"run(record_every=∞) {fmt_s(d['run_record_every_inf_s'])} "
                  f"(+{100 * d['overhead_record_every_inf']:.0f}%)")

    results["machine_bandwidth_final_Bps"] = machine["bandwidth_Bps"]
    results["max_rss_bytes"] = C.max_rss_bytes()
    results["wall_s"] = time.perf_counter() - t_start
    results["info"]["load_average_end"] = os.getloadavg()
    print(f"# peak RSS {results['max_rss_bytes'] / 2**20:.0f} MiB; wall {results['wall_s']:.0f} s; "
          f"load at end {results['info']['load_average_end']}")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=float))
    print(f"# wrote {path}")
    return results


if __name__ == "__main__":
    main()
