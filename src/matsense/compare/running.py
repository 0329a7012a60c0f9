"""Running the comparison grid: one run per seed × κ × k × method, then medians over seeds."""

from __future__ import annotations

import json
import math
import statistics
import sys

import numpy as np

from .. import _validate as V
from .. import backend
from .._files import naming
from ..methods.base import product
from ..problems import Problem
from ..run import run, run_together
from .entries import ALL_KEYS, DEFAULT_SEEDS, CompareSettings, Entry
from .reference import reference_check, reference_figure


def seed_list(seeds, settings_name: str) -> list[int]:
    """``seeds`` as a list: None → the preset's default count, N → 0..N−1, or explicit seeds."""
    if seeds is None:
        return list(range(DEFAULT_SEEDS.get(settings_name, 1)))
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return list(range(V.int_in_range("seeds", int(seeds), 1)))
    try:
        out = [V.int_in_range("seed", s, 0) for s in seeds]
    except TypeError:
        raise ValueError(
            f"seeds must be a count (int >= 1) or a list of seeds (ints >= 0), got {seeds!r}"
        ) from None
    if not out:
        raise ValueError("seeds must not be empty")
    return out


def make_problem(settings: CompareSettings, kappa: float, symmetric: bool, seed: int) -> Problem:
    """The problem of one (κ, seed): PSD for the X Xᵀ entries (``symmetric``), else general.

    Only X Xᵀ methods run on the PSD problem, so its dense Gaussian operator is
    replaced by the packed symmetric one (:meth:`Problem.with_symmetric_operator`):
    the same y and, for X Xᵀ, the same trajectory (to rounding) from half the
    bytes per iteration.
    """
    problem = Problem.generate(
        settings.ensemble,
        settings.n,
        r=settings.r,
        m=settings.m,
        kappa=kappa,
        spacing=settings.spacing,
        symmetric=symmetric,
        seed=seed,
        **settings.outliers(),
    )
    if symmetric and problem.operator.packs_symmetric():
        problem = problem.with_symmetric_operator()
    return problem


#: Position of each method in the tables (the order of ALL_ENTRIES).
ENTRY_ORDER = {key: i for i, key in enumerate(ALL_KEYS)}


def _grid_order(row) -> tuple:
    """Sort key of a (entry key, k, ...) row: k, then the order of ENTRIES."""
    return row[1], ENTRY_ORDER[row[0]]


#: What the comparison records (its tables and curves read these only).
RECORD = ("error", "rel_error")


def _result(traj, problem, budget: int, seed: int):
    """The per-seed result and the error curve of one finished run."""
    P = backend.to_numpy(product(tuple(f[None] for f in traj.factors)))[0]
    M_star = backend.to_numpy(problem.dense_M_star())
    final_rel = float(np.linalg.norm(P - M_star) / np.linalg.norm(M_star))
    its = int(traj.iterations)
    result = {
        "seed": seed,
        "status": "not_reached" if traj.status == "max_iters" else str(traj.status),
        "iterations": its,
        "iterations_to_tol": its if traj.status == "converged" else None,
        "seconds": float(traj.wall_time),
        "seconds_per_iteration": float(traj.wall_time) / max(its, 1),
        "final_rel_error": final_rel,
        "budget": budget,
    }
    curve = {
        key: np.asarray(traj.history[key], dtype=float)
        for key in ("iteration", "time", "rel_error")
    }
    return result, curve


def one_run(entry: Entry, problem: Problem, settings: CompareSettings, k: int, seed: int):
    """Run ``entry`` alone on ``problem``: (per-seed result, error curve, the method)."""
    sigma_1 = float(problem.meta["singular_values"][0])
    method = entry.make_method(sigma_1)
    x0 = entry.initial_factors(problem, k, settings.alpha, seed)
    budget = settings.budget(entry.key)
    traj = run(
        problem,
        method,
        x0,
        budget,
        tol=settings.tol,
        record_every=settings.record_every,
        record=RECORD,
    )
    return (*_result(traj, problem, budget, seed), method)


