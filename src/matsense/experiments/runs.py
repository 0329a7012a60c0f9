"""The runs behind the claims, one seed at a time, computed once and shared.

Each claim declares the runs it reads (:class:`~matsense.experiments.declare.RunSpec`:
a name, a builder, a cost); several claims read the same trajectories (C5 and C6
compare with the X Xᵀ run of C2; C7 contrasts with the plain-GD runs of C4), so
:class:`SeedRuns` builds each named run on first use and caches it. Every run
advances all the trajectories that share its problem as one batch (leading axis
B): the α values of a claim, or the three initializations of C5/C6.

================  ========================  ==============================================
run name          declared in               what it is
================  ========================  ==============================================
``sym_exact``     ``claims.exact``          GD on X Xᵀ, k = r, every α (C1)
``asym_exact``    ``claims.exact``          GD on F Gᵀ, k = r, every α (C1/C3)
``sym_over``      ``claims.sublinear``      GD on X Xᵀ, k > r, ``c2_alphas`` (C2, C5, C6)
``asym_over``     ``claims.alpha``          GD on F Gᵀ, k > r, ``c4_alphas`` (C4, C7)
``asym_on_sym``   ``claims.symmetry_runs``  F Gᵀ on the PSD problem, three starts (C5, C6)
``rebalanced`` …  ``claims.rebalancing``    RebalancedGD and its k = r references (C7)
``drift``         ``claims.imbalance``      DriftBoundGD at η, η/2, η/4 (C8)
================  ========================  ==============================================

X₀ of ``sym_over`` at ``c5_alpha`` is the F₀ = G₀ of the balanced run (same
seed, same draw), and every F Gᵀ run on the asymmetric problem starts from the
same draw scaled by α, so C4, C7 and C8 compare like with like.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .. import init as _init
from ..methods import GD
from ..operators import single_threaded
from ..problems import Problem
from ..run import run
from ..threads import usable_cores
from ..trajectory import BatchTrajectory, Trajectory
from .declare import RUNS  # the declared runs (re-exported here)
from .declare import run as declared_run
from .settings import ClaimSettings, init_seed


class LabeledRun:
    """A batched run whose trajectories are addressed by label: an α, or a name.

    ``run[label]`` is that trajectory (a :class:`~matsense.trajectory.Trajectory`);
    ``run.curve(label, key)`` its recorded (iterations, values); ``run.traj`` the
    whole :class:`~matsense.trajectory.BatchTrajectory`. Claims never depend on
    the order in which a builder stacked its trajectories.
    """

    def __init__(self, traj: BatchTrajectory, labels, checkpoints: dict | None = None):
        labels = tuple(labels)
        if len(labels) != traj.batch_size or len(set(labels)) != len(labels):
            raise ValueError(f"need {traj.batch_size} distinct labels, got {labels}")
        self.traj = traj
        self.labels = labels
        #: label -> {quantity: array} read at checkpoints during the run (by a callback)
        self.checkpoints = checkpoints or {}

    def index(self, label) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"no trajectory labelled {label!r}; labels: {self.labels}") from None

    def __getitem__(self, label) -> Trajectory:
        return self.traj[self.index(label)]

    def curve(self, label, key: str = "error"):
        """(iterations, values) of trajectory ``label`` where it was recorded (floats)."""
        h = self[label].history
        return np.asarray(h["iteration"], dtype=float), np.asarray(h[key], dtype=float)

    def status(self, label) -> str:
        return str(self[label].status)

    def extra(self, label, name: str, default=None):
        return self[label].extras.get(name, default)


class SeedRuns:
    """The problems and runs of one seed (built lazily, cached)."""

    def __init__(self, settings: ClaimSettings, seed: int, log=None):
        self.settings = settings.resolve()
        self.seed = int(seed)
        self.log = log
        self.seconds: dict[str, float] = {}
        self._problems: dict[bool, Problem] = {}
        self._runs: dict[str, object] = {}

    # ------------------------------------------------------------- problems
    def problem(self, symmetric: bool) -> Problem:
        """The seed's PSD problem (n1 × n1) or general problem (n1 × n2)."""
        if symmetric not in self._problems:
            self._problems[symmetric] = self.settings.make_problem(symmetric, self.seed)
        return self._problems[symmetric]

    def init_seed(self, role: str) -> int:
        return init_seed(self.seed, role)

    # ----------------------------------------------------------------- runs
    def get(self, name: str):
        if name not in self._runs:
            builder = declared_run(name).build
            start = time.perf_counter()
            # One BLAS / kernel thread, wherever the run is built (this process or a worker
            # of compute_runs): the same bits for any number of workers.
            with single_threaded():
                self._runs[name] = builder(self)
            self.seconds[name] = time.perf_counter() - start
            if self.log is not None:
                self.log(f"seed {self.seed}: run {name} took {self.seconds[name]:.1f} s")
        return self._runs[name]

    def gd(self, problem, init, iters, *, tol=None, record_every=None, method=None, callback=None):
        """Run ``method`` (default GD at the setting's η) from ``init`` with the setting's record
        stride and divergence factor."""
        s = self.settings
        return run(
            problem,
            method or GD(s.eta),
            init,
            iters,
            tol=tol,
            record_every=s.record_every if record_every is None else record_every,
            divergence_factor=s.divergence_factor,
            callback=callback,
        )


