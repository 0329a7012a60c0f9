"""Worker processes that die with their parent: the process pool of local sweeps and ``reproduce``.

A plain :class:`concurrent.futures.ProcessPoolExecutor` worker outlives a
parent that is killed (``kill -9``, the OOM killer, a CI timeout): it
finishes its task, then blocks for ever — writing its result into a pipe no
one reads, or waiting for the next task — while holding the parent's stdout
and stderr, so whoever reads the parent's output (``subprocess.run(...,
capture_output=True)``, a CI step) hangs with it. :func:`process_pool`
returns a :class:`SupervisedPool`, whose workers

* on Linux ask the kernel to SIGKILL them when their parent dies
  (``prctl(PR_SET_PDEATHSIG)``) — immediate, even while a worker is stuck in C
  code holding the GIL;
* everywhere run a watchdog thread that waits on the parent's *sentinel* (the
  pipe multiprocessing keeps open from parent to child; it reaches end of
  file when the parent dies) and checks ``os.getppid()``, and calls
  ``os._exit`` when the parent is gone;
* ignore SIGINT: Ctrl-C in a terminal reaches the whole process group, and the
  parent, not each worker, decides what to do (it terminates them).

multiprocessing's *resource tracker*, a helper process that also holds the
parent's stdout and stderr, exits when the last process holding its pipe —
the parent and the workers — is gone, so it goes with the workers.

In the parent, leaving the pool's ``with`` block because of an exception
(an error, Ctrl-C, SIGTERM) terminates the workers at once instead of
waiting for their tasks; while the pool is open, SIGTERM raises
:class:`Terminated` in the main thread (see :func:`sigterm_raises`).

Core counting stays where it is (``matsense.sweep.executors.cpu_count`` and
the kernels' ``usable_cores``): this module only starts and stops processes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, cast

#: Exit status of a worker whose watchdog found its parent gone.
PARENT_GONE_EXIT = 70
#: ``PR_SET_PDEATHSIG`` from <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1
#: How often the watchdog re-checks ``os.getppid()`` (the sentinel wakes it at once).
_WATCH_INTERVAL = 1.0


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while :func:`sigterm_raises` was active (a kind of KeyboardInterrupt).

    A ``KeyboardInterrupt`` so that ``except Exception`` clauses let it through
    and callers that handle Ctrl-C handle it the same way. ``signum`` is the
    signal's number; a command exiting because of it conventionally returns
    ``128 + signum``.
    """

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = int(signum)


@contextlib.contextmanager
def sigterm_raises():
    """While active, SIGTERM raises :class:`Terminated` in the main thread (once).

    Python's default for SIGTERM is to die on the spot: no ``finally`` runs,
    so worker processes are not stopped and no message says why. This turns
    the first SIGTERM into an exception; a second one kills as usual. Does
    nothing outside the main thread or when SIGTERM already has a handler
    other than the default (an application's own policy is kept).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done, then act on the first one that came.

    For short steps that must not be cut in two, such as committing a batch
    of a sweep (its history part, then its runs part). In the main thread
    only (elsewhere, and for signals that are ignored, it does nothing); a
    SIGKILL cannot be held, of course.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, Any] = {}  # signal number -> its handler (a callable or an int)
    signum: int
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if handler not in (signal.SIG_IGN, None):  # None: a handler not set from Python
            previous[signum] = handler
            signal.signal(signum, lambda s, frame: caught.append(s))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)  # e.g. KeyboardInterrupt, Terminated
            else:
                signal.raise_signal(caught[0])  # the default action, now restored


# ------------------------------------------------------------- in a worker
def _die_with_parent_linux() -> bool:
    """Ask the kernel for SIGKILL when the parent exits (Linux); False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, sentinel) -> None:
    """Watchdog thread of a worker: ``os._exit`` as soon as the parent is gone."""
    from multiprocessing.connection import wait

    while True:
        try:
            if sentinel is not None and wait([sentinel], timeout=_WATCH_INTERVAL):
                break  # end of file: the parent's end of the pipe is closed, it died
        except (OSError, ValueError):
            sentinel = None  # cannot wait on it: poll the parent id only
        if sentinel is None:
            threading.Event().wait(_WATCH_INTERVAL)
        if os.getppid() != parent_pid:
            break
    os._exit(PARENT_GONE_EXIT)


