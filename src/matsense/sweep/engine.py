"""Running one batch of a sweep: the code that executes on a worker.

A *batch* is a list of run configurations that share everything but their
initialization draw (``alpha``, ``ratio``, ``normalization``, ``init_seed``):
the same problem (equal :meth:`RunConfig.problem_key`), method and
hyper-parameters, ``k``, ``init``, ``iters``, ``tol``, ``record_every``,
backend, device and dtype. Its initial factors are stacked along a leading
batch axis and advanced by **one** call of :func:`matsense.run`.

Bitwise identity with single runs. BLAS matrix products are not invariant
to the number of rows multiplied at once (a 1-row product is a GEMV, a
B-row product a GEMM with another summation order), so a batched operator
call would change a trajectory's last bits depending on which other runs
share its batch. :class:`BatchInvariantOperator` therefore evaluates the
operator — the only part of an iteration that mixes trajectories inside one
BLAS call — trajectory by trajectory, with exactly the call a single run
makes. Everything else in the driver (products F Gᵀ, steps, diagnostics) is
already computed per matrix of the batch. The result: a run's numbers do
not depend on its batch, its worker or the executor (tested), given the same
backend and BLAS thread count (the executors pin BLAS to one thread per
worker process).

Results are plain data: a list of dicts (one per run, the runs table) and a
:class:`pyarrow.Table` (the history rows), built here and shipped to the
client, which writes them.
"""

from __future__ import annotations

import json
import math
import socket
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from .. import backend
from ..config import RunConfig
from ..operators import MatrixOperator, single_threaded
from ..rates import phase_rate
from ..run import run
from ..trajectory import SCALAR_METRICS

#: Keys that may differ between the runs of one batch: they only change the initial draw.
INIT_DRAW_KEYS = ("alpha", "ratio", "normalization", "init_seed")
#: Length cap of stored tracebacks.
MAX_TRACEBACK = 4000


# ------------------------------------------------------------ exact batching
class BatchInvariantOperator(MatrixOperator):
    """Wrap an operator so that a batch of B trajectories is evaluated as B single calls.

    Every call runs the wrapped operator on each trajectory's ``[b:b+1]``
    slice — the very call a run of that trajectory alone makes — and stacks
    the results. Properties and the dense and backend calls are the wrapped
    operator's.
    """

    def __init__(self, operator):
        self.wrapped = operator

    @staticmethod
    def _each(fn, *arrays):
        outs = [fn(*(a[b : b + 1] for a in arrays)) for b in range(arrays[0].shape[0])]
        if len(outs) == 1:
            return outs[0]
        if isinstance(outs[0], tuple):
            return tuple(backend.namespace(parts[0]).concat(parts, axis=0) for parts in zip(*outs))
        return backend.namespace(outs[0]).concat(outs, axis=0)

    # the wrapped operator's properties
    shape = property(lambda self: self.wrapped.shape)
    m = property(lambda self: self.wrapped.m)
    dtype = property(lambda self: self.wrapped.dtype)
    nbytes = property(lambda self: self.wrapped.nbytes)
    target = property(lambda self: self.wrapped.target)

    def __getattr__(self, name):  # e.g. A_flat, block_rows of a flat operator
        if name == "wrapped":  # not set yet (e.g. during unpickling)
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    def apply(self, P):
        return self._each(self.wrapped.apply, P)

    def adjoint(self, z):
        return self._each(self.wrapped.adjoint, z)

    def apply_factored(self, F, G):
        return self._each(self.wrapped.apply_factored, F, G)

    def adjoint_matmul(self, z, G):
        return self._each(self.wrapped.adjoint_matmul, z, G)

    def adjoint_rmatmul(self, z, F):
        return self._each(self.wrapped.adjoint_rmatmul, z, F)

    def residual_and_adjoint(self, P, y, rmap=None):
        if rmap is not None:
            return self._each(lambda p: self.wrapped.residual_and_adjoint(p, y, rmap), P)
        return self._each(lambda p: self.wrapped.residual_and_adjoint(p, y), P)

    def residual_and_grads(self, F, G, y, rmap=None):
        if rmap is not None:
            return self._each(lambda f, g: self.wrapped.residual_and_grads(f, g, y, rmap), F, G)
        return self._each(lambda f, g: self.wrapped.residual_and_grads(f, g, y), F, G)

    def to(self, tgt):
        return BatchInvariantOperator(self.wrapped.to(tgt))

    def _probe(self):
        return self.wrapped._probe()


def batch_key(cfg: RunConfig) -> str:
    """Runs with equal keys can advance together as one batch (see the module docstring)."""
    d = {k: v for k, v in cfg.to_dict().items() if k not in INIT_DRAW_KEYS}
    return json.dumps(d, sort_keys=True, default=str)


