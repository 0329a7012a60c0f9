"""The one driver loop: stopping, recording, timing, divergence detection.

Methods only know how to take a step (see :mod:`matsense.methods.base`);
everything about *running* them lives here, in four small pieces that the
loop of :func:`run` strings together:

* :class:`_Batch` — the trajectories still advancing: their state, their
  original indices; it freezes, rolls back and drops finished ones and
  reassembles the final factors in the original order;
* :class:`_Stopping` — the stopping rule: divergence bounds, the tolerance,
  each trajectory's :class:`~matsense.trajectory.Status` and final iteration;
* :class:`_Recorder` — the history rows;
* :class:`IterateInfo` — what a callback sees (norms, and the iterate itself).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from . import _validate as V
from . import backend, diagnostics, threads
from .methods.base import as_factors, product
from .trajectory import BatchTrajectory, RunRecord, Status, Trajectory


def _prepare_init(problem, init):
    """Validate the user's factors, add the batch axis, move them to the problem's backend."""
    factors = as_factors(init)
    n1, n2 = problem.shape
    names = ("F0", "G0") if len(factors) == 2 else ("X0",)
    if len(factors) == 1 and n1 != n2:
        raise ValueError(f"X Xᵀ needs a square problem, got shape {(n1, n2)}; pass init=(F0, G0)")
    arrs = [V.real_array(nm, f) for nm, f in zip(names, factors)]
    for nm, a in zip(names, arrs):
        V.ndim_in(nm, a, (2, 3))
    batched = arrs[0].ndim == 3
    if any(a.ndim != arrs[0].ndim for a in arrs):
        raise ValueError("F0 and G0 must both have a batch axis or neither")
    if not batched:
        arrs = [a[None] for a in arrs]
    B, _, k = arrs[0].shape
    rows = (n1, n2) if len(arrs) == 2 else (n1,)
    for nm, a, n in zip(names, arrs, rows):
        if a.shape[0] != B or a.shape[1] != n or a.shape[2] != k:
            expect = f"(B, {n}, k)" if batched else f"({n}, k)"
            raise ValueError(f"{nm} must have shape {expect} with one k for all factors, "
                             f"got {tuple(a.shape[1:] if not batched else a.shape)}")
    V.int_in_range("k (columns of the factors)", k, 1, min(n1, n2))
    if len(factors) == 1 and problem.has_truth and not problem.symmetric:
        raise ValueError("X Xᵀ can only fit a symmetric PSD M*, and this problem's M* is not "
                         "symmetric: pass init=(F0, G0), or build the problem with symmetric=True")
    ref = problem.y
    xp = backend.namespace(ref)
    out = []
    for nm, a in zip(names, arrs):
        V.finite_array(nm, a)
        out.append(xp.asarray(a, dtype=ref.dtype, device=backend.device_of(ref)))
    return tuple(out), batched


# ------------------------------------------------------------------ the batch
def _select(mask_np, new_state, old_state, xp, dev):
    """Per-trajectory choice between two states (NamedTuples with batch-first arrays)."""
    if mask_np.all():
        return new_state
    mask = xp.asarray(mask_np, device=dev)
    fields = []
    for new, old in zip(new_state, old_state):
        if backend.is_array(new) and new.ndim >= 1:
            fields.append(backend.where_batch(mask, new, old))
        else:
            fields.append(new)
    return type(new_state)(*fields)


def _take(state, idx, xp, dev):
    """Rows ``idx`` (numpy ints) of every batch-first array field of a state."""
    ind = xp.asarray(idx, device=dev)
    return type(state)(*[xp.take(f, ind, axis=0) if backend.is_array(f) and f.ndim >= 1 else f
                         for f in state])


class _Batch:
    """The trajectories still advancing, as one batched method state.

    ``rows[i]`` is the original index of row i of ``state``. Trajectories that
    have stopped are frozen (their rows keep the stopping iterate) and dropped
    once they are at least half of the batch, their final state kept aside, so
    no work is spent stepping them further. :meth:`final` puts everything back
    in the original order.
    """

    def __init__(self, method, state):
        self.method = method
        self.state = self.prev = state
        self.xp = backend.namespace(method.factors(state)[0])
        self.dev = backend.device_of(method.factors(state)[0])
        self.rows = np.arange(method.factors(state)[0].shape[0])
        self._pieces = []  # (original indices, final factors, extras) of dropped rows

    def factors(self) -> tuple:
        return self.method.factors(self.state)

    def rollback(self, bad):
        """Trajectories ``bad`` (mask over the original B, or None: none) go back to the
        previous iterate."""
        if bad is not None:
            self.state = _select((~bad)[self.rows], self.state, self.prev, self.xp, self.dev)

    def advance(self, new_state, active, all_active: bool = False):
        """Take ``new_state`` for the ``active`` trajectories (mask over B); freeze the others.
        ``all_active``: every trajectory is active (then no mask needs to be read)."""
        self.prev = self.state
        if all_active:
            self.state = new_state
            return
        live = active[self.rows]
        self.state = _select(live, new_state, self.state, self.xp, self.dev)
        if 2 * live.sum() <= self.rows.size:
            gone, keep = np.flatnonzero(~live), np.flatnonzero(live)
            done = _take(self.state, gone, self.xp, self.dev)
            self._pieces.append((self.rows[gone], self.method.factors(done),
                                 self.method.extras(done)))
            self.state = _take(self.state, keep, self.xp, self.dev)
            self.prev = _take(self.prev, keep, self.xp, self.dev)
            self.rows = self.rows[keep]

    def scatter(self, values):
        """A length-B float array holding ``values`` (one per row) at the rows' original indices."""
        if not self._pieces:  # never compacted: rows is arange(B)
            return values
        B = self.rows.size + sum(p[0].size for p in self._pieces)
        out = np.full((B,) + values.shape[1:], np.nan)
        out[self.rows] = values
        return out

    def final(self):
        """Final factors and extras (numpy) of all B trajectories, in the original order."""
        pieces = self._pieces + [(self.rows, self.factors(), self.method.extras(self.state))]
        if len(pieces) == 1:
            _, final, extras = pieces[0]
            return final, {k: backend.to_numpy(v) for k, v in extras.items()}
        xp = self.xp
        perm = np.argsort(np.concatenate([p[0] for p in pieces]))
        ind = xp.asarray(perm, device=self.dev)
        final = tuple(xp.take(xp.concat([p[1][i] for p in pieces], axis=0), ind, axis=0)
                      for i in range(len(pieces[0][1])))
        extras = {k: np.concatenate([backend.to_numpy(p[2][k]) for p in pieces])[perm]
                  for k in pieces[0][2]}
        return final, extras


