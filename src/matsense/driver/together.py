"""Several runs on one problem in lock-step, sharing one operator pass per iteration.

Each run is the generator :func:`~matsense.driver.loop.iterate`, which yields the
evaluation its method's step asks for first (``method.request``). The
coordinator groups the requests by the operator's
:meth:`~matsense.operators.MatrixOperator.stack_key`, answers each group with
one :meth:`~matsense.operators.MatrixOperator.evaluate_stacked` call and sends
each run its answer: it names no operator class and never guesses a call.
"""

from __future__ import annotations

import time

import numpy as np

from .. import _validate as V
from .. import threads
from .loop import iterate, kernel_name


class _Account:
    """A run's own clock inside :func:`run_together`: its steps, plus its share of each pass."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


#: :func:`run`'s defaults of the options ``run_together`` passes on to every run.
_DEFAULTS = dict(
    tol=None, record_every=1, divergence_factor=1e6, callback=None, progress=False, record=None
)


def run_together(problem, runs, iters=1000, *, max_stack: int | None = None, **options) -> list:
    """Several runs on one problem in lock-step, sharing one operator pass per iteration.

    Parameters
    ----------
    problem : Problem
    runs : sequence of (method, init)
        Each pair is what :func:`run` takes; methods may differ (GD, ScaledGD,
        PrecGD, SVP, ...). The first operator evaluation of each one's step,
        which the method names (``method.request``, an
        :class:`~matsense.operators.stacking.Evaluation`: r, S G and Sᵀ F at its
        factors, or r and S = 𝒜*(r) at P = F Gᵀ for SVP), is answered for
        several runs by one operator call
        (:meth:`~matsense.operators.MatrixOperator.evaluate_stacked`) in groups of
        at most ``max_stack`` trajectories with one
        :meth:`~matsense.operators.MatrixOperator.stack_key`: on a flat NumPy
        operator (dense Gaussian, symmetric Gaussian) on their stacked products
        F Gᵀ, whatever their factor widths k; otherwise on the stacked factors
        of runs with the same k. A method without ``request`` steps alone.
    iters : int or sequence of int
        Maximum iterations, for all runs or one per run.
    **options
        As for :func:`run` (``tol``, ``record_every``, ``divergence_factor``,
        ``record``), the same for every run.
    max_stack : int, optional
        Most trajectories per stacked operator call; default
        :data:`matsense.operators.dispatch.FUSED_MAX_BATCH` (16), the largest
        batch that bitwise mode (:func:`~matsense.threads.single_threaded`)
        runs with the one-pass kernel. The numba kernel computes each
        trajectory exactly as alone whatever the batch (float64), so inside
        ``single_threaded()`` each run's result is bitwise what :func:`run`
        gives; outside it the planner may pick another kernel for the stacked
        batch than for one run, and results agree to rounding.

    Returns
    -------
    list of Trajectory / BatchTrajectory, in the order of ``runs``. Each one's
    ``wall_time`` and history ``time`` count its own steps and its share
    (by trajectories) of the stacked operator passes.
    """
    budgets, max_stack = _check_runs(problem, runs, iters, max_stack)
    clocks = [_Account() for _ in runs]
    loops = [
        iterate(problem, method, init, n, clock=clock, together=True, **{**_DEFAULTS, **options})
        for (method, init), n, clock in zip(runs, budgets, clocks)
    ]
    results: list = [None] * len(loops)
    stacked = [0] * len(loops)  # each run's latest stacked batch size
    with np.errstate(all="ignore"), threads.blas_threads_for(problem.operator, problem.y):
        _lockstep(problem, loops, clocks, results, max_stack, stacked)
    for traj, B in zip(results, stacked):
        if B:  # the kernel of the stacked passes, not of a batch this run never ran alone
            traj.config["kernel"] = kernel_name(problem, B)
    return results


def _check_runs(problem, runs, iters, max_stack) -> tuple[list, int]:
    """ArgumentTypeError / ValueError for bad arguments; the iterations of each run and the
    largest stack."""
    V.problem_arg(problem, "run_together")
    if isinstance(runs, (str, bytes)) or not hasattr(runs, "__len__"):
        raise V.ArgumentTypeError(
            f"run_together: runs must be a list of (method, init) pairs, got {type(runs).__name__}"
        )
    for pair in runs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise V.ArgumentTypeError(
                f"run_together: each run must be a (method, init) pair, got {type(pair).__name__}"
            )
        V.method_arg(pair[0], "run_together")
    if max_stack is None:
        from ..operators.dispatch import FUSED_MAX_BATCH as max_stack
    max_stack = V.int_in_range("max_stack", max_stack, 1)
    budgets = [iters] * len(runs) if isinstance(iters, (int, np.integer)) else list(iters)
    if len(budgets) != len(runs):
        raise ValueError(f"iters must be one int or one per run ({len(runs)}), got {len(budgets)}")
    return budgets, max_stack


def _lockstep(problem, loops, clocks, results, max_stack, stacked):
    """Advance every run to its next request, answer the stackable ones in groups, repeat."""
    live = list(range(len(loops)))
    answers: dict = {}
    while live:
        wanting = []
        for i in list(live):
            tick = time.perf_counter()
            try:
                request = loops[i].send(answers.pop(i, None))
            except StopIteration as done:
                results[i] = done.value
                live.remove(i)
                continue
            finally:
                clocks[i].seconds += time.perf_counter() - tick
            key = None if request is None else problem.operator.stack_key(request)
            if key is not None:
                wanting.append((i, key, request))
        for group in _groups(wanting, max_stack):
            tick = time.perf_counter()
            got = problem.operator.evaluate_stacked([req for _, req in group], problem.y)
            B = sum(req.batch for _, req in group)
            share = (time.perf_counter() - tick) / B
            for (i, req), answer in zip(group, got):
                answers[i] = answer
                stacked[i] = B
                clocks[i].seconds += share * req.batch


def _groups(wanting, max_stack: int):
    """Groups of requests with one stack key, at most ``max_stack`` trajectories each, in the
    order given (a group is closed when the next request would overflow it)."""
    groups: dict = {}
    for i, key, request in wanting:
        group, size = groups.get(key, ([], 0))
        if group and size + request.batch > max_stack:
            yield group
            group, size = [], 0
        group.append((i, request))
        groups[key] = (group, size + request.batch)
    for group, _ in groups.values():
        if group:
            yield group


__all__ = ["run_together"]
