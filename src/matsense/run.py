"""The one driver loop: stopping, recording, timing, divergence detection.

Methods only know how to take a step (see :mod:`matsense.methods.base`);
everything about *running* them lives here.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from . import _validate as V
from . import backend, diagnostics
from .methods.base import as_factors, product
from .trajectory import Trajectory


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
    if len(factors) == 1 and problem.M_star is not None and not problem.symmetric:
        raise ValueError("X Xᵀ can only fit a symmetric PSD M*, and this problem's M* is not "
                         "symmetric: pass init=(F0, G0), or build the problem with symmetric=True")
    ref = problem.y
    xp = backend.namespace(ref)
    out = []
    for nm, a in zip(names, arrs):
        V.finite_array(nm, a)
        out.append(xp.asarray(a, dtype=ref.dtype, device=backend.device_of(ref)))
    return tuple(out), batched


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


def _scatter(values, rows, B):
    """A length-B float array holding ``values`` at ``rows`` and NaN elsewhere."""
    if rows.size == B:  # the batch has not been compacted: rows is arange(B)
        return values
    out = np.full((B,) + values.shape[1:], np.nan)
    out[rows] = values
    return out


class _Recorder:
    """Collects history rows; each row is one iteration, NaN for trajectories not recorded."""

    def __init__(self, problem, factors):
        self.problem = problem
        self.symmetric = len(factors) == 1
        self.M_star = problem.M_star
        if self.M_star is not None:
            xp = backend.namespace(factors[0])
            dev = backend.device_of(factors[0])
            self.M_norm = problem.M_star_norm
            self.U = None if problem.U_star is None else xp.asarray(problem.U_star, dtype=factors[0].dtype, device=dev)
            self.V = None if problem.V_star is None else xp.asarray(problem.V_star, dtype=factors[0].dtype, device=dev)
        self.Delta0 = None if self.symmetric else diagnostics.imbalance(*factors)
        self.rows: dict[str, list] = {}

    def add(self, t, elapsed, factors, rnorm_np, err_np, mask, rows):
        """Record iteration t; ``factors`` hold the batch rows ``rows`` of the B trajectories."""
        B = mask.shape[0]
        row = {"iteration": t, "time": elapsed}
        nan = np.where(mask, 1.0, np.nan)
        row["residual_norm"] = rnorm_np * nan
        row["loss"] = diagnostics.loss(rnorm_np, self.symmetric) * nan
        if err_np is not None:
            row["error"] = err_np * nan
            row["rel_error"] = err_np / self.M_norm * nan
            if self.U is not None:
                off = backend.to_numpy(diagnostics.off_subspace(factors, self.U, self.V))
                row["off_subspace"] = _scatter(off, rows, B) * nan
        if self.Delta0 is not None:
            Delta0 = self.Delta0
            if rows.size < B:
                xp = backend.namespace(Delta0)
                Delta0 = xp.take(Delta0, xp.asarray(rows, device=backend.device_of(Delta0)), axis=0)
            drift = backend.to_numpy(diagnostics.imbalance_drift(*factors, Delta0))
            row["imbalance_drift"] = _scatter(drift, rows, B) * nan
        sv = backend.to_numpy(diagnostics.product_singular_values(factors))
        row["singular_values"] = _scatter(sv, rows, B) * nan[:, None]
        for key, val in row.items():
            self.rows.setdefault(key, []).append(val)

    def history(self, batched):
        h = {key: np.asarray(vals) for key, vals in self.rows.items()}
        if not batched:
            for key, val in h.items():
                if key not in ("iteration", "time"):
                    h[key] = val[:, 0]
        return h


def _assemble(pieces, xp):
    """Final factors and extras in the original trajectory order from the batch's pieces."""
    if len(pieces) == 1:
        _, final, extras = pieces[0]
        return final, {k: backend.to_numpy(v) for k, v in extras.items()}
    perm = np.argsort(np.concatenate([p[0] for p in pieces]))
    dev = backend.device_of(pieces[0][1][0])
    ind = xp.asarray(perm, device=dev)
    final = tuple(xp.take(xp.concat([p[1][i] for p in pieces], axis=0), ind, axis=0)
                  for i in range(len(pieces[0][1])))
    extras = {k: np.concatenate([backend.to_numpy(p[2][k]) for p in pieces])[perm]
              for k in pieces[0][2]}
    return final, extras