# ---------------------------------------------------------- the stopping rule
class _Stopping:
    """Divergence bounds and the tolerance; each trajectory's status and final iteration.

    A trajectory diverges when its residual (or error) is non-finite or
    exceeds ``divergence_factor`` × max(its value at t = 0, ‖y‖ (resp. ‖M*‖));
    it converges at the first iterate with relative error (relative residual
    without M*) <= ``tol``.
    """

    def __init__(self, problem, B: int, iters: int, tol, divergence_factor: float):
        self.tol = tol
        self.factor = divergence_factor
        self.y_norm = problem.y_norm
        self.M_norm = problem.M_star_norm
        self.status = np.full(B, Status.MAX_ITERS, dtype=object)
        self.iterations = np.full(B, iters)
        self.active = np.ones(B, dtype=bool)
        #: ``active.all()`` kept as a Python bool: the common case of a loop iteration, where
        #: every trajectory runs on, then costs no array operation (each one costs ~15 µs
        #: right after an operator pass has streamed the measurement data through the caches).
        self.all_active = True
        self.res_bound = self.err_bound = None

    def diverged(self, t: int, rn, err):
        """Mark (and return, as a mask; None when there are none) the active trajectories
        whose norms left the bounds at t."""
        if t == 0:
            _check_start(rn, err)
            self.res_bound = self.factor * np.maximum(rn, self.y_norm)
            if err is not None:
                self.err_bound = self.factor * np.maximum(err, self.M_norm)
        # NaN and ±inf fail `<=`, so one comparison catches non-finite and too large.
        ok = rn <= self.res_bound
        if err is not None:
            ok &= err <= self.err_bound
        if self.all_active and ok.all():
            return None
        bad = self.active & ~ok
        if not bad.any():
            return None
        self.status[bad] = Status.DIVERGED
        self.iterations[bad] = max(t - 1, 0)
        self.active &= ~bad
        self.all_active = False
        return bad

    def converged(self, rn, err):
        """The active trajectories that meet the tolerance (not yet marked: see :meth:`finish`),
        or None when there are none."""
        if self.tol is None:
            return None
        metric = (err / _scale(self.M_norm) if err is not None else rn / _scale(self.y_norm))
        done = metric <= self.tol
        if not done.any():
            return None
        return done if self.all_active else self.active & done

    def finish(self, t: int, mask, status: Status) -> None:
        """Trajectories ``mask`` end at iterate t with ``status``."""
        self.status[mask] = status
        self.iterations[mask] = t
        self.active &= ~mask
        self.all_active = False

    def any_active(self) -> bool:
        return self.all_active or bool(self.active.any())


