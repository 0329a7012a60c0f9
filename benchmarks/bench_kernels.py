"""The default install's speed: the planner's kernel choice, ``ms.run`` with default arguments.

Issue #11's targets, measured side by side in one run (ratios, never absolute times):

1. **Planner grid.** For n ∈ --sizes (default 30, 50, 100, 200; r = 3, m = 5·n·r,
   float64) and B ∈ --batches (default 1, 2, 4, 64): the operator call
   ``residual_and_adjoint`` timed with every kernel forced (``MATSENSE_KERNEL``
   = numba, numpy, two-pass) and with the default (``auto``: the planner's pick,
   planned once before timing), in interleaved rounds so that drifting load hits
   all alike. Reported: each kernel's median, the pick, and auto / two-pass
   (target: ≤ 1 everywhere, "never slower than the two-pass code"). Done twice:
   on a quiet machine and with one core kept busy by a spinning process
   (``--no-busy`` skips that half).
2. **``ms.run`` with default arguments** at n = 100, m = 1500, k = 6, B = 1
   (what users time) against one BLAS pass over A (``A_flat @ p``, the memory
   floor of reading A once): target ≤ 1.25×; with ``record_every=10``: ≤ 1.15×.
   Also the cost of one history row (``record_every=1`` vs no recording) as a
   share of an iteration (target ≤ 5 %): the difference of the time each run
   spends outside its steps (GD's step is timed), paired by round — the whole
   runs' difference is reported too, but their memory-bound passes vary by
   more than the row costs — and the planner's overhead as a share
   of a 1000-iteration run (target ≤ 2 %).
3. **numba's first call** in a fresh process: compiling into an empty cache
   (cold) and loading from the on-disk cache (warm); the same for the history
   row's kernel (``diagnostics.row_stats``), called after it.

Usage::

    python benchmarks/bench_kernels.py              # ~5 minutes on 2 cores
    python benchmarks/bench_kernels.py --quick      # n = 30, 100; B = 1, 4; no busy half
    python benchmarks/bench_kernels.py --tiny       # seconds: a smoke test of the script
    python benchmarks/bench_kernels.py --run-only   # part 2 (and 3) only, ~1 minute

Results: a table on stdout and JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import matsense as ms  # noqa: E402
from matsense.operators import planner  # noqa: E402
from matsense.operators.dispatch import planned_kernel  # noqa: E402

FORCED = ("numba", "numpy", "two-pass")
R = 3


def _forced(kernel: str | None):
    """Set MATSENSE_KERNEL (None: unset, the default 'auto')."""
    if kernel is None:
        os.environ.pop("MATSENSE_KERNEL", None)
    else:
        os.environ["MATSENSE_KERNEL"] = kernel


def _interleaved(fns: dict, rounds: int, inner: int) -> dict:
    """Median seconds per call of each fn, timed in ``rounds`` interleaved rounds of
    ``inner`` calls (the order rotates every round). Each block starts with one untimed
    call: switching kernels leaves the previous one's threads (OpenBLAS's spin) on the
    cores for a few milliseconds, a cost no run of one kernel pays."""
    names = list(fns)
    samples = {k: [] for k in names}
    for i in range(rounds):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            setup, fn = fns[name]
            setup()
            fn()
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - t0) / inner)
    _forced(None)
    return {k: statistics.median(v) for k, v in samples.items()}


def grid(sizes, batches, rounds, busy: bool) -> list[dict]:
    """Part 1: the kernels forced and the planner's pick, per (n, B)."""
    out = []
    for n in sizes:
        problem = ms.Problem.gaussian(n, r=R, m=5 * n * R, seed=0)
        op, y = problem.operator, problem.y
        rng = np.random.default_rng(1)
        for B in batches:
            P = rng.standard_normal((B, n, n)) / n
            call = lambda: op.residual_and_adjoint(P, y)  # noqa: E731
            planner.clear_plans()
            _forced(None)
            call()  # plans
            pick = planned_kernel(op, B)
            plan = next((p for p in planner.plans() if p["key"][2] == B), {})
            fns = {k: ((lambda k=k: _forced(k)), call) for k in FORCED}
            fns["auto"] = ((lambda: _forced(None)), call)
            for k in fns:  # warm each kernel (numba's threads, the NumPy pool)
                fns[k][0]()
                call()
            one = C.timeit(call, min_reps=3, max_reps=3, budget_s=0)["min"]
            inner = max(1, int(0.02 / max(one, 1e-6)))
            med = _interleaved(fns, rounds, inner)
            out.append({"n": n, "B": B, "busy": busy, "pick": pick, "median_s": med,
                        "auto_over_two_pass": med["auto"] / med["two-pass"],
                        "auto_over_best_forced": med["auto"] / min(med[k] for k in FORCED),
                        "planning_overhead_s": plan.get("overhead_s")})
    return out


