"""Worker processes never outlive their parent, and SIGTERM / Ctrl-C stop a sweep cleanly.

Each test starts a real process tree in a new session (so that its process group holds the
parent, its spawned workers and multiprocessing's resource tracker, and nothing else),
kills or signals the parent, and looks through /proc for anything of the group still
alive. Before matsense.workers, the workers and the resource tracker of a SIGKILLed
``matsense sweep`` or ``reproduce`` stayed alive indefinitely, holding the parent's
stdout and stderr.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import matsense
from matsense.sweep import load, load_spec, run_sweep

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds processes through /proc (Linux)"
)

#: Seconds a process of a killed parent may take to go (the workers take well under 1 s).
GRACE = 10
#: Hang guard for starting a process tree on a busy machine, not a timing assertion.
START_TIMEOUT = 90

# The child processes import the same matsense as this test.
ENV = dict(
    os.environ,
    OPENBLAS_NUM_THREADS="1",
    OMP_NUM_THREADS="1",
    MKL_NUM_THREADS="1",
    PYTHONPATH=os.pathsep.join(
        [str(Path(matsense.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    ),
)

# 12 runs of ~0.7 s each (on a busy 2-core machine), one per batch: long enough to stop the
# sweep mid-way, short enough to resume it quickly.
SPEC = """\
[sweep]
name = "supervised"
max_batch = 1

[base]
n1 = 12
m = 300
singular_values = [1.0, 0.5]
method = "gd"
step_size = 0.3
iters = 1500
record_every = 20
k = 3

[grid]
init_seed = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
"""


# ------------------------------------------------------------------ helpers
def group(pgid: int) -> dict[int, str]:
    """Live (not zombie) processes of process group ``pgid``: pid -> command line."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it exited while we looked
            continue
        state, _ppid, pg = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pg) == pgid and state not in ("Z", "X"):
            found[int(entry)] = cmd
    return found