def _scale(norm: float) -> float:
    """The denominator of a relative error: ‖M*‖_F (or ‖y‖), or 1 when it is 0 — relative
    to a zero M* the error is the absolute one (docs/conventions.md), never inf or NaN."""
    return norm if norm > 0 else 1.0


def _check_start(rn, err) -> None:
    """ValueError when the starting iterate's residual or error is not a finite number: there
    is no finite iterate to keep, so the run cannot even start (e.g. α = 1e150)."""
    bad = ~np.isfinite(rn) if err is None else ~(np.isfinite(rn) & np.isfinite(err))
    if bad.any():
        which = np.flatnonzero(bad)
        raise ValueError(f"the initial iterate's residual or error is not finite (it overflows "
                         f"float64) for trajectories {which.tolist()[:10]}: start from smaller "
                         f"factors (a smaller alpha)")


def state_bytes(shape, m: int, B: int, k: int, iters: int, record_every: int,
                record=None) -> int:
    """Estimated bytes of a run on an n1 × n2 problem with m measurements: the method's state
    (a few copies of the factors), the residuals, and the recorded history (rows × B × the
    recorded quantities)."""
    n1, n2 = shape
    rows = max(iters, 0) // max(record_every, 1) + 2
    per_row = 8 + (k if record is None or "singular_values" in record else 0)
    return 8 * (B * (8 * (n1 + n2) * k + 3 * m) + rows * B * per_row)


# ------------------------------------------------------------------ recording
#: History quantities ``run(record=...)`` can select; 'iteration', 'time' and
#: 'residual_norm' are always recorded.
RECORDABLE = ("loss", "error", "rel_error", "off_subspace", "imbalance_drift", "singular_values")


def _record_selection(record) -> frozenset:
    if record is None:
        return frozenset(RECORDABLE)
    if isinstance(record, str):
        record = [record]
    try:
        chosen = frozenset(record)
    except TypeError:
        raise ValueError(f"record must be a list of names from {', '.join(RECORDABLE)}, "
                         f"got {record!r}") from None
    unknown = sorted(str(x) for x in chosen - set(RECORDABLE) - {"residual_norm"})
    if unknown:
        raise ValueError(f"record: unknown quantities {unknown}; choose from "
                         f"{', '.join(RECORDABLE)} (iteration, time and residual_norm are "
                         "always recorded)")
    return chosen