class BusyCore:
    """One process spinning on a core for the duration of the block."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


class TimedGD(ms.GD):
    """GD whose steps (the operator pass and the update) are timed, so that a run's time
    splits into its steps and the driver's work around them (stopping, recording). That
    second part is what a history row adds to, and it is far steadier than the whole run,
    whose memory-bound passes carry the machine's noise (±5 % between rounds here)."""

    step_seconds = 0.0

    def step(self, problem, state):
        t0 = time.perf_counter()
        out = super().step(problem, state)
        TimedGD.step_seconds += time.perf_counter() - t0
        return out


def run_defaults(iters: int, rounds: int) -> dict:
    """Part 2: ms.run with default arguments against one BLAS pass over A."""
    problem = ms.Problem.gaussian(100, r=R, m=1500, seed=0)
    A = problem.operator.A_flat
    p = np.random.default_rng(2).standard_normal(A.shape[1])
    F0, G0 = ms.init.small_random(problem, k=6, alpha=0.04, seed=0)
    gd = TimedGD(step_size=0.3)  # two clock reads per step: ~0.1 µs of a ~4 ms iteration
    planner.clear_plans()
    first = ms.run(problem, gd, (F0, G0), iters=iters)  # plans (the default: auto)
    plan_overhead = sum(p.get("overhead_s") or 0.0 for p in planner.plans())

    def steps():
        st = gd.init(problem, (F0[None], G0[None]))
        for _ in range(iters):
            st, _ = gd.step(problem, st)

    fns = {
        "one_blas_pass": (lambda: None, lambda: A @ p),
        "run_default": (lambda: None, lambda: ms.run(problem, gd, (F0, G0), iters=iters)),
        "run_record_every_10": (lambda: None,
                                lambda: ms.run(problem, gd, (F0, G0), iters=iters,
                                               record_every=10)),
        "run_no_recording": (lambda: None,
                             lambda: ms.run(problem, gd, (F0, G0), iters=iters,
                                            record_every=10**9)),
        "bare_steps": (lambda: None, steps),
    }
    blas_inner = max(1, int(0.02 / C.timeit(lambda: A @ p, max_reps=5, budget_s=0)["min"]))
    samples = {k: [] for k in fns}
    outside = {k: [] for k in fns}  # per iteration, the time outside the steps
    for i in range(rounds):
        for name in (list(fns)[i % len(fns):] + list(fns)[:i % len(fns)]):
            fn = fns[name][1]
            inner = blas_inner if name == "one_blas_pass" else 1
            if name == "one_blas_pass":
                fn()  # untimed: the threads of the run before leave the cores first
            TimedGD.step_seconds = 0.0
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            per = (time.perf_counter() - t0) / inner
            samples[name].append(per if name == "one_blas_pass" else per / (iters + 1))
            outside[name].append((per - TimedGD.step_seconds) / (iters + 1))
    med = {k: statistics.median(v) for k, v in samples.items()}
    # A history row: what recording every iteration adds outside the steps, paired by round.
    row_s = statistics.median(a - b for a, b in zip(outside["run_default"],
                                                    outside["run_no_recording"]))
    blas = med["one_blas_pass"]
    run_1000 = med["run_default"] * 1000
    return {
        "n": 100, "m": 1500, "k": 6, "iters": iters, "kernel": first.config.get("kernel"),
        "median_s": med,
        "run_default_over_blas": med["run_default"] / blas,
        "run_record_every_10_over_blas": med["run_record_every_10"] / blas,
        "history_row_share": (med["run_default"] - med["run_no_recording"])
        / med["run_no_recording"],
        # The same, paired by round (both runs of a round see the same load): the median of
        # the per-round differences — less noisy than the difference of two medians.
        "history_row_share_paired": statistics.median(
            (a - b) / b for a, b in zip(samples["run_default"], samples["run_no_recording"])),
        # The estimator of the target: the row's own time (outside the steps, paired by
        # round) over an iteration of the run without recording.
        "history_row_s": row_s,
        "history_row_share_outside_steps": row_s / med["run_no_recording"],
        "outside_steps_s": {k: statistics.median(v) for k, v in outside.items()
                            if k.startswith("run_")},
        "planner_overhead_s": plan_overhead,
        "planner_share_of_1000_iterations": plan_overhead / run_1000,
    }


