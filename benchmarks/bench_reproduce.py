"""Time ``matsense.experiments.reproduce`` in quick and full mode.

Targets (the task's budget): full ≤ 3 minutes and quick ≤ 30 s on a 2-core
CPU. Each mode runs in a fresh subprocess (so imports, matplotlib's font
cache and BLAS threads start the same way every time) and reports:

* wall seconds of the whole ``reproduce`` call, and the process CPU seconds
  (user + system, all threads): on a busy machine the wall time inflates,
  the CPU time much less; with one BLAS thread, CPU time is about the wall
  time the same work takes on an idle core;
* the seconds per claim, and per run of each seed;
* the verdicts (how many claims hold);
* the machine: CPU count, load average before the run, BLAS threads.

Usage::

    python benchmarks/bench_reproduce.py                 # quick, then full
    python benchmarks/bench_reproduce.py --modes quick   # quick only
    python benchmarks/bench_reproduce.py --threads 1     # OPENBLAS/OMP/MKL_NUM_THREADS=1
    python benchmarks/bench_reproduce.py --json bench_reproduce.json
"""

from __future__ import annotations

import argparse
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
mode, out = sys.argv[1], sys.argv[2]
r0 = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
results = reproduce(out, quick=(mode == "quick"))
wall = time.perf_counter() - start
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({
    "wall_s": wall, "cpu_s": cpu, "import_s": t_import,
    "claims": {r.id: {"holds": r.holds, "seconds": r.seconds, "measured": r.measured,
                      "reason": r.reason} for r in results},
    "n_hold": sum(r.holds for r in results), "n_claims": len(results),
    "seeds": results[0].seeds if results else [],
}))
"""


def run_mode(mode: str, threads: int | None, keep: Path | None) -> dict:
    env = dict(os.environ)
    if threads is not None:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = keep / mode if keep else Path(tmp) / mode
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _CHILD, mode, str(out)], env=env,
                              capture_output=True, text=True)
        total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"reproduce({mode}) failed:\n{proc.stderr[-4000:]}")
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec.update(mode=mode, process_wall_s=total, load_before=load, budget_s=BUDGET_S[mode],
               within_budget_wall=rec["wall_s"] <= BUDGET_S[mode],
               within_budget_cpu=rec["cpu_s"] <= BUDGET_S[mode])
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", nargs="+", default=["quick", "full"], choices=["quick", "full"])
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS threads in the child (default: leave the environment alone)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--keep", type=Path, default=None, help="keep the outputs under this folder")
    args = ap.parse_args(argv)

    machine = {"cpu_count": os.cpu_count(), "python": platform.python_version(),
               "platform": platform.platform(),
               "blas_threads": args.threads if args.threads is not None
               else os.environ.get("OPENBLAS_NUM_THREADS", "default")}
    records = []
    for mode in args.modes:
        rec = run_mode(mode, args.threads, args.keep)
        records.append(rec)
        load = rec["load_before"]
        load_txt = f", load average before {load[0]:.1f}" if load else ""
        print(f"{mode:5s}: wall {rec['wall_s']:6.1f} s, cpu {rec['cpu_s']:6.1f} s "
              f"(budget {rec['budget_s']:.0f} s; import {rec['import_s']:.1f} s), "
              f"{rec['n_hold']}/{rec['n_claims']} claims hold, seeds {rec['seeds']}{load_txt}")
        for cid, c in rec["claims"].items():
            print(f"    {cid}: {c['seconds']:6.1f} s  {'holds' if c['holds'] else 'NO: ' + str(c['reason'])}")
    payload = {"machine": machine, "results": records}
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