class _Recorder:
    """Measures and collects history rows; each row is one iteration, NaN for trajectories
    not recorded.

    A row keeps the residual norms and one (B, 3 [+ k]) array of the other base
    quantities (columns :data:`~matsense.diagnostics.ROW_COLUMNS`, then σ(P) when recorded);
    loss, relative error and the NaN of trajectories not recorded are applied
    once, in :meth:`history`. Everything is computed from the factors and k×k
    (or (k + r)×k) matrices (:class:`~matsense.diagnostics.Truth`), never an
    n1 × n2 product when M* is known as factors; for NumPy float64 factors in
    one compiled call per row (:func:`~matsense.diagnostics.row_stats`): inside
    a run every separate NumPy call pays cold caches after the operator pass.
    """

    def __init__(self, truth, factors, record_every: int, iters: int, record):
        self.every = record_every
        self.iters = iters
        self.want = _record_selection(record)
        self.symmetric = len(factors) == 1
        self.truth = truth
        self.off = truth is not None and truth.U is not None and "off_subspace" in self.want
        self.sv = "singular_values" in self.want
        self.width = len(diagnostics.ROW_COLUMNS) + (factors[0].shape[-1] if self.sv else 0)
        self.Delta0 = None
        if not self.symmetric and "imbalance_drift" in self.want:
            # Δ₀ by the code that will compute Δ_t (so that the drift at t = 0 is exactly 0):
            # the compiled kernel where rows use it (see _compiled), else NumPy.
            got = diagnostics.row_stats(factors, delta=True)
            self.Delta0 = got[1] if got is not None else diagnostics.imbalance(*factors)
        self.iteration: list = []
        self.time: list = []
        self.rn: list = []
        self.stats: list = []
        self.masks: list = []

    def on_grid(self, t: int) -> bool:
        return t % self.every == 0 or t == self.iters

    def measure(self, fac, rnorm, batch: _Batch, need_err: bool, full: bool):
        """(rn, err, stats) of iterate ``fac`` over the original B trajectories.

        rn = ‖r‖ from ``rnorm`` (None: not asked, returned as None); err = ‖P − M*‖_F
        when ``need_err`` and M* is known, else None; stats the row's (B, 3 [+ k])
        quantities when ``full``, else None (err is their column 0).
        """
        need_err = need_err and self.truth is not None
        if not (need_err or full):
            return self._rn(rnorm, batch), None, None
        stats = None
        if isinstance(fac[0], np.ndarray):
            stats = self._compiled(fac, batch, need_err, full)
        if stats is None:  # NumPy calls, or another backend
            stats = np.full((fac[0].shape[0], self.width if full else 1), np.nan)
            if need_err and rnorm is not None:
                # One device→host copy for both norms: one GPU sync per iteration, not two.
                xp = backend.namespace(rnorm)
                rnorm, stats[:, 0] = backend.to_numpy(xp.stack([rnorm, self.truth.error(fac)]))
            elif need_err:
                stats[:, 0] = backend.to_numpy(self.truth.error(fac))
            if full:
                self._numpy(fac, batch, stats)
        stats = batch.scatter(stats)
        return (self._rn(rnorm, batch), stats[:, 0] if need_err else None,
                stats if full else None)

    @staticmethod
    def _rn(rnorm, batch):
        return None if rnorm is None else batch.scatter(backend.to_numpy(rnorm).astype(float))

    def _delta0(self, batch: _Batch):
        """Δ₀ of the batch's rows."""
        Delta0 = self.Delta0
        if Delta0 is not None and batch.rows.size < Delta0.shape[0]:
            xp = backend.namespace(Delta0)
            Delta0 = xp.take(Delta0, xp.asarray(batch.rows, device=backend.device_of(Delta0)),
                             axis=0)
        return Delta0

    def _compiled(self, fac, batch, need_err: bool, full: bool):
        """The row in one compiled call (diagnostics.row_stats), or None where it does not apply."""
        truth = self.truth
        dense = need_err and not truth.factored
        off = full and self.off
        got = diagnostics.row_stats(fac, M_star=truth.dense if dense else None,
                                    U=truth.U if off else None, V=truth.V if off else None,
                                    Delta0=self._delta0(batch) if full else None,
                                    singular_values=full and self.sv)
        if got is None:
            return None
        stats = got[0]
        if need_err and not dense:  # M* known as factors: the QR formula (O((n1 + n2)(k + r)²))
            stats[:, 0] = self.truth.error(fac)
        return stats

    def _numpy(self, fac, batch, stats):
        """Columns 1: of the row by NumPy (or the factors' backend) calls."""
        if self.off:
            stats[:, 1] = backend.to_numpy(self.truth.off_subspace(fac))
        if self.Delta0 is not None:
            stats[:, 2] = backend.to_numpy(diagnostics.imbalance_drift(*fac, self._delta0(batch)))
        if self.sv:
            stats[:, 3:] = backend.to_numpy(diagnostics.product_singular_values(fac))

    def add(self, t, elapsed, rn, stats, mask):
        """Record iteration t for the trajectories ``mask`` (rn, stats from :meth:`measure`)."""
        self.iteration.append(t)
        self.time.append(elapsed)
        self.rn.append(rn)
        self.stats.append(stats)
        self.masks.append(mask.copy())

    def history(self) -> tuple[dict, np.ndarray]:
        masks = np.asarray(self.masks, dtype=bool)
        if not self.iteration:
            return {}, masks
        nan = np.where(masks, 1.0, np.nan)
        rn, stats = np.asarray(self.rn), np.asarray(self.stats)
        rows = {"iteration": np.asarray(self.iteration), "time": np.asarray(self.time),
                "residual_norm": rn * nan}
        want = self.want
        if "loss" in want:
            rows["loss"] = diagnostics.loss(rn, self.symmetric) * nan
        if self.truth is not None:
            if "error" in want:
                rows["error"] = stats[..., 0] * nan
            if "rel_error" in want:
                rows["rel_error"] = stats[..., 0] / _scale(self.truth.norm) * nan
            if self.off:
                rows["off_subspace"] = stats[..., 1] * nan
        if self.Delta0 is not None:
            rows["imbalance_drift"] = stats[..., 2] * nan
        if self.sv:
            rows["singular_values"] = stats[..., 3:] * nan[..., None]
        return rows, masks


