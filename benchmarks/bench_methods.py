"""Per-iteration cost of every method on one problem (no driver, no diagnostics).

Times ``method.step`` alone — what an iteration of each algorithm costs — next to
one operator pass (r = 𝒜(P) − y and S = 𝒜*(r)), which dominates for the dense
Gaussian operator. Prints a table and writes JSON.

    python benchmarks/bench_methods.py                     # n = 100, r = 5, m = 5nr
    python benchmarks/bench_methods.py --n 50 --batch 4 --out results/bench.json

The default problem is the comparison's (PAPER.md §4): its operator is
2500 × 10⁴ float64 (200 MB), so one pass is memory-bound: ~2 × 200 MB read.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from matsense import Problem, init
from matsense.methods import GD, SVP, AlternatingPrecGD, PrecGD, RebalancedGD, ScaledGD, ScaledGDLambda


def cases(problem_asym, problem_sym, k, batch):
    """(label, problem, method, init factors) for every method and parameterization."""
    seeds = list(range(batch))
    alphas = [1e-3] * batch
    FG = init.small_random(problem_asym, k, alphas, normalization="sqrt_n", seed=seeds)
    X = init.symmetric_random(problem_sym, k, alphas, normalization="sqrt_n", seed=seeds)
    return [
        ("gd (F Gᵀ)", problem_asym, GD(0.5), FG),
        ("gd (X Xᵀ)", problem_sym, GD(0.5), (X,)),
        ("rebalanced_gd (F Gᵀ)", problem_asym, RebalancedGD(0.5), FG),
        ("scaledgd (F Gᵀ)", problem_asym, ScaledGD(0.5), FG),
        ("scaledgd (X Xᵀ)", problem_sym, ScaledGD(0.5), (X,)),
        ("scaledgd_lambda (F Gᵀ)", problem_asym, ScaledGDLambda(0.5, 1e-3), FG),
        ("scaledgd_lambda (X Xᵀ)", problem_sym, ScaledGDLambda(0.5, 1e-3), (X,)),
        ("precgd (F Gᵀ)", problem_asym, PrecGD(0.5), FG),
        ("precgd (X Xᵀ)", problem_sym, PrecGD(0.5), (X,)),
        ("apgd (F Gᵀ)", problem_asym, AlternatingPrecGD(1.0), FG),
        ("svp (F Gᵀ)", problem_asym, SVP(0.5), FG),
        ("svp (X Xᵀ, PSD)", problem_sym, SVP(0.5), (X,)),
    ]


def time_steps(problem, method, factors, iters, repeats):
    """Median over ``repeats`` of the mean seconds per ``method.step`` over ``iters`` steps."""
    state = method.init(problem, factors)
    for _ in range(2):  # warm-up
        state, _ = method.step(problem, state)
    per = []
    for _ in range(repeats):
        s = state
        t0 = time.perf_counter()
        for _ in range(iters):
            s, rn = method.step(problem, s)
        np.asarray(rn)  # make sure the work happened
        per.append((time.perf_counter() - t0) / iters)
    return statistics.median(per), min(per)


def time_operator(problem, batch, iters, repeats):
    n1, n2 = problem.shape
    P = np.random.default_rng(0).standard_normal((batch, n1, n2))
    problem.residual_and_adjoint(P)
    per = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            problem.residual_and_adjoint(P)
        per.append((time.perf_counter() - t0) / iters)
    return statistics.median(per), min(per)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--r", type=int, default=5)
    ap.add_argument("--m-factor", type=int, default=5, help="m = m_factor·n·r (default 5)")
    ap.add_argument("--k", type=int, default=None, help="factor columns (default r)")
    ap.add_argument("--batch", type=int, default=1, help="trajectories per step (default 1)")
    ap.add_argument("--iters", type=int, default=20, help="steps per timing (default 20)")
    ap.add_argument("--repeats", type=int, default=3, help="timings, median reported (default 3)")
    ap.add_argument("--out", default="results/bench_methods.json", help="JSON output path")
    args = ap.parse_args(argv)
    k = args.k or args.r
    m = args.m_factor * args.n * args.r
    pa = Problem.gaussian(args.n, r=args.r, m=m, kappa=10, spacing="linear", seed=0)
    ps = Problem.gaussian(args.n, r=args.r, m=m, kappa=10, spacing="linear", symmetric=True, seed=0)

    time_operator(pa, args.batch, 3, 1)  # first touch of the freshly built operator
    timed = []
    for label, problem, method, factors in cases(pa, ps, k, args.batch):
        med, mn = time_steps(problem, method, factors, args.iters, args.repeats)
        timed.append((label, method, med, mn))
    op_med, op_min = time_operator(pa, args.batch, args.iters, args.repeats)
    rows = [{"method": "operator pass (𝒜 and 𝒜*)", "ms_per_iter": 1e3 * op_med,
             "ms_per_iter_min": 1e3 * op_min, "passes_per_iter": 1, "relative_to_pass": 1.0}]
    for label, method, med, mn in timed:
        rows.append({"method": label, "class": type(method).__name__, "ms_per_iter": 1e3 * med,
                     "ms_per_iter_min": 1e3 * mn,
                     "passes_per_iter": 2 if isinstance(method, AlternatingPrecGD) else 1,
                     "relative_to_pass": med / op_med})

    print(f"n = {args.n}, r = {args.r}, k = {k}, m = {m}, batch = {args.batch}; operator "
          f"{pa.operator.nbytes / 2**20:.0f} MiB; {args.iters} steps × {args.repeats} repeats")
    print(f"{'method':28s} {'ms/iter':>9s} {'min':>9s} {'passes':>7s} {'× pass':>7s}")
    for row in rows:
        print(f"{row['method']:28s} {row['ms_per_iter']:9.2f} {row['ms_per_iter_min']:9.2f} "
              f"{row['passes_per_iter']:7d} {row['relative_to_pass']:7.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"n": args.n, "r": args.r, "k": k, "m": m, "batch": args.batch, "iters": args.iters,
            "repeats": args.repeats, "operator_bytes": pa.operator.nbytes,
            "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
            "numpy": np.__version__,
            "blas_threads_env": {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