def cell_runs(settings: CompareSettings, seed: int, kappa: float, symmetric: bool | None = None):
    """Every run of one (seed, κ) on one problem (``symmetric``; None: both problems).

    The runs of a problem — every method and every k — advance in lock-step,
    one stacked operator pass per iteration for up to 16 trajectories
    (:func:`matsense.run_together`). Returns ``[(entry key, k, result, curve,
    method)]`` in grid order (k, then the order of ENTRIES). What a worker
    process computes; one thread for BLAS and the kernels, so the results do
    not depend on where it runs.
    """
    from ..operators import single_threaded

    entries = settings.entries()
    kinds = sorted({e.symmetric for e in entries}) if symmetric is None else [symmetric]
    out = []
    with single_threaded():
        for sym in kinds:
            group = [e for e in entries if e.symmetric == sym]
            if not group:
                continue
            problem = make_problem(settings, kappa, sym, seed)
            cells = [
                (entry, mult * settings.r) for mult in settings.k_multipliers for entry in group
            ]
            runs = one_problem_runs(cells, problem, settings, seed)
            out += [(entry.key, k, *run_) for (entry, k), run_ in zip(cells, runs)]
            del problem
    out.sort(key=_grid_order)
    return out


def one_problem_runs(cells, problem: Problem, settings: CompareSettings, seed: int):
    """The runs ``cells`` = [(entry, k)] on ``problem`` in lock-step, one stacked operator pass
    per iteration (:func:`matsense.run_together`); each equals :func:`one_run` bitwise.

    Returns [(per-seed result, error curve, method)] in the order of ``cells``.
    """
    sigma_1 = float(problem.meta["singular_values"][0])
    methods = [e.make_method(sigma_1) for e, _ in cells]
    starts = [e.initial_factors(problem, k, settings.alpha, seed) for e, k in cells]
    budgets = [settings.budget(e.key) for e, _ in cells]
    trajs = run_together(
        problem,
        list(zip(methods, starts)),
        budgets,
        tol=settings.tol,
        record_every=settings.record_every,
        record=RECORD,
    )
    return [(*_result(t, problem, b, seed), m) for t, b, m in zip(trajs, budgets, methods)]


def _median(values):
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(statistics.median(vals)) if vals else None


def _describe(entry: Entry, method, settings: CompareSettings, kappa, k) -> dict:
    """The fields of a record that say what ran (method, start, problem, budget)."""
    return {
        "method": entry.key,
        "label": entry.label,
        "method_name": method.name,
        "method_class": type(method).__name__,
        "hyper_parameters": entry.hyper,
        "params": method.params(),
        "init": entry.init,
        "parameterization": "X Xᵀ" if entry.symmetric else "F Gᵀ",
        "problem": "symmetric PSD" if entry.symmetric else "asymmetric",
        "ensemble": settings.ensemble,
        "kappa": float(kappa),
        "k": int(k),
        "r": settings.r,
        "n": settings.n,
        "m": settings.m,
        "tol": settings.tol,
        "budget": settings.budget(entry.key),
    }


def _over_seeds(per_seed: list[dict]) -> dict:
    """The fields of a record that summarize the seeds (status, medians)."""
    statuses = {p["status"] for p in per_seed}
    n_conv = sum(p["status"] == "converged" for p in per_seed)
    its = [p["iterations_to_tol"] for p in per_seed]
    reached = [i for i in its if i is not None]
    return {
        "seeds": [p["seed"] for p in per_seed],
        "n_seeds": len(per_seed),
        "n_converged": n_conv,
        "status": statuses.pop() if len(statuses) == 1 else "mixed",
        # Median over seeds; null unless every seed reached tol.
        "iterations_to_tol": (float(statistics.median(its)) if n_conv == len(per_seed) else None),
        "iterations_to_tol_range": [min(reached), max(reached)] if n_conv else None,
        "seconds": _median([p["seconds"] for p in per_seed]),
        "seconds_per_iteration": _median([p["seconds_per_iteration"] for p in per_seed]),
        # Median over the seeds that did not diverge (a diverged run's last finite iterate,
        # error 1e5 or so, says nothing about the method; per_seed keeps it); null if all did.
        "final_rel_error": _median(
            [p["final_rel_error"] for p in per_seed if p["status"] != "diverged"]
        ),
        "per_seed": per_seed,
    }


