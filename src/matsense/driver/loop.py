"""The one driver loop: :func:`run`, and :func:`iterate`, its loop as a generator.

Methods only know how to take a step (see :mod:`matsense.methods.base`);
everything about *running* them lives in this package, one job a module:
:mod:`~.start` (checks before the start), :mod:`~.batch` (the trajectories
still advancing), :mod:`~.stopping` (the stopping rule), :mod:`~.record`
(the history rows), :mod:`~.info` (what a callback sees) and
:mod:`~.together` (several runs sharing one operator pass).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from .. import _validate as V
from .. import backend, diagnostics, threads
from ..methods.base import phases_of, request_of
from ..trajectory import BatchTrajectory, RunRecord, Status, Trajectory
from .batch import Batch
from .info import IterateInfo
from .record import Recorder
from .start import check_memory, check_options, prepare_init
from .stopping import Stopping


def run(
    problem,
    method,
    init,
    iters: int = 1000,
    *,
    tol: float | None = None,
    record_every: int = 1,
    divergence_factor: float = 1e6,
    callback=None,
    progress: bool = False,
    record=None,
    max_memory=None,
) -> Trajectory | BatchTrajectory:
    """Run ``method`` on ``problem`` from ``init`` for ``iters`` iterations or until ``tol``.

    Parameters
    ----------
    problem : Problem
    method : a method (e.g. ``GD(step_size=0.3)``)
    init : X0, or (F0, G0)
        Initial factors, (n, k) / (n1, k), (n2, k), or with a leading batch axis B.
    iters : int
        Maximum number of iterations (>= 0).
    tol : float, optional
        Stop a trajectory once ‖P − M*‖_F/‖M*‖_F <= tol (‖𝒜(P) − y‖/‖y‖ without M*).
    record_every : int
        History stride (the first, the last and a converged iterate are always recorded).
    divergence_factor : float
        Status 'diverged' (the last finite iterate kept) once the residual (error) is
        non-finite or exceeds this times max(initial value, ‖y‖) (‖M*‖).
    callback : callable, optional
        ``callback(t, info) -> bool`` at every iterate t; True stops the run (status
        'stopped'); ``info`` is an :class:`IterateInfo` (residual_norm, error, factors, ...).
    progress : bool
        Show a tqdm progress bar.
    record : sequence of str, optional
        History quantities, from :data:`RECORDABLE` (default all; 'iteration', 'time'
        and 'residual_norm' always). Fewer make long runs of small problems cheaper.
    max_memory : int or str, optional
        Most bytes of state and history (e.g. ``"8G"``; default ``MATSENSE_MAX_MEMORY``,
        else 90% of the available memory); a larger run is refused before it starts.

    Returns
    -------
    Trajectory, or BatchTrajectory (``batch[b]`` is trajectory b) for batched ``init``.
    """
    V.problem_arg(problem, "run")
    V.method_arg(method, "run")
    options = dict(tol=tol, record_every=record_every, divergence_factor=divergence_factor)
    options.update(callback=callback, progress=progress, record=record, max_memory=max_memory)
    loop = iterate(problem, method, init, iters, **options)
    with np.errstate(all="ignore"), threads.blas_threads_for(problem.operator, problem.y):
        try:
            while True:
                next(loop)
        except StopIteration as done:
            return done.value


@dataclasses.dataclass
class _Run:
    """One run's pieces inside :func:`iterate`."""

    problem: Any
    method: Any
    iters: int
    tol: float | None
    record_every: int
    callback: Any
    batched: bool
    rec: Recorder
    batch: Batch
    stopping: Stopping
    start_imbalance: Any  # Δ₀ (B, k, k) of F Gᵀ starts, None for X Xᵀ

    @property
    def size(self) -> int:
        return self.stopping.iterations.shape[0]


def _setup(
    problem, method, init, iters, tol, record_every, divergence_factor, callback, record, max_memory
) -> _Run:
    """The checks before the start (in this order: factors, options, memory), then the pieces."""
    factors, batched = prepare_init(problem, init)
    iters, record_every, tol, divergence_factor = check_options(
        iters, record_every, tol, divergence_factor, callback
    )
    B = factors[0].shape[0]
    check_memory(problem, factors, iters, record_every, record, max_memory)
    truth = diagnostics.Truth.of(problem, factors[0])
    rec = Recorder(truth, factors, record_every, iters, record)
    batch = Batch(method, method.init(problem, factors))
    stopping = Stopping(problem, B, iters, tol, divergence_factor)
    # Δ₀ = F₀ᵀF₀ − G₀ᵀG₀ of the start, kept with the result (C4 reads λ_min(Δ₀) from it).
    delta0 = backend.to_numpy(diagnostics.imbalance(*factors)) if len(factors) == 2 else None
    return _Run(
        problem, method, iters, tol, record_every, callback, batched, rec, batch, stopping, delta0
    )