def batch(values, seed):
    """(α values as floats, ``seed`` once per α): one batched start per α."""
    values = [float(v) for v in values]
    return values, [seed] * len(values)


def symmetric_gd(sr, k: int, alphas, iters: int, **kw) -> LabeledRun:
    """GD on X Xᵀ with width ``k`` on the seed's PSD problem, from its symmetric draw scaled by
    each α (labels: the α)."""
    p = sr.problem(True)
    alphas, seeds = batch(alphas, sr.init_seed("symmetric"))
    X0 = _init.symmetric_random(p, k, alphas, seed=seeds)
    return LabeledRun(sr.gd(p, X0, iters, **kw), alphas)


def long_record_every(s, iters: int) -> int:
    """Record stride of long runs: ``long_record_every``, coarser beyond 20 000 iterations."""
    return max(s.long_record_every, iters // 2000)


def stderr_log(message: str) -> None:
    print(f"[matsense reproduce] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------ parallel runs


def _compute_one(settings: ClaimSettings, seed: int, name: str, progress: bool):
    """Worker: build run ``name`` of ``seed``."""
    sr = SeedRuns(settings, seed, stderr_log if progress else None)
    return sr.get(name), sr.seconds[name]


def _build_here(tasks, log) -> None:
    """Build ``tasks`` in this process; a run that raises is left unbuilt (see compute_runs)."""
    for sr, name in tasks:
        if name in sr._runs:
            continue
        try:
            sr.get(name)
        except Exception as exc:  # noqa: BLE001 - rebuilt (and reported) by its claim
            if log is not None:
                log(f"seed {sr.seed}: run {name} failed ({type(exc).__name__}: {exc})")


def compute_runs(runs: list, names, workers: int | None = None, progress: bool = False) -> int:
    """Build the runs ``names`` of every :class:`SeedRuns` in ``runs``, in parallel.

    Each (seed, run) is one task for a pool of ``workers`` processes (default:
    the usable cores, at most the number of tasks; 1 = in this process),
    longest first. Every run computes with one BLAS and kernel thread
    (:meth:`SeedRuns.get` uses :func:`~matsense.operators.single_threaded`)
    in this process or a worker alike, so the results are bitwise the same
    whatever ``workers`` is. A run that raises is left unbuilt: the claim that
    needs it builds it again and reports the error as its own. If the pool
    itself cannot run (no processes allowed here, a worker killed), the runs
    it did not finish are built in this process.

    Worker processes are *spawned* (:func:`matsense.workers.process_pool`:
    they exit when this process dies; ``KeyboardInterrupt`` or SIGTERM —
    raised as :class:`matsense.workers.Terminated` — stops them and
    propagates): a script that calls this (or ``reproduce``) with ``workers``
    > 1 must guard its entry point with ``if __name__ == "__main__":``.
    Returns the number of processes used.
    """
    tasks = [(sr, name) for name in names for sr in runs if name not in sr._runs]
    if workers is None:
        workers = min(usable_cores(), len(tasks))
    workers = int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    log = runs[0].log if runs else None
    if workers == 1 or len(tasks) < 2:
        _build_here(tasks, log)
        return 1
    settings = runs[0].settings
    # the longest first: by each run's declared cost (an iteration count)
    tasks.sort(key=lambda task: -getattr(settings, declared_run(task[1]).cost))
    failed: set = set()
    try:
        _build_in_pool(tasks, settings, workers, log, failed)
    except Exception as exc:  # noqa: BLE001 - the pool, not a run: build the rest here
        if log is not None:
            log(
                f"worker processes unavailable ({type(exc).__name__}: {exc}); building the "
                "remaining runs in this process (from a script? guard its entry point with "
                '`if __name__ == "__main__":`)'
            )
        _build_here([(sr, name) for sr, name in tasks if (sr.seed, name) not in failed], log)
        return 1
    return workers


def _build_in_pool(tasks, settings, workers: int, log, failed: set) -> None:
    """Build ``tasks`` in ``workers`` spawned processes; a run that raises is added to
    ``failed`` (its claim rebuilds it); a broken pool raises."""
    import concurrent.futures as cf

    from ..sweep.executors import single_thread_env
    from ..workers import process_pool

    # Spawned workers (a fresh interpreter each: no inherited threads or numba pool),
    # started during the submits with one BLAS / OpenMP / numba thread each. The pool
    # is supervised: its workers die with this process (even kill -9), and Ctrl-C or
    # SIGTERM here terminates them instead of waiting for every run to finish.
    with process_pool(workers) as pool:
        with single_thread_env():
            futures = {
                pool.submit(_compute_one, settings, sr.seed, name, log is not None): (sr, name)
                for sr, name in tasks
            }
        for fut in cf.as_completed(futures):
            sr, name = futures[fut]
            try:
                sr._runs[name], sr.seconds[name] = fut.result()
            except cf.process.BrokenProcessPool:
                raise
            except Exception as exc:  # noqa: BLE001 - rebuilt (and reported) by its claim
                failed.add((sr.seed, name))
                if log is not None:
                    log(
                        f"seed {sr.seed}: run {name} failed in a worker "
                        f"({type(exc).__name__}: {exc})"
                    )


__all__ = [
    "LabeledRun",
    "SeedRuns",
    "RUNS",
    "batch",
    "symmetric_gd",
    "long_record_every",
    "compute_runs",
    "stderr_log",
]