# ---------------------------------------------------------------- the task
@dataclass(frozen=True)
class BatchTask:
    """Plain-data description of one batch (what travels to a worker)."""

    batch_id: str
    run_ids: tuple
    configs: tuple  # RunConfig.to_dict() of each run
    rate_window: tuple = (1e-4, 1e-12)
    rate_metric: str = "error"
    exact: bool = True

    @property
    def size(self) -> int:
        return len(self.run_ids)

    @property
    def cost(self) -> float:
        """Relative cost estimate (iterations × runs), for scheduling long batches first."""
        return float(self.configs[0].get("iters", 1)) * len(self.run_ids)


@dataclass
class BatchResult:
    """What a worker sends back: one dict per run, and the history rows of all runs."""

    batch_id: str
    runs: list
    history: object = None  # pyarrow.Table or None
    wall_time: float = 0.0
    info: dict = field(default_factory=dict)


# ------------------------------------------------------------- problem cache
_PROBLEMS: OrderedDict = OrderedDict()
_CACHE_SIZE = 2


def problem_for(cfg: RunConfig, exact: bool = True):
    """The (cached) problem of ``cfg``, on its backend, operator wrapped when ``exact``."""
    key = (cfg.problem_key(), cfg.backend, cfg.device, cfg.dtype, exact)
    if key in _PROBLEMS:
        _PROBLEMS.move_to_end(key)
        return _PROBLEMS[key]
    problem = cfg.build_problem()
    if exact:
        problem = problem.replace(operator=BatchInvariantOperator(problem.operator))
    _PROBLEMS[key] = problem
    while len(_PROBLEMS) > _CACHE_SIZE:
        _PROBLEMS.popitem(last=False)
    return problem


# ------------------------------------------------------------------ running
def _as_tuple(init) -> tuple:
    return tuple(init) if isinstance(init, (tuple, list)) else (init,)


def _failure(exc: BaseException) -> dict:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {
        "status": "failed",
        "message": f"{type(exc).__name__}: {exc}",
        "traceback": tb[-MAX_TRACEBACK:],
    }


def _config_value(value):
    """Config values as Parquet-friendly scalars (lists become JSON text)."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def execute_batch(task: BatchTask) -> BatchResult:
    """Run every configuration of ``task``; never raises for a run's own failure.

    A run whose problem, initialization or trajectory raises is returned with
    status 'failed' and the message; when the batched call itself raises,
    each run is retried alone so one bad run cannot take the others down.
    """
    start = time.perf_counter()
    host = socket.gethostname()
    version = _version()
    outcomes, tables = _run_batch(task)
    wall = time.perf_counter() - start
    runs = _rows(
        task,
        outcomes,
        wall,
        version=version,
        host=host,
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    history = None
    if tables:
        import pyarrow as pa

        history = (
            tables[0]
            if len(tables) == 1
            else pa.concat_tables(tables, promote_options="permissive")
        )
    return BatchResult(task.batch_id, runs, history, wall)


def _run_batch(task: BatchTask) -> tuple[dict[int, dict], list]:
    """Each run's outcome (its index -> result columns) and the history tables of a batch."""
    outcomes: dict[int, dict] = {}
    tables: list = []
    try:
        cfgs = [RunConfig.from_dict(d) for d in task.configs]
        problem = problem_for(cfgs[0], task.exact)
        method = cfgs[0].build_method()
    except Exception as exc:  # the whole batch shares this failure
        fail = _failure(exc)
        return {i: dict(fail) for i in range(task.size)}, tables
    inits = {}
    for i, cfg in enumerate(cfgs):
        try:
            inits[i] = _as_tuple(cfg.build_init(problem))
        except Exception as exc:
            outcomes[i] = _failure(exc)
    for idx, traj in _run_inits(problem, method, inits, cfgs[0], outcomes):
        rows, table = _collect(task, idx, traj)
        outcomes.update(rows)
        if table is not None:
            tables.append(table)
    return outcomes, tables


def _run_inits(problem, method, inits: dict, cfg: RunConfig, outcomes: dict) -> list:
    """(run indices, trajectory) of one batched run from ``inits`` — or, when that call
    raises, of each run alone (a failing run's failure goes to ``outcomes``)."""
    todo = sorted(inits)
    groups = []
    if todo:
        try:
            sides = range(len(inits[todo[0]]))
            factors = tuple(np.stack([inits[i][j] for i in todo]) for j in sides)
            groups.append((todo, _run(problem, method, factors, cfg)))
        except Exception:
            for i in todo:  # isolate the failing run(s)
                try:
                    factors = tuple(np.stack([f]) for f in inits[i])
                    groups.append(([i], _run(problem, method, factors, cfg)))
                except Exception as exc:
                    outcomes[i] = _failure(exc)
    return groups