def _supervised_init(parent_pid: int, initializer, initargs) -> None:
    """Initializer of every worker of a :class:`SupervisedPool` (runs before its first task)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent_linux()
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(PARENT_GONE_EXIT)
    parent = multiprocessing.parent_process()
    sentinel = parent.sentinel if parent is not None else None
    threading.Thread(
        target=_watch_parent,
        args=(parent_pid, sentinel),
        daemon=True,
        name="matsense-parent-watchdog",
    ).start()
    if initializer is not None:
        initializer(*initargs)


# ------------------------------------------------------------- the parent
class SupervisedPool(concurrent.futures.Executor):
    """A spawn-context process pool whose workers die with this process.

    An :class:`concurrent.futures.Executor` (``submit``, ``map``,
    ``shutdown``) around a :class:`~concurrent.futures.ProcessPoolExecutor`
    whose workers are supervised (see the module docstring). Use it as a
    context manager (see :func:`process_pool`). On a normal exit it waits for
    the submitted tasks, like ``ProcessPoolExecutor``; on an exception
    (including ``KeyboardInterrupt``, :class:`Terminated` and a generator's
    ``GeneratorExit``) it cancels pending tasks and terminates the workers at
    once. Shut it down in the thread that created it: on Linux a worker is
    killed when the *thread* that started it ends.
    """

    def __init__(self, max_workers: int, *, initializer=None, initargs=(), mp_context=None):
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be an integer >= 1, got {max_workers!r}")
        # Looked up on the module at call time (not imported by name), so that a caller or a
        # test replacing concurrent.futures.ProcessPoolExecutor is honoured.
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers,
            mp_context=mp_context or multiprocessing.get_context("spawn"),
            initializer=_supervised_init,
            initargs=(os.getpid(), initializer, tuple(initargs)),
        )
        self._signals = contextlib.ExitStack()

    def submit(self, fn, /, *args, **kwargs):
        # With the spawn context, submit may start a worker here: a SIGTERM between the start
        # and the write of the worker's preparation data would leave a child that dies on
        # "EOFError: Ran out of input", printing a traceback on the caller's stderr, before
        # terminate() knows of it. The signal waits the few milliseconds of the start.
        with deferred_signals():
            return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __enter__(self):
        self._signals.enter_context(sigterm_raises())
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                try:
                    self.shutdown(wait=True)
                except BaseException:  # e.g. SIGTERM while waiting for the last tasks
                    self.terminate()
                    raise
            else:
                self.terminate()
        finally:
            self._signals.close()
        return False

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (empty once shut down)."""
        # a live process has a pid (None only before start())
        return [
            cast(int, p.pid) for p in list((self._pool._processes or {}).values()) if p.is_alive()
        ]

    def terminate(self, timeout: float = 5.0) -> None:
        """Cancel pending tasks and stop every worker now (SIGTERM, SIGKILL after ``timeout``)."""
        # ``_processes`` is private but has been ProcessPoolExecutor's pid -> Process map
        # since Python 3.2; 3.14 adds terminate_workers() for exactly this.
        processes = list((self._pool._processes or {}).values())
        # typeshed types this private attribute as a _ThreadWakeup; it is the manager Thread
        manager: threading.Thread | None = self._pool._executor_manager_thread  # type: ignore[assignment]
        for p in processes:
            with contextlib.suppress(Exception):
                p.terminate()
        for p in processes:
            p.join(timeout)
            if p.is_alive():
                with contextlib.suppress(Exception):
                    p.kill()
                p.join(1.0)
        self.shutdown(wait=False, cancel_futures=True)
        if manager is not None:
            # It notices the dead workers, fails their futures and ends; joined here so
            # interpreter exit (which joins it too) does not wait on anything.
            manager.join(timeout)


def process_pool(max_workers: int, *, initializer=None, initargs=()) -> SupervisedPool:
    """A :class:`SupervisedPool` of ``max_workers`` spawned processes.

    Parameters
    ----------
    max_workers : int
        Number of worker processes (>= 1).
    initializer, initargs
        Run in each worker after the supervision is set up, as for
        :class:`concurrent.futures.ProcessPoolExecutor`.

    Examples
    --------
    >>> with process_pool(2) as pool:                      # doctest: +SKIP
    ...     results = list(pool.map(abs, [-1, -2]))
    """
    return SupervisedPool(max_workers, initializer=initializer, initargs=initargs)


__all__ = [
    "process_pool",
    "SupervisedPool",
    "Terminated",
    "sigterm_raises",
    "deferred_signals",
    "PARENT_GONE_EXIT",
]
