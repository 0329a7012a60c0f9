"""Time ``matsense.experiments.reproduce`` in quick and full mode.

Targets (the task's budget): full ≤ 3 minutes and quick ≤ 30 s on a 2-core
CPU. Each mode runs in a fresh subprocess (so imports, matplotlib's font
cache and BLAS threads start the same way every time) and reports:

* wall seconds of the whole ``reproduce`` call, and the CPU seconds of the
  process and of its worker processes (user + system, all threads): on a busy machine the wall time inflates,
  the CPU time much less; with one BLAS thread, CPU time is about the wall
  time the same work takes on an idle core;
* the seconds per claim, and per run of each seed;
* the verdicts (how many claims hold);
* the machine: CPU count, load average before the run, BLAS threads.

Four variants side by side (``--variants``; all by default):
``matsense`` as installed (the numba kernel when numba is there; the runs
built by worker processes, one per core), ``matsense-numpy`` (the NumPy
one-pass loop: what the default install runs without the ``[fast]`` extra),
``matsense-serial`` (as installed, ``workers=1``: batching and kernels
without worker processes) and a **baseline**: the same ``reproduce`` call
with the speed work of issue #3 turned off — every trajectory run on its own
instead of in batches, the textbook two-pass operator
(``MATSENSE_KERNEL=two-pass``: A @ p, then Aᵀ @ r) and BLAS left at its
default thread count (``MATSENSE_BLAS_THREADS=default``). That is how the
foundation ran before the speed work (no commit of the package pre-dates
it, so the baseline is rebuilt from these switches). The report gives each
variant's speed-up over the baseline per mode and checks that the results
are the same: the same verdicts, and every number of the claims' details
equal to 1e-6 relative (or 1e-12 absolute); the numbers that are not are
listed (expected only at the rounding level, e.g. a ratio to an error of
1e-15).

Usage::

    python benchmarks/bench_reproduce.py                 # quick, then full; all variants
    python benchmarks/bench_reproduce.py --modes quick   # quick only
    python benchmarks/bench_reproduce.py --variants matsense   # no baseline
    python benchmarks/bench_reproduce.py --threads 1     # OPENBLAS/OMP/MKL_NUM_THREADS=1
    python benchmarks/bench_reproduce.py --json bench_reproduce.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = {"quick": 30.0, "full": 180.0}

_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from matsense.experiments import reproduce
t_import = time.perf_counter() - t0
mode, out, variant = sys.argv[1], sys.argv[2], sys.argv[3]
if variant == "baseline":
    sys.path.insert(0, sys.argv[4])
    import bench_reproduce
    bench_reproduce.install_unbatched_runs()
def _cpu():  # this process and its finished children (reproduce's worker processes)
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                   resource.getrusage(resource.RUSAGE_CHILDREN)))
c0 = _cpu()
start = time.perf_counter()
workers = None if sys.argv[5] == "auto" else int(sys.argv[5])
results = reproduce(out, quick=(mode == "quick"), workers=workers)
wall = time.perf_counter() - start
cpu = _cpu() - c0
print(json.dumps({
    "wall_s": wall, "cpu_s": cpu, "import_s": t_import,
    "claims": {r.id: {"holds": r.holds, "seconds": r.seconds, "measured": r.measured,
                      "reason": r.reason, "details": r.as_dict()["details"]} for r in results},
    "n_hold": sum(r.holds for r in results), "n_claims": len(results),
    "seeds": results[0].seeds if results else [],
}))
"""


# ----------------------------------------------------------------- baseline
def _stack_trajectories(trs):
    """One batched result from single-trajectory runs (as if run as one batch)."""
    from matsense.trajectory import BatchTrajectory

    return BatchTrajectory.stack(trs)


def install_unbatched_runs():
    """Make the experiments run every trajectory on its own (the baseline's driver).

    Replaces ``matsense.run`` where the experiments import it by a wrapper that
    splits a batched start into single runs and stacks their results, and
    turns off building the runs ahead (in worker processes, one thread each);
    the methods, settings and analysis are untouched.
    """
    from matsense.experiments import drift, runs
    from matsense.run import run as batched_run

    def run_one_at_a_time(problem, method, init, iters=1000, **kwargs):
        factors = init if isinstance(init, tuple) else (init,)
        if factors[0].ndim == 2:
            return batched_run(problem, method, init, iters, **kwargs)
        singles = [batched_run(problem, method,
                               tuple(f[b] for f in factors) if len(factors) > 1 else factors[0][b],
                               iters, **kwargs) for b in range(factors[0].shape[0])]
        return _stack_trajectories(singles)

    runs.run = run_one_at_a_time
    drift.run = run_one_at_a_time
    # Nothing built ahead (no worker processes) and no forced single thread: each claim
    # builds the runs it needs when it reads them, with BLAS's default threads, as before.
    runs.compute_runs = lambda *args, **kwargs: 1
    runs.single_threaded = contextlib.nullcontext


#: variant -> (environment, reproduce's workers).
VARIANTS = {
    "matsense": ({}, "auto"),
    # The default install without numba: the NumPy one-pass loop.
    "matsense-numpy": ({"MATSENSE_KERNEL": "numpy"}, "auto"),
    # One process: what batching and the kernels give without worker processes.
    "matsense-serial": ({}, "1"),
    # The baseline patches matsense.run in its process only: it must run there, serially.
    "baseline": ({"MATSENSE_KERNEL": "two-pass", "MATSENSE_BLAS_THREADS": "default"}, "1"),
}