def aggregate(entry: Entry, method, settings: CompareSettings, kappa, k, per_seed) -> dict:
    """One record: what ran, the summary over seeds, and the docs/methods.md reference check."""
    rec = {**_describe(entry, method, settings, kappa, k), **_over_seeds(per_seed)}
    ref = reference_figure(settings, entry.key, kappa, k)
    rec["reference"] = None if ref is None else ref["text"]
    rec["reference_check"] = reference_check(ref, rec)
    return rec


def log(progress: bool, msg: str) -> None:
    if progress:
        print(f"[compare] {msg}", file=sys.stderr, flush=True)


def run_grid(
    settings: CompareSettings,
    seeds: list[int],
    log_path,
    progress: bool = False,
    workers: int | None = None,
):
    """Every run of the grid; one JSON line per finished run is appended to ``log_path``.

    Each (seed, κ) is one task (:func:`cell_runs`): its problems are built once,
    and the methods that share a problem advance together, one stacked operator
    pass per iteration. Tasks run in ``workers`` processes (default: the usable
    cores, at most the number of tasks; 1: in this process), one thread each;
    the records are the same for any ``workers``.

    Returns
    -------
    records : list of dict
        One per (κ, k) × method (κ outer, then k, then the order of ENTRIES).
    curves : list of dict
        One per run: method, kappa, k, seed and the arrays iteration, time, rel_error.
    """
    from ..threads import usable_cores

    entries = settings.entries()
    kinds = sorted({e.symmetric for e in entries})
    # One task per problem; the ill-conditioned ones (the longest runs) first.
    tasks = [
        (seed, kappa, sym)
        for kappa in sorted(settings.kappas, reverse=True)
        for sym in kinds
        for seed in seeds
    ]
    if workers is None:
        workers = min(usable_cores(), len(tasks))
    workers = V.int_in_range("workers", workers, 1)
    done = {}
    for (seed, kappa, sym), rows in _cells(settings, tasks, workers):
        done[(seed, kappa, sym)] = rows
        for key, k, res, _, _ in rows:
            entry = next(e for e in entries if e.key == key)
            _log_run(log_path, progress, entry, kappa, k, seed, res)
    per, methods, curves = _in_grid_order(settings, seeds, kinds, done)
    records = [
        aggregate(
            entry, methods[(entry.key, kappa, k)], settings, kappa, k, per[(entry.key, kappa, k)]
        )
        for kappa, _, k in settings.grid()
        for entry in entries
    ]
    return records, curves


def _in_grid_order(settings: CompareSettings, seeds: list[int], kinds: list, done: dict):
    """The finished rows in grid order, whatever order the tasks finished in: the results per
    (method, κ, k), the method of each and the curves."""
    per: dict[tuple, list] = {}
    methods: dict[tuple, object] = {}
    curves: list[dict] = []
    for seed in seeds:
        for kappa in settings.kappas:
            rows = [row for sym in kinds for row in done[(seed, kappa, sym)]]
            rows.sort(key=_grid_order)
            for key, k, res, curve, method in rows:
                per.setdefault((key, kappa, k), []).append(res)
                methods[(key, kappa, k)] = method
                curves.append({"method": key, "kappa": float(kappa), "k": k, "seed": seed, **curve})
    return per, methods, curves


def _cells(settings, tasks, workers: int):
    """Yield ((seed, κ, symmetric), rows) as tasks finish: here, or in a supervised pool."""
    if workers == 1 or len(tasks) < 2:
        for task in tasks:
            yield task, cell_runs(settings, *task)
        return
    import concurrent.futures as cf

    from ..sweep.executors import single_thread_env
    from ..workers import process_pool

    with process_pool(workers) as pool:
        with single_thread_env():
            futures = {pool.submit(cell_runs, settings, *task): task for task in tasks}
        for fut in cf.as_completed(futures):
            yield futures[fut], fut.result()


def _log_run(log_path, progress, entry, kappa, k, seed, res) -> None:
    # Written as each run ends, so a long comparison shows (and keeps) its progress.
    with naming(log_path), open(log_path, "a") as fh:
        fh.write(json.dumps({"method": entry.key, "kappa": float(kappa), "k": k, **res}) + "\n")
    log(
        progress,
        f"seed {seed} κ={kappa:g} k={k} {entry.key}: {res['status']} "
        f"after {res['iterations']} its, rel. error {res['final_rel_error']:.2e}, "
        f"{res['seconds']:.1f} s",
    )