def _rows(
    task: BatchTask, outcomes: dict, wall: float, *, version: str, host: str, finished: str
) -> list[dict]:
    """The runs rows of a batch: run id, config, outcome, batch bookkeeping."""
    runs = []
    for i, (rid, cdict) in enumerate(zip(task.run_ids, task.configs)):
        row = {"run_id": rid}
        row.update({k: _config_value(v) for k, v in cdict.items()})
        out = outcomes.get(i, _failure(RuntimeError("run produced no result")))
        row.update(out)
        row.setdefault("message", None)
        row.setdefault("traceback", None)
        row.update(
            batch_id=task.batch_id,
            batch_size=task.size,
            wall_time=wall / task.size,
            batch_wall_time=wall,
            matsense_version=version,
            host=host,
            finished_at=finished,
        )
        runs.append(row)
    return runs


def _version() -> str:
    from .. import __version__

    return __version__


def _run(problem, method, factors, cfg: RunConfig):
    # One kernel thread: the one-pass kernels' partial sums then add up in the same
    # order on every worker, whatever its core count (parallelism comes from workers).
    with single_threaded():
        return run(problem, method, factors, cfg.iters, tol=cfg.tol, record_every=cfg.record_every)


def _history_arrays(traj):
    """The history of a batched run as (n_rec, B) arrays (singular values (n_rec, B, k))."""
    h = traj.history
    it = np.asarray(h["iteration"])
    n_rec, B = it.shape[0], traj.batch_size
    out = {}
    for key, val in h.items():
        if key == "iteration":
            continue
        val = np.asarray(val)
        if val.ndim == 1:  # shared by the batch (the elapsed time)
            val = np.broadcast_to(val[:, None], (n_rec, B))
        out[key] = val
    return it, out


def _collect(task: BatchTask, idx, traj):
    """Per-run rows and the history table for the trajectories ``idx`` of one ``run`` call."""
    import pyarrow as pa

    it, h = _history_arrays(traj)
    B = len(idx)
    valid = np.isfinite(h["residual_norm"]).T  # (B, n_rec)
    counts = valid.sum(axis=1)
    run_pos = np.repeat(np.arange(B), counts)
    take = pa.array(run_pos)
    cols = {"run_id": pa.array([task.run_ids[i] for i in idx]).take(take)}
    for key in task.configs[idx[0]]:
        cols[key] = pa.array([_config_value(task.configs[i][key]) for i in idx]).take(take)
    cols["iteration"] = pa.array(np.broadcast_to(it[None, :], valid.shape)[valid].astype(np.int64))
    for key in SCALAR_METRICS:
        if key in h:
            cols[key] = pa.array(np.ascontiguousarray(h[key].T)[valid])
    if "singular_values" in h:
        sv = h["singular_values"]
        for j in range(sv.shape[-1]):
            cols[f"sv_{j + 1}"] = pa.array(np.ascontiguousarray(sv[:, :, j].T)[valid])
    table = pa.table(cols)

    status = np.atleast_1d(traj.status)
    iterations = np.atleast_1d(traj.iterations)
    metric = task.rate_metric if task.rate_metric in h else "residual_norm"
    phases = traj.phases if traj.batched else [traj.phases]
    rows = {}
    for pos, i in enumerate(idx):
        mask = valid[pos]
        t = it[mask]
        row = {"status": str(status[pos]), "iterations": int(iterations[pos])}
        for key in ("error", "rel_error", "residual_norm", "loss"):
            if key in h:
                vals = h[key][:, pos][mask]
                row[f"final_{key}"] = float(vals[-1]) if vals.size else math.nan
        extras = {k: np.atleast_1d(v)[pos].item() for k, v in traj.extras.items()}
        series = h[metric][:, pos][mask]
        # The rate of the trajectory's last phase (for rebalanced GD: after the switch).
        fit, _ = phase_rate(phases[pos], t, series, window=task.rate_window)
        row.update(
            rate=fit.value,
            rate_t_start=fit.t_start,
            rate_t_end=fit.t_end,
            rate_n_points=fit.n_points,
            rate_r2=fit.r2,
            rate_reason=fit.reason or None,
            rate_metric=metric,
            rate_window_upper=task.rate_window[0],
            rate_window_lower=task.rate_window[1],
        )
        for k, v in extras.items():
            row[k if k not in row and k not in task.configs[i] else f"extra_{k}"] = v
        if row["status"] == "diverged":
            row["message"] = (
                f"diverged: the residual or error became non-finite or grew past "
                f"the divergence bound; last finite iterate {row['iterations']}"
            )
        rows[i] = row
    return rows, table


__all__ = [
    "BatchTask",
    "BatchResult",
    "BatchInvariantOperator",
    "execute_batch",
    "batch_key",
    "problem_for",
    "INIT_DRAW_KEYS",
]