def run_mode(mode: str, variant: str, threads: int | None, keep: Path | None) -> dict:
    env = dict(os.environ)
    if threads is not None:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    variant_env, workers = VARIANTS[variant]
    env.update(variant_env)
    with tempfile.TemporaryDirectory() as tmp:
        out = keep / f"{mode}-{variant}" if keep else Path(tmp) / mode
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _CHILD, mode, str(out), variant,
                               str(Path(__file__).resolve().parent), workers],
                              env=env, capture_output=True, text=True)
        total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"reproduce({mode}, {variant}) failed:\n{proc.stderr[-4000:]}")
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec.update(mode=mode, variant=variant, workers=workers, process_wall_s=total, load_before=load,
               budget_s=BUDGET_S[mode], within_budget_wall=rec["wall_s"] <= BUDGET_S[mode],
               within_budget_cpu=rec["cpu_s"] <= BUDGET_S[mode])
    return rec


def _numbers(obj, path=""):
    """Flatten the numeric leaves of a JSON-like object: {path: value}."""
    if isinstance(obj, dict):
        out = {}
        for key, val in obj.items():
            out.update(_numbers(val, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(obj, list):
        out = {}
        for i, val in enumerate(obj):
            out.update(_numbers(val, f"{path}[{i}]"))
        return out
    if isinstance(obj, bool) or not isinstance(obj, (int, float)):
        return {}
    return {path: float(obj)}


def same_results(a: dict, b: dict, rtol: float = 1e-6, atol: float = 1e-12) -> dict:
    """Compare two runs' claims: verdicts, and every number in their details.

    Numbers agree when equal to ``rtol`` relative or ``atol`` absolute. Those
    that do not are listed: expected only for quantities at the rounding
    level, e.g. a ratio whose denominator is an error of 1e-15, where the last
    bits of the floating-point sums (batched GEMM vs single GEMV) show.
    """
    verdicts = all(a["claims"][c]["holds"] == b["claims"][c]["holds"] for c in a["claims"])
    compared, differ, mismatched = 0, [], []
    for cid in a["claims"]:
        na = _numbers(a["claims"][cid]["details"])
        nb = _numbers(b["claims"][cid]["details"])
        if na.keys() != nb.keys():
            mismatched.append(cid)
        for key in sorted(na.keys() & nb.keys()):
            x, y = na[key], nb[key]
            compared += 1
            if x == y or (x != x and y != y) or abs(x - y) <= atol:
                continue
            rel = abs(x - y) / max(abs(x), abs(y))
            if rel > rtol:
                differ.append({"number": f"{cid}.{key}", "a": x, "b": y, "rel_diff": rel})
    return {"same_verdicts": verdicts, "numbers_compared": compared, "differ": differ,
            "structure_differs": mismatched, "rtol": rtol, "atol": atol}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", nargs="+", default=["quick", "full"], choices=["quick", "full"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS threads in the child (default: leave the environment alone)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--keep", type=Path, default=None, help="keep the outputs under this folder")
    args = ap.parse_args(argv)

    machine = {"cpu_count": os.cpu_count(), "python": platform.python_version(),
               "platform": platform.platform(),
               "blas_threads": args.threads if args.threads is not None
               else os.environ.get("OPENBLAS_NUM_THREADS", "default")}
    try:
        from matsense.operators.kernels.numba_kernel import numba_available
        machine["numba"] = numba_available()
    except ImportError:
        machine["numba"] = False
    records, comparisons = [], []
    for mode in args.modes:
        by_variant = {}
        for variant in args.variants:
            rec = run_mode(mode, variant, args.threads, args.keep)
            records.append(rec)
            by_variant[variant] = rec
            load = rec["load_before"]
            load_txt = f", load average before {load[0]:.1f}" if load else ""
            print(f"{mode:5s} {variant:15s} (workers {rec['workers']}): wall {rec['wall_s']:6.1f} s, cpu {rec['cpu_s']:6.1f} s "
                  f"(budget {rec['budget_s']:.0f} s; import {rec['import_s']:.1f} s), "
                  f"{rec['n_hold']}/{rec['n_claims']} claims hold, seeds {rec['seeds']}{load_txt}",
                  flush=True)
            for cid, c in rec["claims"].items():
                print(f"    {cid}: {c['seconds']:6.1f} s  "
                      f"{'holds' if c['holds'] else 'NO: ' + str(c['reason'])}", flush=True)
        for fast in [v for v in by_variant if v != "baseline"]:
            if "baseline" not in by_variant:
                break
            a, b = by_variant[fast], by_variant["baseline"]
            cmp = same_results(a, b)
            cmp.update(mode=mode, variant=fast, speedup_wall=b["wall_s"] / a["wall_s"],
                       speedup_cpu=b["cpu_s"] / a["cpu_s"])
            comparisons.append(cmp)
            print(f"{mode:5s} baseline / {fast}: wall {cmp['speedup_wall']:.2f}x, "
                  f"cpu {cmp['speedup_cpu']:.2f}x; same verdicts: {cmp['same_verdicts']}; "
                  f"{cmp['numbers_compared'] - len(cmp['differ'])} of {cmp['numbers_compared']} "
                  f"numbers equal to {cmp['rtol']:g} relative (or {cmp['atol']:g} absolute)",
                  flush=True)
            for d in cmp["differ"]:
                print(f"    differs: {d['number']} = {d['a']:.6g} vs {d['b']:.6g} "
                      f"(rel. {d['rel_diff']:.1e})")
            if cmp["structure_differs"]:
                print(f"    different sets of numbers in {cmp['structure_differs']}")
    payload = {"machine": machine, "results": records, "comparisons": comparisons}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