# ------------------------------------------------------------------- callback
class IterateInfo(Mapping):
    """What ``callback(t, info)`` receives: the norms of iterate t and the iterate itself.

    ``info["residual_norm"]`` and ``info["error"]`` are NumPy arrays over the
    B trajectories (NaN for trajectories that have stopped; ``error`` is None
    when not computed at t); ``info["active"]`` (B,) says which trajectories
    are still running (not yet converged, diverged or stopped);
    ``info["factors"]`` are the factors of iterate t of the trajectories still
    in the batch, whose original indices are ``info["rows"]`` (a finished
    trajectory may stay in the batch, frozen, for a while: check ``active``);
    ``info["extras"]`` the method's extras of those rows (e.g. a running sum a
    method keeps in its state). Factors and extras are built on first access.
    """

    _KEYS = ("residual_norm", "error", "active", "rows", "factors", "extras")

    def __init__(self, t, rn, err, active, batch: _Batch):
        self.t = t
        self._values = {"residual_norm": rn, "error": err, "active": active.copy(),
                        "rows": batch.rows}
        self._batch = batch

    def __getitem__(self, key):
        if key == "factors":
            return self._batch.factors()
        if key == "extras":
            return self._batch.method.extras(self._batch.state)
        if key not in self._KEYS:
            raise KeyError(key)
        return self._values[key]

    def __iter__(self):
        return iter(self._KEYS)

    def __len__(self) -> int:
        return len(self._KEYS)


# ------------------------------------------------------------------------ run
def run(problem, method, init, iters: int = 1000, *, tol: float | None = None,
        record_every: int = 1, divergence_factor: float = 1e6, callback=None,
        progress: bool = False, record=None, max_memory=None) -> Trajectory | BatchTrajectory:
    """Run ``method`` on ``problem`` from ``init`` for ``iters`` iterations or until ``tol``.

    Parameters
    ----------
    problem : Problem
    method : a method (e.g. ``GD(step_size=0.3)``)
    init : X0, or (F0, G0)
        Initial factors, shape (n, k) / (n1, k), (n2, k), or with a leading
        batch axis B to advance B trajectories together.
    iters : int
        Maximum number of iterations (>= 0).
    tol : float, optional
        Stop a trajectory at the first iterate with relative error
        ‖P − M*‖_F/‖M*‖_F <= tol (relative residual ‖𝒜(P) − y‖/‖y‖ when M* is
        unknown).
    record_every : int
        Record the history every this many iterations (the first, the last
        and a converged iterate are always recorded).
    divergence_factor : float
        A trajectory whose residual (or error) is non-finite or exceeds this
        factor times max(initial value, ‖y‖) (resp. ‖M*‖) ends with status
        'diverged' and keeps its last finite iterate.
    callback : callable, optional
        ``callback(t, info) -> bool``, called at every iterate t; returning
        True stops the run after recording iterate t, and the trajectories
        still running get status 'stopped'. ``info`` (an :class:`IterateInfo`)
        holds ``info["residual_norm"]``, ``info["error"]``, and the iterate:
        ``info["factors"]``, ``info["extras"]``, ``info["rows"]``.
    progress : bool
        Show a tqdm progress bar.
    record : sequence of str, optional
        The history quantities to record, from :data:`RECORDABLE` (default:
        all of them); 'iteration', 'time' and 'residual_norm' always are.
        Recording fewer makes long runs of small problems cheaper.
    max_memory : int or str, optional
        Most bytes the run's state and history may take (e.g. ``"8G"``);
        default ``MATSENSE_MAX_MEMORY``, else 90% of the available memory. A
        larger run is refused with a one-line ``ValueError`` before it starts.

    Returns
    -------
    Trajectory
        for unbatched ``init``; a :class:`~matsense.trajectory.BatchTrajectory`
        (``batch[b]`` is trajectory b) for batched ``init``.
    """
    V.problem_arg(problem, "run")
    V.method_arg(method, "run")
    loop = _iterate(problem, method, init, iters, tol=tol, record_every=record_every,
                    divergence_factor=divergence_factor, callback=callback, progress=progress,
                    record=record, max_memory=max_memory)
    with np.errstate(all="ignore"), threads.blas_threads_for(problem.operator, problem.y):
        try:
            while True:
                next(loop)
        except StopIteration as done:
            return done.value