def workers_of(pgid: int) -> list[int]:
    return [pid for pid, cmd in group(pgid).items() if "spawn_main" in cmd]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def assert_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + GRACE
    while group(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = group(pgid)
    assert not left, f"still alive {GRACE} s after their parent was killed: {left}"


def kill_group(pgid: int) -> None:
    """Clean up whatever a failed test left behind."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def runs_parts(out: Path) -> list[Path]:
    return sorted((out / "runs").glob("part-*.parquet")) if (out / "runs").is_dir() else []


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    return path


def sweep_command(spec: Path, out: Path, *extra) -> list[str]:
    return [
        sys.executable,
        "-m",
        "matsense",
        "sweep",
        str(spec),
        "--out",
        str(out),
        "--workers",
        "2",
        "--no-progress",
        *extra,
    ]


# -------------------------------------------------------------------- tests
KILLER = textwrap.dedent("""\
    # Start a sweep that shares our stdout / stderr, SIGKILL it mid-way, exit.
    import os, signal, subprocess, sys, time
    command, out, pidfile = sys.argv[1:-2], sys.argv[-2], sys.argv[-1]
    sweep = subprocess.Popen(command, start_new_session=True)
    with open(pidfile, "w") as fh:
        fh.write(str(sweep.pid))
    runs = os.path.join(out, "runs")
    deadline = time.monotonic() + {timeout}
    while time.monotonic() < deadline and sweep.poll() is None:
        # a runs part exists: both workers were spawned (at submit) and are at work
        if os.path.isdir(runs) and any(n.startswith("part-") for n in os.listdir(runs)):
            break
        time.sleep(0.05)
    os.kill(sweep.pid, signal.SIGKILL)
    print("sweep exit status", sweep.wait(), flush=True)
""").format(timeout=START_TIMEOUT)


def test_sigkilled_sweep_does_not_hang_a_caller_capturing_its_output(spec, tmp_path):
    """subprocess.run(capture_output=True) returns once the sweep is killed: no worker or
    helper keeps its stdout / stderr open (before: it hung until they were killed by hand)."""
    out, pidfile = tmp_path / "out", tmp_path / "sweep.pid"
    try:
        # Returns only when every holder of the captured pipes has closed them.
        done = subprocess.run(
            [sys.executable, "-c", KILLER, *sweep_command(spec, out), str(out), str(pidfile)],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=START_TIMEOUT + 3 * GRACE,
        )
        assert "sweep exit status -9" in done.stdout, (done.stdout, done.stderr)
        assert_group_gone(int(pidfile.read_text()))
    finally:
        if pidfile.exists():
            kill_group(int(pidfile.read_text()))
    assert 0 < len(load(out, history=False).runs) < len(load_spec(spec))


def test_workers_of_a_sigkilled_sweep_exit(spec, tmp_path):
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        sweep_command(spec, out),
        env=ENV,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: len(workers_of(sweep.pid)) == 2 and runs_parts(out),
            START_TIMEOUT,
            "two workers and a first batch",
        )
        assert sweep.poll() is None, "the sweep finished before it could be killed"
        os.kill(sweep.pid, signal.SIGKILL)
        assert sweep.wait() == -signal.SIGKILL
        assert_group_gone(sweep.pid)
    finally:
        kill_group(sweep.pid)
        sweep.wait()


POOL_SCRIPT = textwrap.dedent("""\
    # {what}
    import os, sys, time

    from matsense.experiments import runs as R
    from matsense.experiments.declare import RunSpec
    from matsense.experiments.settings import ClaimSettings
    from matsense.workers import process_pool

    MARKERS = sys.argv[1]


    def slow(seed_runs):
        # A run that takes "for ever": the workers are busy when the parent dies.
        open(os.path.join(MARKERS, f"started-{{os.getpid()}}"), "w").close()
        time.sleep(300)


    def sleep(_):
        slow(None)


    def no_pdeathsig():
        import ctypes
        ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG 0: only the watchdog is left


    # in the workers too: they re-import this file
    R.RUNS["slow"] = RunSpec("slow", slow, cost="exact_iters")

    if __name__ == "__main__":
        if sys.argv[2] == "compute_runs":
            seeds = [R.SeedRuns(ClaimSettings.quick(), seed) for seed in (0, 1)]
            R.compute_runs(seeds, ["slow"], workers=2)
        else:
            with process_pool(2, initializer=no_pdeathsig) as pool:
                for i in range(2):
                    pool.submit(sleep, i)
                time.sleep(300)
""")


@pytest.mark.parametrize("mode", ["compute_runs", "watchdog_only"])
def test_pool_workers_exit_when_their_parent_is_killed(tmp_path, mode):
    """compute_runs (the pool of ``reproduce``), and the watchdog alone (no PR_SET_PDEATHSIG)."""
    script = tmp_path / "pool_script.py"
    script.write_text(POOL_SCRIPT.format(what=mode))
    markers = tmp_path / "markers"
    markers.mkdir()
    parent = subprocess.Popen(
        [sys.executable, str(script), str(markers), mode],
        env=ENV,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(
            lambda: len(list(markers.iterdir())) == 2 or parent.poll() is not None,
            START_TIMEOUT,
            "two workers inside their tasks",
        )
        assert parent.poll() is None, parent.stderr.read().decode()
        busy = {int(p.name.split("-")[1]) for p in markers.iterdir()}
        assert busy <= set(workers_of(parent.pid))
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert_group_gone(parent.pid)
    finally:
        kill_group(parent.pid)
        parent.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_the_sweep_cleanly_and_it_resumes(spec, tmp_path, signum):
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        sweep_command(spec, out),
        env=ENV,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: len(workers_of(sweep.pid)) == 2 and runs_parts(out),
            START_TIMEOUT,
            "two workers and a first batch",
        )
        workers = workers_of(sweep.pid)
        if signum == signal.SIGINT:
            os.killpg(sweep.pid, signum)  # Ctrl-C in a terminal: the whole process group
        else:
            os.kill(sweep.pid, signum)  # e.g. a job scheduler: the parent only
        stdout, stderr = sweep.communicate(timeout=START_TIMEOUT)
        assert sweep.returncode == 128 + signum, (stdout, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and signal.Signals(signum).name in lines[0], stderr
        assert "resume" in lines[0]
        deadline = time.monotonic() + GRACE
        while any(pid in group(sweep.pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not set(workers) & set(group(sweep.pid)), "workers outlived a clean stop"
    finally:
        kill_group(sweep.pid)
        sweep.wait()
    done_before = len(load(out, history=False).runs)
    total = len(load_spec(spec))
    assert 0 < done_before < total
    summary = run_sweep(spec, out, workers=0, progress="off")
    assert summary.skipped == done_before and summary.ran == total - done_before
    assert summary.quarantined == 0  # a signal never splits a batch's two writes
    runs, hist = load(out)
    assert len(runs) == total and runs["run_id"].is_unique
    written = pd.concat([pd.read_parquet(p, columns=["run_id"]) for p in runs_parts(out)])
    assert written["run_id"].is_unique  # no run was written twice
    assert not hist.duplicated(["run_id", "iteration"]).any()
    assert (hist.groupby("run_id").size() == runs.set_index("run_id")["history_rows"]).all()


def test_signals_wait_for_a_commit_and_sigterm_becomes_terminated():
    """In-process: SIGINT / SIGTERM inside deferred_signals() act only when the block ends."""
    from matsense.workers import Terminated, deferred_signals, sigterm_raises

    steps = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler has run by now, and only noted it
            steps.append("committed")
    assert steps == ["committed"]
    with sigterm_raises():
        with pytest.raises(Terminated) as raised:
            with deferred_signals():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                steps.append("committed again")
        assert raised.value.signum == signal.SIGTERM and steps[-1] == "committed again"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_process_pool_is_an_executor_that_cleans_up():
    from matsense.workers import process_pool

    with pytest.raises(ValueError, match="max_workers must be an integer >= 1, got 0"):
        process_pool(0)
    with process_pool(1) as pool:
        assert list(pool.map(abs, [-1, -2])) == [1, 2]
        pids = pool.worker_pids()
        assert len(pids) == 1
    assert not Path(f"/proc/{pids[0]}").exists()  # joined (reaped) on the way out
    with pytest.raises(RuntimeError, match="boom"):
        with process_pool(1) as pool:
            pool.submit(time.sleep, 60)
            pids = pool.worker_pids() or wait_for(pool.worker_pids, START_TIMEOUT, "a worker")
            raise RuntimeError("boom")  # leaving early terminates the sleeping worker
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
