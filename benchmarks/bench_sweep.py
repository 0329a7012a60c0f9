"""Benchmark of the sweep machinery: throughput, memory, store size, Dask overhead.

A sweep of many tiny runs (n = 10, r = 2, m = 200, k = 3, 200 iterations of GD)
on 10 problems, so nearly all the time is sweep overhead: planning, batching,
history collection, Parquet writes, scheduling.

    python benchmarks/bench_sweep.py                 # 10,000 runs, local executor, + Dask
    python benchmarks/bench_sweep.py --runs 2000 --dask-runs 1000 --record-every 1

Reports runs/s, the resident memory (client + worker processes) when 1k, 5k,
10k, ... runs have finished (it should stay flat: results go to disk batch by
batch), the store's bytes per run, and the Dask executor's overhead against the
local one on the same smaller sweep. Needs ``psutil`` for the memory columns.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path


def make_spec(runs: int, record_every: int, iters: int, max_batch: int) -> dict:
    """``runs`` tiny runs: 10 problems × 10 α × runs/100 initialization seeds."""
    if runs % 100:
        raise SystemExit(f"--runs must be a multiple of 100, got {runs}")
    return {
        "sweep": {"name": f"bench-{runs}", "max_batch": max_batch, "rate_window": [1e-2, 1e-8]},
        "base": {"n1": 10, "r": 2, "m": 200, "singular_values": [1.0, 0.5], "k": 3,
                 "method": "gd", "step_size": 0.3, "iters": iters, "record_every": record_every},
        "grid": {"seed": list(range(10)),
                 "alpha": [round(0.3 * 0.8**i, 6) for i in range(10)],
                 "init_seed": list(range(runs // 100))},
    }


def tree_rss() -> tuple[int, int]:
    """Resident bytes of (this process, all its descendants); zeros without psutil."""
    try:
        import psutil
    except ImportError:
        return 0, 0
    me = psutil.Process()
    children = 0
    for p in me.children(recursive=True):
        try:
            children += p.memory_info().rss
        except psutil.Error:
            pass
    return me.memory_info().rss, children


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Sampler:
    """Samples the process-tree RSS and the number of finished runs (from the store)."""

    def __init__(self, out: Path, batch_sizes: dict, interval: float = 0.25):
        self.out, self.sizes, self.interval = out, batch_sizes, interval
        self.samples: list[tuple[float, int, tuple[int, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def finished(self) -> int:
        runs = self.out / "runs"
        if not runs.exists():
            return 0
        return sum(self.sizes.get(p.name.split("-")[-1].split(".")[0], 0)
                   for p in runs.glob("part-*.parquet"))

    def _loop(self):
        t0 = time.perf_counter()
        while not self._stop.wait(self.interval):
            self.samples.append((time.perf_counter() - t0, self.finished(), tree_rss()))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.samples.append((math.inf, self.finished(), tree_rss()))

    def rss_at(self, n_runs: int) -> tuple[int, int]:
        """(client, workers) RSS of the first sample with >= ``n_runs`` finished runs."""
        for _, done, rss in self.samples:
            if done >= n_runs and rss[1] > 0:
                return rss
        for _, done, rss in self.samples:
            if done >= n_runs:
                return rss
        return 0, 0

    def peak(self) -> int:
        return max((sum(rss) for *_, rss in self.samples), default=0)


def bench_local(spec, root: Path, workers: int | None, exact: bool = True) -> dict:
    from matsense.sweep import load_spec, plan_batches, run_sweep
    from matsense.sweep.executors import cpu_count

    spec_obj = load_spec(spec)
    n_workers = cpu_count() if workers is None else workers
    tasks = plan_batches(spec_obj.configs, max_batch=spec_obj.options.max_batch,
                         workers=max(n_workers, 1))
    sizes = {t.batch_id: t.size for t in tasks}
    out = root / f"local-w{n_workers}-{'exact' if exact else 'batched'}"
    with Sampler(out, sizes) as sampler:
        t0 = time.perf_counter()
        summary = run_sweep(spec_obj, out, workers=workers, progress="off", exact=exact)
        wall = time.perf_counter() - t0
    n = summary.total
    marks = [m for m in (1000, 5000, 10000, 20000, 50000, 100000) if m <= n]
    store = dir_bytes(out)
    return {
        "executor": f"local, {n_workers} worker{'s' if n_workers != 1 else ''}"
                    + ("" if exact else " (exact=False)"),
        "runs": n, "batches": summary.batches, "wall_s": wall, "runs_per_s": n / wall,
        "failed": summary.failed, "complete": summary.complete,
        "rss_mb_at": {m: [v / 2**20 for v in sampler.rss_at(m)] for m in marks},
        "peak_rss_mb": sampler.peak() / 2**20,
        "store_mb": store / 2**20, "store_bytes_per_run": store / n,
        "out": str(out),
    }


def bench_dask(spec, root: Path, workers: int | None) -> dict:
    from matsense.sweep import run_sweep
    from matsense.sweep.executors import DaskExecutor

    t0 = time.perf_counter()
    with DaskExecutor(workers=workers) as ex:  # cluster start-up alone
        n_workers = ex.workers
    startup = time.perf_counter() - t0
    out = root / "dask"
    t0 = time.perf_counter()
    summary = run_sweep(spec, out, executor="dask", workers=workers, progress="off")
    wall = time.perf_counter() - t0
    return {"executor": f"dask LocalCluster, {n_workers} workers", "runs": summary.total,
            "batches": summary.batches, "wall_s": wall, "runs_per_s": summary.total / wall,
            "cluster_startup_s": startup, "complete": summary.complete, "out": str(out)}


def same_results(a: str, b: str) -> bool:
    from matsense.sweep import load

    drop = ["part", "batch_id", "batch_size", "wall_time", "batch_wall_time", "host", "finished_at"]
    ra, ha = load(a)
    rb, hb = load(b)
    ra = ra.drop(columns=drop).sort_values("run_id").reset_index(drop=True)
    rb = rb.drop(columns=drop).sort_values("run_id").reset_index(drop=True)
    ha = ha.drop(columns=["part", "time"]).sort_values(["run_id", "iteration"]).reset_index(drop=True)
    hb = hb.drop(columns=["part", "time"]).sort_values(["run_id", "iteration"]).reset_index(drop=True)
    return ra.equals(rb) and ha.equals(hb)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000, help="runs in the main sweep (multiple of 100)")
    ap.add_argument("--dask-runs", type=int, default=2_000,
                    help="runs in the local-vs-Dask comparison (0: skip Dask)")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--record-every", type=int, default=10)
    ap.add_argument("--max-batch", type=int, default=128)
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs)")
    ap.add_argument("--in-process", action="store_true",
                    help="also time workers=0 (in this process) and exact=False")
    ap.add_argument("--keep", metavar="DIR", help="write the stores here and keep them")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)

    import matsense

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    root.mkdir(parents=True, exist_ok=True)
    results = {"matsense": matsense.__version__, "python": sys.version.split()[0],
               "settings": vars(args), "local": [], "dask": None}
    try:
        spec = make_spec(args.runs, args.record_every, args.iters, args.max_batch)
        print(f"# {args.runs} runs: n=10, r=2, m=200, k=3, {args.iters} GD iterations, "
              f"record_every={args.record_every}, max_batch={args.max_batch}", flush=True)
        configs = [(args.workers, True)]
        if args.in_process:
            configs += [(0, True), (args.workers, False)]
        for workers, exact in configs:
            r = bench_local(spec, root, workers, exact)
            results["local"].append(r)
            rss = ", ".join(f"{m // 1000}k: {c:.0f}+{w:.0f} MB" for m, (c, w) in r["rss_mb_at"].items())
            print(f"{r['executor']:32s} {r['runs']} runs in {r['wall_s']:.1f} s = "
                  f"{r['runs_per_s']:.0f} runs/s ({r['batches']} batches); RSS client+workers {rss}; "
                  f"peak {r['peak_rss_mb']:.0f} MB; store {r['store_mb']:.1f} MB = "
                  f"{r['store_bytes_per_run']:.0f} B/run", flush=True)
        if args.dask_runs:
            try:
                import distributed  # noqa: F401
            except ImportError:
                print("dask: not installed, skipped")
            else:
                small = make_spec(args.dask_runs, args.record_every, args.iters, args.max_batch)
                sub = root / "dask-compare"
                loc = bench_local(small, sub, args.workers)
                dsk = bench_dask(small, sub, args.workers)
                same = same_results(loc["out"], dsk["out"])
                results["dask"] = {"local": loc, "dask": dsk, "bitwise_equal": same,
                                   "overhead_s": dsk["wall_s"] - loc["wall_s"],
                                   "overhead_ratio": dsk["wall_s"] / loc["wall_s"]}
                print(f"{loc['executor']:32s} {loc['runs']} runs in {loc['wall_s']:.1f} s = "
                      f"{loc['runs_per_s']:.0f} runs/s", flush=True)
                print(f"{dsk['executor']:32s} {dsk['runs']} runs in {dsk['wall_s']:.1f} s = "
                      f"{dsk['runs_per_s']:.0f} runs/s (cluster start-up alone "
                      f"{dsk['cluster_startup_s']:.1f} s); Dask/local wall time "
                      f"{dsk['wall_s'] / loc['wall_s']:.2f}x; results bitwise equal: {same}",
                      flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
