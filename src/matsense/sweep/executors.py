"""Where batches run: in this process, in local worker processes, or on a Dask cluster.

Every executor is a context manager with one method, ``run(tasks)``, that
yields ``(task, outcome)`` pairs as batches finish, in completion order. The
outcome is a :class:`~matsense.sweep.engine.BatchResult`, or an exception:
:class:`LostBatch` when the infrastructure lost the batch (it is not recorded
and a resumed sweep runs it again), any other exception when the batch itself
failed (its runs are recorded as failed).

BLAS threads. A run's last bits depend on how many threads BLAS uses (a
multi-threaded GEMV sums in another order), so worker processes are started
with one BLAS thread: ``OPENBLAS_NUM_THREADS=1`` (and the OMP / MKL /
Accelerate equivalents) for local workers, and Dask's nanny sets the same
for its workers by default. Parallelism comes from running batches side by
side. ``workers=0`` runs in this process with whatever BLAS threading it
has — handy for debugging, and bitwise equal to the other executors only
when this process uses one BLAS thread too.
"""

from __future__ import annotations

import contextlib
import logging
import os

from ..threads import usable_cores
from .engine import execute_batch

#: Environment of worker processes: one BLAS / OpenMP thread each.
SINGLE_THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "MATSENSE_THREADS": "1",
}

DASK_MISSING = (
    "executor='dask' needs Dask distributed, which is not installed: pip install 'matsense[dask]'"
)


class LostBatch(RuntimeError):
    """The infrastructure lost a batch (a worker pool broke, a cluster went away)."""


#: CPU cores this process may run on: an alias of :func:`matsense.threads.usable_cores`.
cpu_count = usable_cores


