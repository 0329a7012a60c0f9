"""ℓ1 vs ℓ2: time per iteration of the factored call with and without the residual map (issue #22).

The robust losses run the same one-pass kernels as ℓ2 with φ applied between the
residual and the adjoint (matsense.losses): this measures what φ costs, per
ensemble and per kernel, side by side:

* gaussian n = 100, m = 1500 (r = 5, k = 10, B = 1): the flat operator's kernels
  forced one by one (numba tiles, the NumPy one-pass loop, the two GEMMs) and the
  automatic choice;
* completion (n = 2000, m = 40·n·r, k = 10): the compiled entries kernel;
* rank-one (n = 100, m = 1500): the four GEMMs.

One "iteration" is what a method's step asks of the operator: r, D G, Dᵀ F
(``residual_and_grads``) plus the loss value from r (½‖r‖² or ‖r‖₁/√m). Each
pair is timed interleaved (rounds alternate ℓ2 / ℓ1 / huber), median over the
rounds. The host's last-level cache and its float64 GEMM rate are printed
with the table, since both set where the kernels sit.

    python benchmarks/bench_loss.py [--quick | --tiny] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import matsense as ms  # noqa: E402
from matsense.losses import Loss  # noqa: E402
from matsense.operators import planner  # noqa: E402
from matsense.operators.blocking import last_level_cache_bytes  # noqa: E402

LOSSES = ("l2", "l1", "huber")


def _set_kernel(kernel: str | None) -> None:
    if kernel in (None, "auto"):
        os.environ.pop("MATSENSE_KERNEL", None)
    else:
        os.environ["MATSENSE_KERNEL"] = kernel


def _iteration(problem, F, G, loss: Loss):
    rmap = loss.rmap(problem.m)
    op, y = problem.operator, problem.y
    if rmap is None:
        def call():
            r, SG, StF = op.residual_and_grads(F, G, y)
            return loss.value(r)
    else:
        def call():
            r, SG, StF = op.residual_and_grads(F, G, y, rmap)
            return loss.value(r)
    return call


def _interleaved(calls: dict, rounds: int, inner: int) -> dict:
    names = list(calls)
    samples = {k: [] for k in names}
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            fn = calls[name]
            fn()
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - t0) / inner)
    return {k: statistics.median(v) for k, v in samples.items()}


def case(label: str, problem, k: int, kernels, rounds: int) -> list[dict]:
    rng = np.random.default_rng(1)
    n1, n2 = problem.shape
    F = rng.standard_normal((1, n1, k)) / np.sqrt(n1)
    G = rng.standard_normal((1, n2, k)) / np.sqrt(n2)
    rows = []
    for kernel in kernels:
        _set_kernel(kernel)
        planner.clear_plans()
        calls = {name: _iteration(problem, F, G, Loss(name, delta=1e-3)) for name in LOSSES}
        for fn in calls.values():  # compile / plan / warm
            fn()
        one = C.timeit(calls["l2"], min_reps=3, max_reps=3, budget_s=0)["min"]
        inner = max(1, int(0.05 / max(one, 1e-6)))
        med = _interleaved(calls, rounds, inner)
        rows.append({"case": label, "kernel": kernel or "auto",
                     "kernel_used": problem.operator.kernel_for(1),
                     "seconds": med, "l1_over_l2": med["l1"] / med["l2"],
                     "huber_over_l2": med["huber"] / med["l2"]})
    _set_kernel(None)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds, smaller completion")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (tests)")
    ap.add_argument("--json", default=None, help="write the rows and the host here")
    args = ap.parse_args(argv)
    rounds = 3 if args.tiny else 7 if args.quick else 15
    n, m = (12, 100) if args.tiny else (100, 1500)
    nc = 60 if args.tiny else 500 if args.quick else 2000
    flat = ["auto", "numba", "numpy", "two-pass"]
    rows = case(f"gaussian n={n} m={m}", ms.Problem.gaussian(n, r=5, m=m, seed=0), 10, flat,
                rounds)
    mc = min(40 * nc * 5, nc * nc // 2)
    rows += case(f"completion n={nc} m={mc}", ms.Problem.completion(nc, r=5, m=mc, seed=0), 10,
                 ["auto"], rounds)
    rows += case(f"rank-one n={n} m={m}", ms.Problem.rank_one(n, r=5, m=m, seed=0), 10,
                 ["auto"], rounds)
    host = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "llc_bytes": last_level_cache_bytes(),
            "gemm_gflops_float64": C.gemm_rate("float64", 256 if args.tiny else 2048) / 1e9,
            "load": os.getloadavg()[0]}
    print(f"host: {host['cores']} cores, last-level cache {host['llc_bytes'] / 2**20:.0f} MiB, "
          f"float64 GEMM {host['gemm_gflops_float64']:.1f} GFLOP/s, load {host['load']:.1f}")
    print(f"{'case':28s} {'kernel':9s} {'used':14s} {'l2 ms':>8s} {'l1 ms':>8s} "
          f"{'huber ms':>9s} {'l1/l2':>6s} {'hub/l2':>6s}")
    for row in rows:
        s = row["seconds"]
        print(f"{row['case']:28s} {row['kernel']:9s} {str(row['kernel_used']):14s} "
              f"{s['l2'] * 1e3:8.3f} {s['l1'] * 1e3:8.3f} {s['huber'] * 1e3:9.3f} "
              f"{row['l1_over_l2']:6.2f} {row['huber_over_l2']:6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"host": host, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