def _iterate(problem, method, init, iters, *, tol, record_every, divergence_factor, callback,
             progress, record, step_problem=None, clock=time.perf_counter, max_memory=None):
    """The loop of :func:`run` as a generator: it yields the factors of iterate t just before
    the method's step evaluates the operator at them, and returns the result.

    A coordinator (:func:`run_together`) uses the pause to evaluate several runs'
    products in one operator pass and hands each its share through
    ``step_problem`` (a :class:`_Prefetched` view of ``problem``), and times
    each run by its own ``clock``. The caller holds the floating-point error
    state and BLAS thread limits around it.
    """
    factors, batched = _prepare_init(problem, init)
    iters = V.int_in_range("iters", iters, 0)
    record_every = V.int_in_range("record_every", record_every, 1)
    if tol is not None:
        tol = V.positive_float("tol", tol)
    divergence_factor = V.positive_float("divergence_factor", divergence_factor)
    if callback is not None and not callable(callback):
        raise V.ArgumentTypeError(f"callback must be callable (t, info) -> bool, got "
                                  f"{callback!r} ({type(callback).__name__})")

    step_problem = problem if step_problem is None else step_problem
    B = factors[0].shape[0]
    from . import memory

    memory.check(f"the run's state and history (batch of {B}, {iters} iterations, "
                 f"recorded every {record_every})",
                 state_bytes(problem.shape, problem.m, B, factors[0].shape[-1], iters,
                             record_every, record),
                 max_memory)
    truth = diagnostics.Truth.of(problem, factors[0])
    rec = _Recorder(truth, factors, record_every, iters, record)
    batch = _Batch(method, method.init(problem, factors))
    stopping = _Stopping(problem, B, iters, tol, divergence_factor)
    bar = _progress_bar(progress, iters, method)
    start = clock()
    for t in range(iters + 1):
        fac = batch.factors()
        yield fac
        new_state, rnorm = method.step(step_problem, batch.state)
        on_grid = rec.on_grid(t)
        rn, err, stats = rec.measure(fac, rnorm, batch, tol is not None or on_grid, on_grid)
        batch.rollback(stopping.diverged(t, rn, err))
        done = stopping.converged(rn, err)
        stop = callback is not None and bool(callback(t, IterateInfo(t, rn, err, stopping.active,
                                                                     batch)))
        # The start is recorded for every trajectory, also one that "diverged" at t = 0 (a
        # divergence_factor below 1): its factors are that start, and its history has a row.
        _record(rec, clock() - start, t, batch, fac, rn, stats,
                stopping.active if t else np.ones(B, dtype=bool), done, stop)
        if done is not None:
            stopping.finish(t, done, Status.CONVERGED)
        if t == iters or stop or not stopping.any_active():
            stopping.finish(t, stopping.active.copy(), Status.STOPPED if stop else Status.MAX_ITERS)
            break
        batch.advance(new_state, stopping.active, stopping.all_active)
        if bar is not None:
            bar.update(1)
    wall = clock() - start
    if bar is not None:
        bar.close()

    final, extras = batch.final()
    history, recorded = rec.history()
    result = RunRecord(final, stopping.status, stopping.iterations, wall, history, recorded,
                       extras, _config(method, iters, tol, record_every, B,
                                       _kernel(problem, B)))
    return BatchTrajectory(result) if batched else Trajectory(result)


# ---------------------------------------------------------------- run_together
class _Primed(NamedTuple):
    """One run's share of a stacked operator call (P and S only where the call formed them)."""

    F: object
    G: object
    r: object
    SG: object
    StF: object
    P: object = None
    S: object = None