@contextlib.contextmanager
def single_thread_env():
    """Set :data:`SINGLE_THREAD_ENV` in ``os.environ`` while worker processes are spawned."""
    saved = {k: os.environ.get(k) for k in SINGLE_THREAD_ENV}
    os.environ.update(SINGLE_THREAD_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ------------------------------------------------------------------- local
class InProcessExecutor:
    """Run batches one after another in this process (``executor='local', workers=0``)."""

    name = "local"
    workers = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def describe(self) -> str:
        return "local, in this process"

    def run(self, tasks):
        for task in tasks:
            try:
                yield task, execute_batch(task)
            except Exception as exc:  # execute_batch records run failures itself
                yield task, exc


class ProcessExecutor:
    """Run batches in ``workers`` spawned processes (``executor='local'``).

    The processes come from :func:`matsense.workers.process_pool`: they exit
    when this process dies, and are terminated when the sweep stops early.
    A worker process that dies (killed, out of memory) breaks the pool; the
    unfinished batches are resubmitted to a fresh pool up to ``restarts``
    times, then reported as lost (the store then lacks them; resuming runs
    them again).
    """

    name = "local"

    def __init__(self, workers: int, restarts: int = 2):
        self.workers = workers
        self.restarts = restarts

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def describe(self) -> str:
        return f"local, {self.workers} worker process{'es' if self.workers != 1 else ''}"

    def run(self, tasks):
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        from ..workers import process_pool

        pending = list(tasks)
        attempt = 0
        while pending:
            n = max(1, min(self.workers, len(pending)))
            done = set()
            # A supervised pool: its workers die with this process (kill -9 included), and
            # leaving this block early (an error, Ctrl-C, SIGTERM, the caller closing this
            # generator) terminates them instead of waiting for their batches.
            with process_pool(n) as pool:
                with single_thread_env():  # children are spawned during submit
                    futures = {pool.submit(execute_batch, t): t for t in pending}
                # Finished futures are dropped as soon as they are handled: a future keeps
                # its result (a batch's history) alive for as long as it is referenced.
                waiting, broken = set(futures), False
                while waiting and not broken:
                    finished, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        task = futures.pop(fut)
                        try:
                            outcome = fut.result()
                        except BrokenProcessPool:
                            broken = True
                            continue
                        except Exception as exc:
                            outcome = exc
                        done.add(task.batch_id)
                        yield task, outcome
                    del finished
                if broken:
                    pool.terminate()
            pending = [t for t in pending if t.batch_id not in done]
            if pending:
                attempt += 1
                if attempt > self.restarts:
                    for task in pending:
                        yield (
                            task,
                            LostBatch(f"a worker process died {attempt} times; batch not run"),
                        )
                    return
                logging.getLogger("matsense.sweep").warning(
                    "a worker process died; resubmitting %d unfinished batches", len(pending)
                )


# -------------------------------------------------------------------- dask
def import_distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError(DASK_MISSING) from None
    return distributed


class DaskExecutor:
    """Run batches on Dask distributed (``executor='dask'``).

    Without ``scheduler`` a :class:`distributed.LocalCluster` of ``workers``
    processes (one thread each) is started on the loopback interface
    (127.0.0.1) and closed afterwards; with ``scheduler='tcp://host:8786'``
    the sweep uses that existing cluster. Tasks are submitted with
    ``retries``: a task that raises is retried, and a task whose worker dies
    is rescheduled on another worker by Dask itself (until
    ``distributed.scheduler.allowed-failures`` deaths, then it is recorded as
    failed). Results come back to this process, which writes the store: the
    workers need no access to ``out_dir`` and a retried task is written once.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None, retries: int = 2):
        self.scheduler = scheduler
        self.workers = workers
        self.retries = retries
        self.cluster = self.client = None

    def __enter__(self):
        distributed = import_distributed()
        if self.scheduler is None:
            self.workers = self.workers or cpu_count()
            self.cluster = distributed.LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = distributed.Client(self.cluster)
        else:
            try:
                self.client = distributed.Client(self.scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise ValueError(
                    f"cannot connect to the Dask scheduler at {self.scheduler}: {exc}"
                ) from None
            self.workers = len(self.client.scheduler_info().get("workers", {}))
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False

    def describe(self) -> str:
        where = self.scheduler or "LocalCluster on 127.0.0.1"
        return f"dask, {where}, {self.workers} workers"

    def run(self, tasks):
        from distributed import as_completed

        try:
            from distributed import KilledWorker
        except ImportError:  # pragma: no cover - old distributed
            from distributed.scheduler import KilledWorker
        futures = {}
        for task in tasks:
            fut = self.client.submit(
                execute_batch,
                task,
                key=f"matsense-batch-{task.batch_id}",
                pure=False,
                retries=self.retries,
            )
            futures[fut.key] = (fut, task)
        for fut in as_completed([f for f, _ in futures.values()]):
            _, task = futures.pop(fut.key)
            try:
                outcome = fut.result()
            except KilledWorker as exc:
                outcome = RuntimeError(
                    f"the batch killed its Dask worker repeatedly ({exc}); "
                    "rerun with retry_failed to try again"
                )
            except (OSError, TimeoutError) as exc:  # connection to the cluster lost
                outcome = LostBatch(f"{type(exc).__name__}: {exc}")
            except Exception as exc:
                if type(exc).__name__ in (
                    "CancelledError",
                    "CommClosedError",
                    "FutureCancelledError",
                ):
                    outcome = LostBatch(f"{type(exc).__name__}: {exc}")
                else:
                    outcome = exc
            fut.release()
            yield task, outcome


def make_executor(executor: str, *, scheduler=None, workers=None):
    """Validate the executor arguments and build the executor (not yet entered)."""
    if executor not in ("local", "dask"):
        raise ValueError(f"executor must be 'local' or 'dask', got {executor!r}")
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"workers must be an integer >= 0, got {workers!r}")
    if executor == "local":
        if scheduler is not None:
            raise ValueError("a scheduler address needs executor='dask'")
        n = cpu_count() if workers is None else workers
        return InProcessExecutor() if n == 0 else ProcessExecutor(n)
    if workers == 0:
        raise ValueError("executor='dask' needs workers >= 1 (or none, for one per CPU)")
    if scheduler is not None:
        if workers is not None:
            raise ValueError(
                "workers applies to the LocalCluster started without a scheduler; "
                "an existing cluster brings its own workers"
            )
        if not isinstance(scheduler, str) or "://" not in scheduler:
            raise ValueError(
                f"scheduler must be an address like 'tcp://host:8786', got {scheduler!r}"
            )
    import_distributed()  # fail now, with the install hint, not after the spec is planned
    return DaskExecutor(scheduler, workers)


__all__ = [
    "InProcessExecutor",
    "ProcessExecutor",
    "DaskExecutor",
    "LostBatch",
    "make_executor",
    "SINGLE_THREAD_ENV",
    "cpu_count",
]