_FIRST_CALL = """
import time, numpy as np, os
os.environ["MATSENSE_KERNEL"] = "numba"
import matsense as ms
p = ms.Problem.gaussian(20, r=2, m=200, seed=0)
P = np.zeros((1, 20, 20))
t0 = time.perf_counter(); p.operator.residual_and_adjoint(P, p.y); t1 = time.perf_counter()
p.operator.residual_and_adjoint(P, p.y); t2 = time.perf_counter()
F, G = (x[None] for x in ms.init.small_random(p, 3, 0.1, seed=0))
row = lambda: ms.diagnostics.row_stats((F, G), M_star=p.M_star, U=p.U_star, V=p.V_star,
                                       Delta0=np.zeros((1, 3, 3)), singular_values=True)
t3 = time.perf_counter(); row(); t4 = time.perf_counter(); row(); t5 = time.perf_counter()
print(t1 - t0, t2 - t1, t4 - t3, t5 - t4)
"""


def numba_first_call() -> dict:
    """Part 3: numba's first call in a fresh process, cold cache then warm cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        env.pop("MATSENSE_KERNEL", None)
        times, rows = [], []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, check=True,
                                 capture_output=True, text=True).stdout.split()
            times.append(float(out[0]) - float(out[1]))
            rows.append(float(out[2]) - float(out[3]))
    # The history row's kernel (diagnostics.row_stats) is compiled on a run's first record.
    return {"cold_s": times[0], "warm_s": times[1], "row_cold_s": rows[0], "row_warm_s": rows[1]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="30,50,100,200")
    ap.add_argument("--batches", default="1,2,4,64")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--no-busy", action="store_true")
    ap.add_argument("--run-only", action="store_true", help="part 2 (ms.run defaults) only")
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / "results"
                                          / "bench_kernels.json"))
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(s) for s in args.batches.split(",")]
    rounds, iters = args.rounds, 300
    if args.quick:
        sizes, batches, args.no_busy = [30, 100], [1, 4], True
    if args.tiny:
        sizes, batches, rounds, iters, args.no_busy = [12], [1, 2], 3, 20, True
    wall = time.perf_counter()
    results = {"machine": C.machine_info(), "load_start": os.getloadavg()}
    # ms.run first, as a user's session starts: planned after the grid, its planner timed
    # numba while the grid's last multi-threaded GEMMs (n = 200, B = 64) still had OpenBLAS
    # threads spinning on both cores, and once picked two-pass (2.44× one BLAS pass).
    results["run"] = run_defaults(iters, rounds)
    results["grid"] = [] if args.run_only else grid(sizes, batches, rounds, busy=False)
    if not (args.no_busy or args.run_only):
        with BusyCore():
            results["grid"] += grid(sizes, batches, rounds, busy=True)
    results["numba_first_call"] = numba_first_call()
    results["load_end"] = os.getloadavg()
    results["wall_s"] = time.perf_counter() - wall

    print(f"# load at start {results['load_start']}, at end {results['load_end']}; "
          f"wall {results['wall_s']:.0f} s")
    print(f"{'n':>4} {'B':>3} {'busy':>5} " + " ".join(f"{k:>10}" for k in FORCED + ("auto",))
          + f" {'pick':>9} {'auto/2pass':>10}")
    for row in results["grid"]:
        med = row["median_s"]
        print(f"{row['n']:4d} {row['B']:3d} {str(row['busy']):>5} "
              + " ".join(f"{med[k] * 1e3:8.3f}ms" for k in FORCED + ("auto",))
              + f" {str(row['pick']):>9} {row['auto_over_two_pass']:10.2f}")
    run = results["run"]
    print(f"# ms.run defaults (n=100, m=1500, k=6, kernel {run['kernel']}): "
          f"{run['run_default_over_blas']:.2f}x one BLAS pass (target <= 1.25); "
          f"record_every=10: {run['run_record_every_10_over_blas']:.2f}x (<= 1.15); "
          f"history row {1e6 * run['history_row_s']:.0f} us = "
          f"{100 * run['history_row_share_outside_steps']:.1f} % of an iteration (<= 5 %; "
          f"whole runs: difference of medians {100 * run['history_row_share']:.1f} %, "
          f"paired by round {100 * run['history_row_share_paired']:.1f} %); "
          f"planner {100 * run['planner_share_of_1000_iterations']:.2f} % of 1000 "
          f"iterations (<= 2 %)")
    first = results["numba_first_call"]
    print(f"# numba first call in a fresh process: cold cache {first['cold_s']:.2f} s, "
          f"warm cache {first['warm_s']:.2f} s; the history row's kernel after it: "
          f"{first['row_cold_s']:.2f} s, {first['row_warm_s']:.2f} s")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