class _Prefetched:
    """A view of a problem whose next operator evaluation may already be computed.

    :func:`run_together` evaluates several runs' factors in one operator call
    and primes each run's view with its share; the method's step then finds
    its (r, S G, Sᵀ F) here — or, for a method that asks for
    ``residual_and_adjoint(P)`` with P = F Gᵀ of the same factors (SVP), its
    (r, S), when the stacked call computed S. A call with other factors
    (APGD's second residual, say), or any other call, goes to the problem itself.
    """

    def __init__(self, problem):
        self._problem = problem
        self._primed = None

    def __getattr__(self, name):
        return getattr(self._problem, name)

    def prime(self, F, G, r, SG, StF, P=None, S=None):
        self._primed = _Primed(F, G, r, SG, StF, P, S)

    def _take(self):
        primed, self._primed = self._primed, None
        return primed

    def residual_and_grads(self, F, G):
        primed = self._take()
        if primed is not None and _same(primed.F, F) and _same(primed.G, G):
            return primed.r, primed.SG, primed.StF
        return self._problem.residual_and_grads(F, G)

    def residual_and_adjoint(self, P):
        primed = self._take()
        if primed is not None and primed.S is not None and _same(primed.P, P):
            return primed.r, primed.S
        return self._problem.residual_and_adjoint(P)


def _same(a, b) -> bool:
    if a is b:
        return True
    if a.shape != b.shape:
        return False
    return bool(backend.namespace(a).all(a == b))


class _Account:
    """A run's own clock inside :func:`run_together`: its steps, plus its share of each pass."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def run_together(problem, runs, iters=1000, *, max_stack: int | None = None,
                 **options) -> list:
    """Several runs on one problem in lock-step, sharing one operator pass per iteration.

    Parameters
    ----------
    problem : Problem
    runs : sequence of (method, init)
        Each pair is what :func:`run` takes; methods may differ (GD, ScaledGD,
        PrecGD, SVP, ...). Their first operator evaluation of an iteration — r,
        S G and Sᵀ F at their own factors, or r and S = 𝒜*(r) at P = F Gᵀ for
        SVP — is done for several runs in one call, in groups of at most
        ``max_stack`` trajectories: on a flat NumPy operator (dense Gaussian,
        symmetric Gaussian) on their stacked products F Gᵀ, whatever their
        factor widths k; otherwise on the stacked factors of runs with the
        same k.
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
    V.problem_arg(problem, "run_together")
    if isinstance(runs, (str, bytes)) or not hasattr(runs, "__len__"):
        raise V.ArgumentTypeError(f"run_together: runs must be a list of (method, init) pairs, "
                                  f"got {type(runs).__name__}")
    for pair in runs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise V.ArgumentTypeError(f"run_together: each run must be a (method, init) pair, "
                                      f"got {type(pair).__name__}")
        V.method_arg(pair[0], "run_together")
    if max_stack is None:
        from .operators.dispatch import FUSED_MAX_BATCH as max_stack
    max_stack = V.int_in_range("max_stack", max_stack, 1)
    budgets = [iters] * len(runs) if isinstance(iters, (int, np.integer)) else list(iters)
    if len(budgets) != len(runs):
        raise ValueError(f"iters must be one int or one per run ({len(runs)}), got {len(budgets)}")
    views = [_Prefetched(problem) for _ in runs]
    clocks = [_Account() for _ in runs]
    defaults = {"tol": None, "record_every": 1, "divergence_factor": 1e6, "callback": None,
                "progress": False, "record": None}
    loops = [_iterate(problem, method, init, n, step_problem=view, clock=clock,
                      **{**defaults, **options})
             for (method, init), n, view, clock in zip(runs, budgets, views, clocks)]
    results: list = [None] * len(loops)
    stacked = [0] * len(loops)  # each run's latest stacked batch size
    with np.errstate(all="ignore"), threads.blas_threads_for(problem.operator, problem.y):
        _lockstep(problem, loops, views, clocks, results, max_stack, stacked)
    for traj, B in zip(results, stacked):
        if B:  # the kernel of the stacked passes, not of a batch this run never ran alone
            traj.config["kernel"] = _kernel(problem, B)
    return results


