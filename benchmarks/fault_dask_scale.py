"""Dask at scale with a worker killed mid-batch (issue #21, fault 4).

A sweep of matrix-completion problems at n1 = n2 = 20 000 (m = 4·10⁵ observed entries, 0.1 %)
runs on a loopback :class:`distributed.LocalCluster`; one worker SIGKILLs itself in the middle
of a batch (at its ``--kill-at``-th GD step, after several iterations of that batch). Checked:

* every run of the spec is in the store exactly once, with its full history (no duplicated
  (run, iteration) rows), and none failed or was lost;
* the numbers equal those of the same sweep run locally in one process, bit for bit
  (every history column but the wall time).

It is also a test (tests/test_reliability_round3.py runs this script): on 2 shared cores the
whole check takes about 10 s. Run::

    python benchmarks/fault_dask_scale.py                 # the issue's size
    python benchmarks/fault_dask_scale.py --n 2000 --m 40000 --runs 4   # a smaller one

Result (2026-12-05, 2 shared cores, main after the #21 commits; 4 runs, all alike):

    n1 = n2 = 20000, m = 400000, 6 runs × 40 iterations, 2 Dask workers, one killed at its
    step 15 (yes): dask 5.1–9.5 s, local 2.6–3.6 s
    store: 6 runs (6 distinct), 246 history rows, statuses ['max_iters']
    RESULT: ok — every run once, the same numbers as the local run
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def install_killer(marker: str, kill_at: int):
    """Register 'killer_gd': GD that SIGKILLs its own process at its ``kill_at``-th step
    (counted per process), once (the marker file); the rescheduled batch then runs plain GD."""
    from matsense.methods import GD, METHODS

    steps = [0]

    @dataclass(frozen=True)
    class KillerGD(GD):
        name: str = "killer_gd"

        def step(self, problem, state):
            steps[0] += 1
            if steps[0] == kill_at and not os.path.exists(marker):
                with open(marker, "w") as fh:
                    fh.write(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            return GD.step(self, problem, state)

    METHODS["killer_gd"] = KillerGD
    return KillerGD


def spec_for(n: int, m: int, runs: int, iters: int, method: str) -> dict:
    return {"sweep": {"name": "dask-scale", "max_batch": 2},
            "base": {"ensemble": "completion", "n1": n, "r": 2, "m": m, "k": 3, "iters": iters,
                     "alpha": 0.001, "step_size": 0.1, "method": method},
            "grid": {"init_seed": list(range(runs))}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="n1 = n2 (default 20000)")
    ap.add_argument("--m", type=int, default=400_000, help="observed entries (default 4e5)")
    ap.add_argument("--runs", type=int, default=6, help="runs (2 per batch; default 6)")
    ap.add_argument("--iters", type=int, default=40, help="GD iterations per run (default 40)")
    ap.add_argument("--kill-at", type=int, default=15,
                    help="the worker dies at its N-th GD step (default 15: mid-batch)")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster workers (default 2)")
    args = ap.parse_args(argv)

    import distributed
    import pandas as pd

    from matsense.sweep import load, run_sweep

    with tempfile.TemporaryDirectory(prefix="matsense-dask-scale-") as tmp:
        tmp = Path(tmp)
        marker = tmp / "killed"
        install_killer(str(tmp / "never-used-here"), args.kill_at)  # the client checks the name

        class Killer(distributed.WorkerPlugin):
            name = "matsense-dask-scale-killer"

            def setup(self, worker):
                install_killer(str(marker), args.kill_at)

        spec = spec_for(args.n, args.m, args.runs, args.iters, "killer_gd")
        start = time.perf_counter()
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                      processes=True, host="127.0.0.1", dashboard_address=None,
                                      silence_logs=50) as cluster:
            with distributed.Client(cluster) as client:
                client.register_plugin(Killer())
                summary = run_sweep(spec, tmp / "dask", executor="dask",
                                    scheduler=cluster.scheduler_address, progress="off")
        dask_s = time.perf_counter() - start
        start = time.perf_counter()
        local = run_sweep(spec_for(args.n, args.m, args.runs, args.iters, "gd"), tmp / "local",
                          workers=0, progress="off")
        local_s = time.perf_counter() - start

        runs, hist = load(tmp / "dask")
        ref_runs, ref = load(tmp / "local")
        problems = []
        if not marker.exists():
            problems.append("no worker was killed (raise --iters or lower --kill-at)")
        if summary.failed or summary.lost or not summary.complete:
            problems.append(f"dask sweep: {summary}")
        if len(runs) != args.runs or not runs["run_id"].is_unique:
            problems.append(f"{len(runs)} runs in the store for {args.runs} in the spec")
        if hist.duplicated(["run_id", "iteration"]).any():
            problems.append("duplicated history rows")
        key = ["init_seed", "iteration"]
        cols = key + [c for c in ("residual_norm", "error", "rel_error", "loss", "sv_1", "sv_2",
                                  "imbalance_drift", "off_subspace") if c in hist and c in ref]
        a = hist[cols].sort_values(key).reset_index(drop=True)
        b = ref[cols].sort_values(key).reset_index(drop=True)
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        except AssertionError as exc:
            problems.append("numbers differ from the local run: " + str(exc).splitlines()[0])
        print(f"n1 = n2 = {args.n}, m = {args.m}, {args.runs} runs × {args.iters} iterations, "
              f"{args.workers} Dask workers, one killed at its step {args.kill_at} "
              f"({'yes' if marker.exists() else 'NO'}): dask {dask_s:.1f} s, local {local_s:.1f} s")
        print(f"store: {len(runs)} runs ({runs['run_id'].nunique()} distinct), {len(hist)} "
              f"history rows, statuses {sorted(set(runs['status']))}")
        print("RESULT: " + ("ok — every run once, the same numbers as the local run"
                            if not problems else "FAILED — " + "; ".join(problems)))
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