def iterate(
    problem,
    method,
    init,
    iters,
    *,
    tol,
    record_every,
    divergence_factor,
    callback,
    progress,
    record,
    clock=time.perf_counter,
    max_memory=None,
    together=False,
):
    """The loop of :func:`run` as a generator that returns the result.

    Before each step it yields the operator evaluation the method's step asks
    for first (an :class:`~matsense.operators.stacking.Evaluation`; always None
    unless ``together``, and None for a method whose step makes its own calls)
    and takes its answer from ``send`` (None: the step evaluates it itself).
    :func:`~matsense.driver.together.run_together` answers several runs' requests
    with one stacked operator call and times each run by its own ``clock``. The
    caller holds the floating-point error state and BLAS thread limits around it.
    """
    run_ = _setup(
        problem,
        method,
        init,
        iters,
        tol,
        record_every,
        divergence_factor,
        callback,
        record,
        max_memory,
    )
    batch = run_.batch
    bar = _progress_bar(progress, run_.iters, method)
    start = clock()
    for t in range(run_.iters + 1):
        fac = batch.factors()
        answer = yield (request_of(method, problem, batch.state) if together else None)
        if answer is None:
            new_state, rnorm = method.step(problem, batch.state)
        else:
            new_state, rnorm = method.advance(problem, batch.state, answer)
        if _observe(run_, t, fac, rnorm, lambda: clock() - start):
            break
        batch.advance(new_state, run_.stopping.active, run_.stopping.all_active)
        if bar is not None:
            bar.update(1)
    wall = clock() - start
    if bar is not None:
        bar.close()
    return _result(run_, wall)


def _observe(run_: _Run, t: int, fac, rnorm, elapsed) -> bool:
    """Measure, check and record iterate t after its step; True when the run ends at t."""
    rec, batch, stopping = run_.rec, run_.batch, run_.stopping
    on_grid = rec.on_grid(t)
    rn, err, stats = rec.row(fac, rnorm, batch, run_.tol is not None or on_grid, on_grid)
    batch.rollback(stopping.diverged(t, rn, err))
    done = stopping.converged(rn, err)
    stop = run_.callback is not None and bool(
        run_.callback(t, IterateInfo(t, rn, err, stopping.active, batch))
    )
    # The start is recorded for every trajectory, also one that "diverged" at t = 0 (a
    # divergence_factor below 1): its factors are that start, and its history has a row.
    rec.keep(
        elapsed(),
        t,
        batch,
        fac,
        rn,
        stats,
        stopping.active if t else np.ones(run_.size, dtype=bool),
        done,
        stop,
    )
    if done is not None:
        stopping.finish(t, done, Status.CONVERGED)
    if t == run_.iters or stop or not stopping.any_active():
        stopping.finish(t, stopping.active.copy(), Status.STOPPED if stop else Status.MAX_ITERS)
        return True
    return False


def _result(run_: _Run, wall: float):
    """The run's :class:`~matsense.trajectory.RunRecord`, as the result type of its ``init``."""
    final, extras = run_.batch.final()
    history, recorded = run_.rec.history()
    B = run_.size
    phases = tuple(phases_of(run_.method, _extras_of(extras, b)) for b in range(B))
    result = RunRecord(
        final,
        run_.stopping.status,
        run_.stopping.iterations,
        wall,
        history,
        recorded,
        extras,
        config_of(
            run_.method, run_.iters, run_.tol, run_.record_every, B, kernel_name(run_.problem, B)
        ),
        phases=phases,
        start_imbalance=run_.start_imbalance,
    )
    return BatchTrajectory(result) if run_.batched else Trajectory(result)


def _extras_of(extras: dict, b: int) -> dict:
    """Trajectory b's extras: scalars as Python numbers, other per-trajectory values as they are."""
    return {k: (v[b].item() if np.ndim(v[b]) == 0 else v[b]) for k, v in extras.items()}


def _progress_bar(progress: bool, iters: int, method):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=iters, desc=getattr(method, "name", "run"), unit="it")


def config_of(method, iters, tol, record_every, B, kernel=None) -> dict:
    """The method's name and hyper-parameters, the run settings and the operator kernel."""
    config = {"method": getattr(method, "name", type(method).__name__)}
    if dataclasses.is_dataclass(method):
        config.update({f.name: getattr(method, f.name) for f in dataclasses.fields(method)})
    config.update(iters=iters, tol=tol, record_every=record_every, batch=B, kernel=kernel)
    return config


def kernel_name(problem, B: int) -> str | None:
    """The kernel the operator ran for this batch (after the run: the planner has chosen)."""
    kernel_for = getattr(problem.operator, "kernel_for", None)
    return None if kernel_for is None else kernel_for(B)


__all__ = ["run", "iterate", "config_of", "kernel_name"]