def _lockstep(problem, loops, views, clocks, results, max_stack, stacked):
    live = list(range(len(loops)))
    while live:
        wanting = []
        for i in list(live):
            tick = time.perf_counter()
            try:
                fac = next(loops[i])
            except StopIteration as done:
                results[i] = done.value
                live.remove(i)
                continue
            finally:
                clocks[i].seconds += time.perf_counter() - tick
            wanting.append((i, (fac[0], fac[0]) if len(fac) == 1 else fac))
        flat = _stacks_products(problem, wanting)
        for group in _stacks(wanting, max_stack, flat):
            tick = time.perf_counter()
            B = _stacked_pass(problem, group, views, flat)
            for i, _ in group:
                stacked[i] = B
            share = (time.perf_counter() - tick) / B
            for i, (f, _) in group:
                clocks[i].seconds += share * f.shape[0]


def _stacks_products(problem, wanting) -> bool:
    """True when the stacked call goes through the products F Gᵀ (a flat NumPy operator): then
    runs of any factor width k share a pass, and S itself is at hand for SVP's step."""
    from .operators.base import FlatMatrixOperator

    return (isinstance(problem.operator, FlatMatrixOperator)
            and all(isinstance(f, np.ndarray) for _, (f, _) in wanting))


def _stacked_pass(problem, group, views, flat: bool) -> int:
    """One operator call for the runs of ``group``; primes each run's view. Returns the batch."""
    xp = backend.namespace(group[0][1][0])
    if flat:
        # What FlatMatrixOperator.residual_and_grads computes, on the products of every run
        # (each run's F Gᵀ, S G and Sᵀ F are the same calls as alone, so bitwise the same).
        products = [f @ g.mT for _, (f, g) in group]
        P = products[0] if len(group) == 1 else xp.concat(products, axis=0)
        r, S = problem.residual_and_adjoint(P)
        lo = 0
        for (i, (f, g)), Pi in zip(group, products):
            hi = lo + f.shape[0]
            Si = S[lo:hi]
            views[i].prime(f, g, r[lo:hi], Si @ g, Si.mT @ f, Pi, Si)
            lo = hi
        return P.shape[0]
    if len(group) == 1:
        F, G = group[0][1]
    else:
        F = xp.concat([f for _, (f, _) in group], axis=0)
        G = xp.concat([g for _, (_, g) in group], axis=0)
    r, SG, StF = problem.residual_and_grads(F, G)
    lo = 0
    for i, (f, g) in group:
        hi = lo + f.shape[0]
        views[i].prime(f, g, r[lo:hi], SG[lo:hi], StF[lo:hi])
        lo = hi
    return F.shape[0]


def _stacks(wanting, max_stack: int, flat: bool = False):
    """Groups of requests that can share an operator call, at most ``max_stack`` trajectories,
    in the order given: the same shapes, or any factor width k when ``flat``."""
    groups: dict = {}
    for i, (F, G) in wanting:
        key = (F.shape[-2], G.shape[-2]) if flat else (F.shape[-1], F.shape[-2], G.shape[-2])
        group, size = groups.get(key, ([], 0))
        if group and size + F.shape[0] > max_stack:
            yield group
            group, size = [], 0
        group.append((i, (F, G)))
        groups[key] = (group, size + F.shape[0])
    for group, _ in groups.values():
        if group:
            yield group


def _record(rec, elapsed, t, batch, fac, rn, stats, active, done, stop):
    """Record iterate t for the active trajectories on the grid, converging, or stopped now."""
    on_grid = rec.on_grid(t) or stop
    if done is None and not on_grid:
        return
    mask = active & (on_grid | done) if done is not None else active & on_grid
    if mask.any():
        if stats is None:  # off the grid: a trajectory converged or the callback stopped
            stats = rec.measure(fac, None, batch, True, True)[2]
        rec.add(t, elapsed, rn, stats, mask)


def _progress_bar(progress: bool, iters: int, method):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=iters, desc=getattr(method, "name", "run"), unit="it")


def _config(method, iters, tol, record_every, B, kernel=None) -> dict:
    """The method's name and hyper-parameters, the run settings and the operator kernel."""
    config = {"method": getattr(method, "name", type(method).__name__)}
    if dataclasses.is_dataclass(method):
        config.update({f.name: getattr(method, f.name) for f in dataclasses.fields(method)})
    config.update(iters=iters, tol=tol, record_every=record_every, batch=B, kernel=kernel)
    return config


def _kernel(problem, B: int) -> str | None:
    """The kernel the operator ran for this batch (after the run: the planner has chosen)."""
    kernel_for = getattr(problem.operator, "kernel_for", None)
    return None if kernel_for is None else kernel_for(B)


__all__ = ["run", "run_together", "IterateInfo", "RECORDABLE"]
