"""``run_sweep``: plan the batches, skip finished runs, execute, write the store."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from .._validate import not_in_worker_bootstrap
from ..workers import sigterm_raises
from .engine import BatchTask, batch_key
from .executors import LostBatch, make_executor
from .progress import Progress, resolve_mode
from .spec import SweepSpec, load_spec
from .store import Store


# ----------------------------------------------------------------- planning
def plan_batches(
    configs,
    *,
    max_batch: int,
    workers: int = 1,
    rate_window=(1e-4, 1e-12),
    rate_metric: str = "error",
    exact: bool = True,
) -> list[BatchTask]:
    """Group runs that can advance together into batches.

    Runs with equal :func:`~matsense.sweep.engine.batch_key` form one batch —
    split into near-equal chunks when larger than ``max_batch``. With
    ``exact`` (a run's numbers do not depend on its batch) the largest
    batches are then halved while there are fewer than two per worker, so all
    workers have work. Without ``exact`` the last bits of a run depend on
    its batch, so the batches depend on ``configs`` and ``max_batch`` only,
    never on ``workers``: the same sweep gives bitwise the same results on any
    executor. The longest batches come first.
    """
    groups: OrderedDict[str, list] = OrderedDict()
    for cfg in configs:
        groups.setdefault(batch_key(cfg), []).append(cfg)
    chunks = []
    for members in groups.values():
        n = math.ceil(len(members) / max_batch)
        chunks.extend(_split(members, n))
    target = 2 * max(workers, 1) if exact else 0
    while chunks and len(chunks) < target:
        chunks.sort(key=len, reverse=True)
        if len(chunks[0]) < 2:
            break
        chunks[0:1] = _split(chunks[0], 2)
    tasks = []
    for members in chunks:
        ids = tuple(c.run_id() for c in members)
        bid = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
        tasks.append(
            BatchTask(
                bid,
                ids,
                tuple(c.to_dict() for c in members),
                tuple(rate_window),
                rate_metric,
                exact,
            )
        )
    tasks.sort(key=lambda t: t.cost, reverse=True)
    return tasks


def _split(items: list, n: int) -> list[list]:
    n = max(1, min(n, len(items)))
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        stop = start + size + (1 if i < extra else 0)
        out.append(items[start:stop])
        start = stop
    return out


# ------------------------------------------------------------------ summary
@dataclass
class SweepSummary:
    """Outcome of :func:`run_sweep` (``str()`` gives a one-line summary).

    ``total`` runs in the spec; ``skipped`` were already in the store;
    ``converged`` + ``max_iters`` (= ``done``), ``diverged`` and ``failed``
    ran now; ``lost`` could not be run by the executor (not recorded: resume
    to run them). ``repaired`` of the runs to do had a runs row in the store
    but their history was missing or damaged (see
    :meth:`~matsense.sweep.store.Store.repair`); ``quarantined`` files were
    moved to the store's ``quarantine/`` folder before running.
    """

    out_dir: str
    total: int
    skipped: int = 0
    converged: int = 0
    max_iters: int = 0
    diverged: int = 0
    failed: int = 0
    lost: int = 0
    repaired: int = 0
    quarantined: int = 0
    batches: int = 0
    wall_time: float = 0.0
    executor: str = ""
    failures: list = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.converged + self.max_iters

    @property
    def ran(self) -> int:
        return self.done + self.diverged + self.failed

    @property
    def complete(self) -> bool:
        """Every run of the spec is in the store."""
        return self.lost == 0 and self.skipped + self.ran == self.total

    def __str__(self) -> str:
        s = (
            f"sweep: {self.total} runs: {self.done} done ({self.converged} converged, "
            f"{self.max_iters} max_iters), {self.diverged} diverged, {self.failed} failed, "
            f"{self.skipped} skipped (already in the store)"
        )
        if self.repaired:
            s += f", {self.repaired} run again (their stored history was missing or damaged)"
        if self.quarantined:
            s += f", {self.quarantined} unusable files moved to quarantine/"
        if self.lost:
            s += f", {self.lost} lost (not run; run the sweep again to resume)"
        s += f"; {self.batches} batches in {self.wall_time:.1f} s [{self.executor}] -> {self.out_dir}"
        return s


# --------------------------------------------------------------------- run
def _todo(spec: SweepSpec, finished: dict, retry_failed: bool):
    todo, skipped = [], 0
    for cfg in spec.configs:
        status = finished.get(cfg.run_id())
        if status is None or (retry_failed and status == "failed"):
            todo.append(cfg)
        else:
            skipped += 1
    return todo, skipped


def run_sweep(
    spec_or_path,
    out_dir,
    *,
    executor: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    progress="auto",
    max_batch: int | None = None,
    retry_failed: bool = False,
    exact: bool = True,
) -> SweepSummary:
    """Run every configuration of a sweep spec and store the results in ``out_dir``.

    Parameters
    ----------
    spec_or_path : SweepSpec, path to a TOML spec, or dict
        See :class:`~matsense.sweep.spec.SweepSpec` and docs/sweeps.md.
    out_dir : path
        The results store (created if needed). Re-running on it resumes: finished runs are
        skipped. The store is checked first: unusable files go to ``quarantine/`` with a warning,
        runs whose history is missing or damaged run again (see :mod:`matsense.sweep.store`).
    executor : {'local', 'dask'}
        'local': ``workers`` spawned processes here (``workers=0``: in this process). 'dask': a
        LocalCluster on 127.0.0.1 with ``workers`` processes, or the cluster at ``scheduler``.
    scheduler : str, optional
        Address of an existing Dask scheduler, e.g. ``'tcp://host:8786'``.
    workers : int, optional
        Worker processes (default: one per CPU available to this process).
    progress : {'auto', 'bar', 'log', 'off'} or bool
        'auto': a tqdm bar on a terminal, else a status line every 30 s.
    max_batch : int, optional
        Most runs per batch (default: the spec's ``[sweep] max_batch``, 128).
    retry_failed : bool
        Also re-run runs recorded as 'failed'.
    exact : bool
        Evaluate the operator per trajectory inside a batch, so each run is bitwise identical to
        running it alone (default). ``False`` uses batched products: faster for large batches,
        but a run's last bits then depend on its batch (planned independently of ``workers``).

    Returns
    -------
    SweepSummary
        Counts of done / diverged / failed / skipped / lost runs.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C, or :class:`matsense.workers.Terminated` on SIGTERM (when the application has
        no handler): workers are terminated, the batches written stay, running again resumes.
    """
    not_in_worker_bootstrap("matsense.sweep.run_sweep()")
    spec = load_spec(spec_or_path)
    mode, max_batch = resolve_mode(progress), _max_batch(spec, max_batch)
    ex = make_executor(executor, scheduler=scheduler, workers=workers)
    run = dict(mode=mode, max_batch=max_batch, retry_failed=retry_failed, exact=exact)
    return _run_in_store(Store(out_dir, create=True), spec, out_dir, ex, executor, **run)


def _run_in_store(
    store: Store,
    spec: SweepSpec,
    out_dir,
    ex,
    executor: str,
    *,
    mode,
    max_batch,
    retry_failed,
    exact,
) -> SweepSummary:
    """Under SIGTERM-raises and the store's lock: prepare the store and run what is left."""
    start = time.perf_counter()
    with sigterm_raises(), store.lock():
        todo, summary = _prepare(store, spec, out_dir, retry_failed)
        summary.executor = f"{executor}, nothing to run"  # with runs to do: ex.describe()
        if todo:
            _execute(store, spec, todo, summary, ex, mode=mode, max_batch=max_batch, exact=exact)
    summary.wall_time = time.perf_counter() - start
    return summary


def _prepare(store: Store, spec: SweepSpec, out_dir, retry_failed: bool):
    """Under the store's lock: clean and repair the store, keep the spec; (runs to do, summary)."""
    store.cleanup()
    report = store.repair()
    todo, skipped = _todo(spec, report.finished, retry_failed)
    summary = SweepSummary(
        str(out_dir),
        len(spec),
        skipped=skipped,
        repaired=sum(cfg.run_id() in report.damaged for cfg in todo),
        quarantined=len(report.moved),
    )
    if spec.text:
        store.save_spec(spec.text, spec.name)
    else:
        store.save_spec(json.dumps(spec.as_dict(), indent=2, default=str), spec.name, ".json")
    return todo, summary


def _execute(
    store: Store,
    spec: SweepSpec,
    todo: list,
    summary: SweepSummary,
    ex,
    *,
    mode,
    max_batch: int,
    exact: bool,
) -> None:
    """Plan ``todo`` into batches, run them on executor ``ex`` and write each outcome."""
    bar = None
    try:
        with ex:
            summary.executor = ex.describe()
            tasks = plan_batches(
                todo,
                max_batch=max_batch,
                workers=ex.workers or 1,
                rate_window=spec.options.rate_window,
                rate_metric=spec.options.rate_metric,
                exact=exact,
            )
            summary.batches = len(tasks)
            label = f"sweep {spec.name}" if spec.options.name or spec.source else "sweep"
            bar = Progress(len(todo), mode, label=label)
            tasks = _refuse_too_large(store, tasks, summary, bar)
            # closing(): stopping early (an error, Ctrl-C, SIGTERM) closes the executor's
            # generator at once, which stops its worker processes.
            with contextlib.closing(ex.run(tasks)) as outcomes:
                for task, outcome in outcomes:
                    statuses = _record(store, task, outcome, summary)
                    bar.update(statuses)
    finally:
        if bar is not None:
            bar.close()


def _refuse_too_large(store: Store, tasks: list, summary: SweepSummary, bar) -> list:
    """The tasks whose memory estimate fits; the others are recorded as failed with the
    one-line refusal, before any worker allocates a copy of their problem."""
    from ..config import RunConfig

    fitting = []
    for task in tasks:
        try:
            RunConfig.from_dict(task.configs[0]).check_memory(1)
        except ValueError as exc:
            bar.update(_record(store, task, exc, summary))
        else:
            fitting.append(task)
    return fitting


def _max_batch(spec: SweepSpec, max_batch) -> int:
    if max_batch is None:
        return spec.options.max_batch
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"max_batch must be an integer >= 1, got {max_batch!r}")
    return max_batch


def _record(store: Store, task: BatchTask, outcome, summary: SweepSummary) -> list[str]:
    """Write one batch's outcome; return the statuses of its runs."""
    from .engine import BatchResult, _failure, _version

    if isinstance(outcome, LostBatch):
        summary.lost += task.size
        return ["lost"] * task.size
    if isinstance(outcome, BaseException):
        fail = _failure(outcome)
        rows = []
        for rid, cdict in zip(task.run_ids, task.configs):
            row = {
                "run_id": rid,
                **_config_row(cdict),
                **fail,
                "batch_id": task.batch_id,
                "batch_size": task.size,
                "matsense_version": _version(),
            }
            rows.append(row)
        outcome = BatchResult(task.batch_id, rows, None)
    store.write_batch(outcome)
    statuses = [row["status"] for row in outcome.runs]
    for row in outcome.runs:
        status = row["status"]
        if status in ("converged", "max_iters", "diverged", "failed"):
            setattr(summary, status, getattr(summary, status) + 1)
        if status == "failed" and len(summary.failures) < 20:
            summary.failures.append((row["run_id"], row.get("message")))
    return statuses


def _config_row(cdict: dict) -> dict:
    from .engine import _config_value

    return {k: _config_value(v) for k, v in cdict.items()}


# ------------------------------------------------------------------ dry run
def describe_sweep(
    spec_or_path,
    out_dir=None,
    *,
    workers: int | None = None,
    max_batch: int | None = None,
    examples: int = 3,
) -> str:
    """What a sweep would do: number of runs and batches, a few example runs.

    With ``out_dir`` (an existing store), also how many runs are already
    finished there. Nothing is run or written.
    """
    from .executors import cpu_count

    spec = load_spec(spec_or_path)
    max_batch = _max_batch(spec, max_batch)
    finished = {}
    if out_dir is not None and (Path(out_dir) / "store.json").exists():
        finished = Store(out_dir).finished()
    todo, skipped = _todo(spec, finished, False)
    n_workers = cpu_count() if workers is None else max(workers, 1)
    tasks = plan_batches(todo, max_batch=max_batch, workers=n_workers)
    problems = len({c.problem_key() for c in spec.configs})
    lines = [
        f"sweep {spec.name!r}"
        + (f" ({spec.source})" if spec.source else "")
        + f": {len(spec)} runs"
        + (f" ({spec.duplicates} duplicate grid points dropped)" if spec.duplicates else "")
    ]
    if spec.varying:
        lines.append(
            "  varying: " + ", ".join(f"{k} ({n} values)" for k, n in spec.varying.items())
        )
    lines.append(
        f"  {problems} distinct problem{'s' if problems != 1 else ''}; "
        f"{len(todo)} runs to do in {len(tasks)} batches (max_batch={max_batch})"
    )
    if out_dir is not None:
        lines.append(f"  {skipped} already finished in {out_dir}")
    shown = todo[:examples]
    for cfg in shown:
        lines.append(
            f"  e.g. {cfg.run_id()}  {spec.label(cfg)}  "
            f"(method={cfg.method}, iters={cfg.iters}, n1={cfg.n1}, m={cfg.m}, k={cfg.k})"
        )
    return "\n".join(lines)


__all__ = ["run_sweep", "describe_sweep", "plan_batches", "SweepSummary"]