def run(problem, method, init, iters: int = 1000, *, tol: float | None = None,
        record_every: int = 1, divergence_factor: float = 1e6, callback=None,
        progress: bool = False) -> Trajectory:
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
        ``callback(t, info) -> bool``; returning True stops the run after
        recording iterate t; the trajectories still running get status
        'stopped'. ``info`` holds numpy arrays 'residual_norm' and, if M* is
        known and computed at t, 'error' (else None); entries of trajectories that
        have stopped may be NaN.
    progress : bool
        Show a tqdm progress bar.
    """
    factors, batched = _prepare_init(problem, init)
    iters = V.int_in_range("iters", iters, 0)
    record_every = V.int_in_range("record_every", record_every, 1)
    if tol is not None:
        tol = V.positive_float("tol", tol)
    divergence_factor = V.positive_float("divergence_factor", divergence_factor)

    xp = backend.namespace(factors[0])
    dev = backend.device_of(factors[0])
    B = factors[0].shape[0]
    state = method.init(problem, factors)
    rec = _Recorder(problem, factors)
    has_truth = problem.M_star is not None
    y_norm = problem.y_norm
    M_norm = problem.M_star_norm if has_truth else None

    active = np.ones(B, dtype=bool)
    status = np.array(["max_iters"] * B, dtype=object)
    iterations = np.full(B, iters)
    res_bound = err_bound = None
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=iters, desc=getattr(method, "name", "run"), unit="it")

    # Trajectories that have stopped are dropped from the batch once they are at least half
    # of it (their final state is kept in `pieces`): no work is spent stepping them further.
    rows = np.arange(B)  # original index of each row of `state`
    pieces = []          # (original indices, final factors, extras) of dropped rows
    prev_state = state
    never_done = np.zeros(B, dtype=bool)  # read-only
    start = time.perf_counter()
    with np.errstate(all="ignore"), backend.blas_threads_for(problem.operator, problem.y):
        for t in range(iters + 1):
            fac = method.factors(state)
            if t < iters:
                new_state, rnorm = method.step(problem, state)
            else:
                r = problem.operator.apply(product(fac)) - problem.y
                rnorm = xp.linalg.vector_norm(r, axis=-1)
            need_err = has_truth and (tol is not None or t % record_every == 0 or t == iters)
            if need_err:
                # One device→host copy for both norms: one GPU sync per iteration, not two.
                both = xp.stack([rnorm, diagnostics.error(product(fac), problem.M_star)])
                rn, err = backend.to_numpy(both).astype(float)
                rn, err = _scatter(rn, rows, B), _scatter(err, rows, B)
            else:
                rn, err = _scatter(backend.to_numpy(rnorm).astype(float), rows, B), None
            if t == 0:
                res_bound = divergence_factor * np.maximum(rn, y_norm)
                if has_truth:
                    err_bound = divergence_factor * np.maximum(err, M_norm)

            # NaN and ±inf fail `<=`, so one comparison catches non-finite and too large.
            ok = rn <= res_bound
            if err is not None:
                ok &= err <= err_bound
            bad = active & ~ok
            if bad.any():
                status[bad] = "diverged"
                iterations[bad] = max(t - 1, 0)
                state = _select((~bad)[rows], state, prev_state, xp, dev)
                active &= ~bad

            if tol is not None:
                metric = err / M_norm if has_truth else rn / y_norm
                done = active & (metric <= tol)
            else:
                done = never_done
            stop = callback is not None and bool(callback(t, {"residual_norm": rn, "error": err}))
            on_grid = t % record_every == 0 or t == iters or stop
            rec_mask = active & (on_grid | done)
            if rec_mask.any():
                if err is None and has_truth:
                    err = _scatter(backend.to_numpy(diagnostics.error(product(fac), problem.M_star))
                                   .astype(float), rows, B)
                rec.add(t, time.perf_counter() - start, fac, rn, err, rec_mask, rows)
            if done.any():
                status[done] = "converged"
                iterations[done] = t
                active &= ~done

            if t == iters or not active.any() or stop:
                if stop:
                    status[active] = "stopped"
                iterations[active] = t
                break
            prev_state = state
            live = active[rows]
            state = _select(live, new_state, state, xp, dev)
            if 2 * live.sum() <= rows.size:
                gone, keep = np.flatnonzero(~live), np.flatnonzero(live)
                done_state = _take(state, gone, xp, dev)
                pieces.append((rows[gone], method.factors(done_state), method.extras(done_state)))
                state, prev_state = _take(state, keep, xp, dev), _take(prev_state, keep, xp, dev)
                rows = rows[keep]
            if bar is not None:
                bar.update(1)
    wall = time.perf_counter() - start
    if bar is not None:
        bar.close()

    pieces.append((rows, method.factors(state), method.extras(state)))
    final, extras = _assemble(pieces, xp)
    if not batched:
        final = tuple(f[0] for f in final)
        status_out, iters_out = str(status[0]), int(iterations[0])
        extras = {k: v[0].item() for k, v in extras.items()}
    else:
        status_out, iters_out = status.astype(str), iterations
    config = {"method": getattr(method, "name", type(method).__name__)}
    if dataclasses.is_dataclass(method):
        config.update({f.name: getattr(method, f.name) for f in dataclasses.fields(method)})
    config.update(iters=iters, tol=tol, record_every=record_every, batch=B)
    return Trajectory(final, status_out, iters_out, wall, rec.history(batched), extras,
                      config, batched)
