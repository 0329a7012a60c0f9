"""Issue #21, reliability third round: the last tracebacks of the fault campaign and the faults
nobody had tried (a full disk, killed ``reproduce`` / ``compare``, concurrent writers into one
``--out``, matrix-free sweeps refused at sizes they handle).

Each section is one item of the issue; every test failed on main at 34294fc.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import matsense as ms
from matsense import Problem, diagnostics, init
from matsense.trajectory import BatchTrajectory, RunRecord, Status, Trajectory


@pytest.fixture
def small():
    return Problem.gaussian(6, r=2, m=100, seed=0)


# ------------------------------------ 1. a run that diverges before its first record
def test_divergence_at_the_start_gives_a_one_row_history(small, tmp_path):
    """divergence_factor = 1e-300: the start itself is past the bound, so the run ends
    ``diverged`` at iteration 0 — with the start's row in its history (the documented "the first
    iterate is always recorded"), not an IndexError from ``.history``."""
    t = ms.run(
        small, ms.GD(0.3), init.small_random(small, 2, 0.1), iters=30, divergence_factor=1e-300
    )
    assert t.status == Status.DIVERGED and t.iterations == 0
    h = t.history
    assert h["iteration"].tolist() == [0]
    for key, val in h.items():
        assert val.shape[0] == 1 and np.isfinite(val).all(), key
    (row,) = t.summary()
    assert row["status"] == "diverged" and np.isfinite(row["final_rel_error"])
    assert len(t.to_frame()) == 1
    assert t.save(tmp_path / "h.csv").read_text().count("\n") == 2  # header and one row
    np.testing.assert_array_equal(t.factors[0], init.small_random(small, 2, 0.1)[0])


def test_one_trajectory_of_a_batch_diverging_at_the_start(small):
    """In a batch, the trajectory past the bound at t = 0 keeps its start row; the other runs
    on. divergence_factor = 0.9: a spectral start (residual well under ‖y‖) stays inside the
    bound, a small random one (residual ≈ ‖y‖) does not."""
    Fs, Gs = init.spectral(small, 2)
    Fr, Gr = init.small_random(small, 2, 0.1)
    batch = ms.run(
        small, ms.GD(0.3), (np.stack([Fs, Fr]), np.stack([Gs, Gr])), iters=5, divergence_factor=0.9
    )
    assert isinstance(batch, BatchTrajectory)
    assert batch.status.tolist() == [Status.MAX_ITERS, Status.DIVERGED]
    assert batch[1].history["iteration"].tolist() == [0]
    assert batch[0].history["iteration"].tolist() == list(range(6))
    assert [r["status"] for r in batch.summary()] == ["max_iters", "diverged"]
    assert np.isfinite(batch[1].summary()[0]["final_error"])


def test_a_record_without_rows_is_well_formed():
    """A RunRecord with no rows (built by hand, or by any future path that records nothing):
    ``recorded`` is (0, B), the history has its keys with no rows, the summary NaN finals."""
    status = np.empty(2, dtype=object)
    status[:] = [Status.DIVERGED, Status.DIVERGED]
    rec = RunRecord(
        (np.zeros((2, 3, 1)), np.zeros((2, 3, 1))),
        status,
        np.zeros(2, int),
        0.0,
        {},
        np.zeros(0, dtype=bool),
        {},
    )
    assert rec.recorded.shape == (0, 2)
    t = Trajectory(rec, 1)
    assert t.history["iteration"].shape == (0,) and t.history["residual_norm"].shape == (0,)
    (row,) = t.summary()
    assert row["status"] == "diverged" and np.isnan(row["final_residual_norm"])
    assert len(BatchTrajectory(rec).to_frame()) == 0
    with pytest.raises(ValueError, match=r"recorded must have shape \(n_records, B\) with B = 2"):
        RunRecord(rec.factors, status, np.zeros(2, int), 0.0, {}, np.ones((3, 5), bool), {})


# ------------------------------------------------ 2. diagnostics check their shapes
F1 = np.ones((1, 3, 2))
G1 = np.ones((1, 3, 2))
G_k3 = np.ones((1, 3, 3))
SHAPE_CASES = {
    # the case: a product and an M* of another shape
    "error": (
        lambda: diagnostics.error(np.ones((1, 3, 3)), np.ones((4, 4))),
        r"M_star must be an array of shape \(n1, n2\) = \(3, 3\)",
    ),
    "error-factors-not-product": (
        lambda: diagnostics.error(None, np.ones((4, 4))),
        r"P must be an array of shape \(B, n1, n2\)",
    ),
    "imbalance": (
        lambda: diagnostics.imbalance(F1, G_k3),
        r"G must be an array of shape \(B, n2, k\) with k = 2 columns like F",
    ),
    "imbalance-batch": (
        lambda: diagnostics.imbalance(np.ones((2, 3, 2)), np.ones((3, 3, 2))),
        r"G must be an array of shape \(B, n2, k\) whose batch axes",
    ),
    "imbalance_drift": (
        lambda: diagnostics.imbalance_drift(F1, G1, np.ones((3, 3))),
        r"Delta0 must be an array of shape \(B, k, k\) with k = 2",
    ),
    "off_subspace-U": (
        lambda: diagnostics.off_subspace((F1, G1), np.ones((4, 2)), np.ones((3, 2))),
        r"U_star must be an array of shape \(n, r\) with n = 3 rows",
    ),
    "off_subspace-V": (
        lambda: diagnostics.off_subspace((F1, G1), np.ones((3, 2)), np.ones((5, 2))),
        r"V_star must be an array of shape \(n, r\) with n = 3 rows like G",
    ),
    "off_subspace-factors": (
        lambda: diagnostics.off_subspace(F1, np.ones((3, 2)), None),
        r"factors must be a tuple \(F, G\)",
    ),
    "product_singular_values": (
        lambda: diagnostics.product_singular_values((F1, G_k3)),
        r"G must be an array of shape \(B, n2, k\) with k = 2",
    ),
    "redundant_imbalance": (
        lambda: diagnostics.redundant_imbalance(F1, G_k3, 1),
        r"G must be an array of shape \(B, n2, k\) with k = 2",
    ),
    "redundant_imbalance-r": (
        lambda: diagnostics.redundant_imbalance(F1, G1, "1"),
        r"r must be an integer in \[0, k\) with k = 2",
    ),
    "row_stats": (
        lambda: diagnostics.row_stats((F1, G_k3)),
        r"G must be an array of shape \(B, n2, k\) with k = 2",
    ),
    "row_stats-M": (
        lambda: diagnostics.row_stats((F1, G1), M_star=np.ones((4, 4))),
        r"M_star must be an array of shape \(n1, n2\) = \(3, 3\)",
    ),
    "row_stats-U": (
        lambda: diagnostics.row_stats((F1, G1), U=np.ones((4, 2)), V=np.ones((3, 2))),
        r"U must be an array of shape \(n, r\) with n = 3 rows",
    ),
    "row_stats-V-missing": (
        lambda: diagnostics.row_stats((F1, G1), U=np.ones((3, 2))),
        r"V must be given with U",
    ),
    "row_stats-Delta0": (
        lambda: diagnostics.row_stats((F1, G1), Delta0=np.ones((1, 3, 3))),
        r"Delta0 must be an array of shape \(B, k, k\) with k = 2",
    ),
    "factor_stats": (
        lambda: diagnostics.factor_stats(F1, G1, np.ones((4, 2)), np.ones((3, 2))),
        r"U must be an array of shape \(n, r\) with n = 3 rows",
    ),
    "loss": (lambda: diagnostics.loss("a", True), r"residual_norm must be a number"),
    "loss-flag": (lambda: diagnostics.loss(1.0, "yes"), r"symmetric_factors must be True"),
    "product": (
        lambda: diagnostics.product((F1, G_k3)),
        r"G must be an array of shape \(B, n2, k\) with k = 2",
    ),
}


@pytest.mark.parametrize("name", list(SHAPE_CASES))
def test_diagnostics_name_the_argument_and_its_shape(name):
    """Every public function of diagnostics refuses mismatched shapes with one line naming the
    argument and the shape it should have — not NumPy's "operands could not be broadcast", a
    gufunc message, or (the compiled row kernel, the singular values) a silently wrong number."""
    call, pattern = SHAPE_CASES[name]
    with pytest.raises((ValueError, TypeError), match=pattern) as info:
        call()
    assert "\n" not in str(info.value)
    assert "broadcast" not in str(info.value) and "gufunc" not in str(info.value)


def test_truth_error_checks_the_factors_rows():
    p = Problem.gaussian(1100, 1000, r=2, m=50, seed=0, max_memory="1G")  # factored truth
    truth = diagnostics.Truth.of(p, np.ones((1, 1100, 2)))
    assert truth.factored
    with pytest.raises(ValueError, match=r"factors must have 1100 and 1000 rows like M\*"):
        truth.error((np.ones((1, 1000, 2)), np.ones((1, 1000, 2))))


def test_diagnostics_still_accept_what_they_accepted():
    """The checks refuse mismatches only: unbatched arrays, a Δ₀ shared by the batch (1, k, k)
    and the symmetric (X,) form give the same numbers as before."""
    rng = np.random.default_rng(0)
    F, G = rng.standard_normal((2, 3, 5, 2))
    assert diagnostics.error(F[0] @ G[0].T, F[0] @ G[0].T) == 0.0
    D0 = diagnostics.imbalance(F[:1], G[:1])
    drift = diagnostics.imbalance_drift(F, G, D0)
    np.testing.assert_allclose(drift[0], 0.0, atol=1e-12)
    assert drift.shape == (3,)
    assert diagnostics.row_stats((F, G), Delta0=D0) is None  # broadcast Δ₀: the NumPy path
    got = diagnostics.row_stats((F, G), Delta0=np.broadcast_to(D0, (3, 2, 2)).copy())
    if got is not None:
        np.testing.assert_allclose(got[0][:, 2], drift, rtol=1e-12, atol=1e-14)
    U = np.linalg.qr(rng.standard_normal((5, 2)))[0]
    assert diagnostics.off_subspace((F,), U, None).shape == (3,)
    np.testing.assert_allclose(
        diagnostics.product_singular_values((F,)),
        np.linalg.svd(F @ F.mT, compute_uv=False)[:, :2],
        rtol=1e-10,
    )


# ----------------------------------------------------- 3. nuclear_norm_solve(None)
@pytest.mark.parametrize("bad", [None, "problem", 42])
def test_nuclear_norm_solve_refuses_a_non_problem(bad):
    from matsense.methods.nuclear import nuclear_norm_solve

    with pytest.raises(TypeError, match="nuclear_norm_solve: problem must be a matsense Problem"):
        nuclear_norm_solve(bad)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(psd="no"), r"psd must be True or False, got 'no'"),
        (dict(verbose="yes"), r"verbose must be True or False"),
        (dict(solver=3), r"solver must be a CVXPY solver name"),
    ],
)
def test_nuclear_norm_solve_checks_its_flags(small, kwargs, pattern):
    """psd='no' used to be bool('no') = True, a PSD constraint the caller turned off."""
    from matsense.methods.nuclear import nuclear_norm_solve

    with pytest.raises(ValueError if "solver" not in kwargs else TypeError, match=pattern):
        nuclear_norm_solve(small, **kwargs)


# ------------------------------- 4. matrix-free sweeps at sizes they handle
def test_memory_estimate_follows_the_ensemble():
    """RunConfig.memory_bytes counts what each ensemble stores: m·n1·n2 numbers for the dense
    Gaussian ones, m·(n1 + n2) for rank-one, O(m) for completion (not a dense operator)."""
    from matsense.config import RunConfig, problem_bytes

    def cfg(ensemble, n1, m):
        return RunConfig.from_dict(
            {"ensemble": ensemble, "n1": n1, "r": 2, "m": m, "k": 3, "iters": 3}
        )

    completion = cfg("completion", 20_000, 400_000).memory_bytes(2)
    assert completion < 256 << 20  # ~100 MB, not 8·m·n1·n2 = 1.3 PB
    assert completion >= problem_bytes("completion", 20_000, 20_000, 2, 400_000) > 400_000 * 8
    rank_one = cfg("rank-one", 1000, 20_000).memory_bytes(2)
    assert 8 * 20_000 * 2000 <= rank_one < 1 << 30
    dense = cfg("gaussian", 1000, 20_000).memory_bytes(2)
    assert dense >= 8 * 20_000 * 1000 * 1000  # unchanged: the dense operator
    # p instead of m: the expected number of observed entries
    by_p = RunConfig.from_dict({"ensemble": "completion", "n1": 1000, "r": 2, "p": 0.5, "k": 3})
    assert by_p.measurements() == 500_000
    assert by_p.memory_bytes() > 500_000 * 8 * 4


SCALE_SPECS = {
    "completion": {
        "base": {
            "ensemble": "completion",
            "n1": 20_000,
            "r": 2,
            "m": 400_000,
            "k": 3,
            "iters": 3,
            "alpha": 0.001,
            "step_size": 0.1,
        },
        "grid": {"init_seed": [0, 1]},
    },
    "rank-one": {
        "base": {
            "ensemble": "rank-one",
            "n1": 1000,
            "r": 2,
            "m": 20_000,
            "k": 3,
            "iters": 3,
            "alpha": 0.04,
            "step_size": 0.3,
        },
        "grid": {"init_seed": [0, 1]},
    },
}


@pytest.mark.parametrize("ensemble", list(SCALE_SPECS))
def test_matrix_free_sweep_at_scale_is_not_refused(ensemble, tmp_path, monkeypatch):
    """A completion sweep at n1 = 20 000, m = 4·10⁵ and a rank-one sweep at n1 = 1000,
    m = 2·10⁴ ran 0 runs before: every one was refused by the dense-Gaussian memory estimate
    (1.3 PB resp. 160 GB). Under a 2 GiB limit both finish, every run with a history."""
    from matsense.sweep import load, run_sweep

    monkeypatch.setenv("MATSENSE_MAX_MEMORY", "2G")
    summary = run_sweep(SCALE_SPECS[ensemble], tmp_path / "store", workers=0, progress="off")
    assert summary.failed == 0 and summary.lost == 0
    runs = load(tmp_path / "store", history=False).runs
    assert len(runs) == 2 and set(runs["status"]) <= {"max_iters", "converged"}
    assert np.isfinite(runs["final_rel_error"]).all()
    assert (runs["history_rows"] == 4).all()


def test_dense_sweep_too_large_is_still_refused(tmp_path, monkeypatch):
    """The same size as the completion sweep on the dense Gaussian ensemble stays refused,
    one line naming the ensemble and the size."""
    from matsense.sweep import load, run_sweep

    monkeypatch.setenv("MATSENSE_MAX_MEMORY", "2G")
    spec = {"base": dict(SCALE_SPECS["completion"]["base"], ensemble="gaussian")}
    summary = run_sweep(spec, tmp_path / "store", workers=0, progress="off")
    assert summary.failed == 1
    (message,) = load(tmp_path / "store", history=False).runs["message"]
    assert "a gaussian run of n1=20000, n2=20000, m=400000" in message and "\n" not in message


# ------------------------------------------------------------ 5. a full disk
# RLIMIT_FSIZE (inherited by the command's workers) makes every write past the limit fail
# with EFBIG, as a full file system fails with ENOSPC: the same code path (an OSError on
# write), without root or a loop mount. CPython ignores SIGXFSZ, so the write raises.
def _limited(argv, limit: int, *, timeout: float = 300):
    import resource
    import subprocess
    import sys

    from test_supervision import ENV

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        env=ENV,
        preexec_fn=limit_file_size,
        timeout=timeout,
    )


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("matsense: error: "), stderr
    return lines[0]


def _temp_files(folder):
    return [p for p in folder.rglob(".*.tmp")]


def test_full_disk_during_reproduce_is_one_line_naming_the_file(tmp_path):
    """Before: the claim caught the OSError as "experiment failed" and the command exited 0
    with a table of failed claims (or a traceback from write_text)."""
    out = tmp_path / "out"
    argv = [
        "-m",
        "matsense",
        "reproduce",
        "--quick",
        "--claims",
        "C1",
        "--workers",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    done = _limited(argv, 20_000)  # the figures (PNGs of ~50 kB) do not fit
    assert done.returncode == 2, (done.stdout, done.stderr)
    line = _one_line(done.stderr)
    assert f"could not write {out}" in line and "file too large" in line
    assert not (out / "summary.json").exists() and not (out / "report.html").exists()
    assert _temp_files(out) == []
    # space is back: the same command completes
    done = _limited(argv, 1 << 30)
    assert done.returncode == 0, done.stderr
    import json

    assert [c["id"] for c in json.loads((out / "summary.json").read_text())["claims"]] == ["C1"]


def test_full_disk_during_a_sweep_leaves_a_verifiable_resumable_store(tmp_path):
    """The sweep stops with one line naming the part it could not write; the store holds only
    whole, committed parts (verify: healthy) and a rerun with space completes it."""
    from matsense.sweep import load, verify

    out = tmp_path / "store"
    spec = tmp_path / "spec.toml"
    base = "[sweep]\nmax_batch = 1\n[base]\nn1 = 8\nr = 1\nm = 80\nk = 2\n[grid]\n"
    spec.write_text(base + "iters = [5, 10]\n")
    sweep = [
        "-m",
        "matsense",
        "sweep",
        str(spec),
        "--out",
        str(out),
        "--workers",
        "0",
        "--no-progress",
    ]
    assert _limited(sweep, 1 << 30).returncode == 0
    spec.write_text(base + "iters = [5, 10, 3000]\n")  # its history part is ~100 kB
    done = _limited(sweep, 60_000)
    assert done.returncode == 2, (done.stdout, done.stderr)
    line = _one_line(done.stderr)
    assert f"could not write {out / 'history'}" in line and ".parquet" in line
    assert _temp_files(out) == []
    report = verify(out)
    assert report.healthy and len(report.finished) == 2, str(report)
    done = _limited(sweep, 1 << 30)
    assert done.returncode == 0 and "2 skipped" in done.stdout, done.stdout
    assert sorted(load(out, history=False).runs["iters"]) == [5, 10, 3000]


def test_a_runs_part_that_cannot_be_written_takes_its_history_part_back(tmp_path, monkeypatch):
    """The disk fills between a batch's two parts: the history part just written is removed,
    so the store is as it was before the batch (before: an uncommitted history part stayed,
    and verify reported the store damaged)."""
    from matsense._files import DiskFullError
    from matsense.sweep import run_sweep, store, verify

    real = store.atomic_write_table

    def full_for_runs(path, table):
        if path.parent.name == "runs":
            raise DiskFullError(28, "No space left on device", str(path))
        real(path, table)

    monkeypatch.setattr(store, "atomic_write_table", full_for_runs)
    spec = {"base": {"n1": 8, "r": 1, "m": 80, "k": 2, "iters": 5}}
    with pytest.raises(OSError, match=r"could not write .*runs.*part-.*no space left"):
        run_sweep(spec, tmp_path / "store", workers=0, progress="off")
    assert list((tmp_path / "store" / "history").iterdir()) == []
    assert verify(tmp_path / "store").healthy


SUMMARY_WRITER = """
import json, resource, sys
from pathlib import Path
from matsense import report
from matsense.experiments.results import ClaimResult, write_summary
out = Path(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
big = [ClaimResult("C1", "title", "x" * 20000, "expected", True)]
for name, call in (("summary.json", lambda: write_summary(big, out / "summary.json")),
                   ("report.html", lambda: report.write_report(out, [("t", "a", "y" * 20000)]))):
    try:
        call()
    except OSError as exc:
        print(name, type(exc).__name__, str(exc))
    else:
        print(name, "written")
"""


def test_summary_and_report_are_replaced_whole_or_not_at_all(tmp_path):
    """A summary.json or report.html that does not fit (full disk) leaves the previous
    complete file, no truncated one (before: 4096 bytes of JSON / HTML that a reader took
    for the result), and the error names the file."""
    import subprocess
    import sys

    from matsense import report
    from matsense.experiments.results import ClaimResult, write_summary
    from test_supervision import ENV

    out = tmp_path / "out"
    write_summary([ClaimResult("C1", "title", "measured", "expected", True)], out / "summary.json")
    report.write_report(out, [("old", "old", "<p>old</p>")])
    before = {name: (out / name).read_bytes() for name in ("summary.json", "report.html")}
    done = subprocess.run(
        [sys.executable, "-c", SUMMARY_WRITER, str(out)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"summary.json DiskFullError could not write {out / 'summary.json'}")
    assert lines[1].startswith(f"report.html DiskFullError could not write {out / 'report.html'}")
    for name, data in before.items():
        assert (out / name).read_bytes() == data, name
    assert _temp_files(out) == []


# --------------------------------------- 6. SIGKILL / SIGTERM of reproduce and compare
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("command", ["reproduce", "compare"])
def test_killed_reproduce_and_compare_leave_no_worker_and_no_partial_result(
    command, signum, tmp_path
):
    """The command is signalled while its two workers compute: the caller's captured pipes
    close, no process of its session is left after 10 s, SIGTERM exits 143 with one line, and
    whatever result file is in --out is complete."""
    import json
    import subprocess
    import sys

    from test_supervision import (
        ENV,
        START_TIMEOUT,
        assert_group_gone,
        kill_group,
        wait_for,
        workers_of,
    )

    out = tmp_path / "out"
    argv = [
        sys.executable,
        "-m",
        "matsense",
        command,
        "--quick",
        "--workers",
        "2",
        "--out",
        str(out),
    ] + (["--no-progress"] if command == "reproduce" else [])
    proc = subprocess.Popen(
        argv, env=ENV, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_for(
            lambda: len(workers_of(proc.pid)) == 2 or proc.poll() is not None,
            START_TIMEOUT,
            "two workers",
        )
        assert proc.poll() is None, "finished before it could be signalled"
        os.kill(proc.pid, signum)
        # Returns only once every holder of the pipes (workers, resource tracker) closed them.
        _, err = proc.communicate(timeout=START_TIMEOUT)
        assert_group_gone(proc.pid)
    finally:
        kill_group(proc.pid)
        proc.wait()
    if signum == signal.SIGTERM:
        assert proc.returncode == 143
        assert err.decode().strip().splitlines()[-1] == "matsense: terminated (SIGTERM)"
    else:
        assert proc.returncode == -signal.SIGKILL
    for name in ("summary.json", "compare.json"):
        if (out / name).exists():
            json.loads((out / name).read_text())
    if (out / "report.html").exists():
        assert (out / "report.html").read_text().rstrip().endswith("</html>")


# ------------------------------------------- 7. two reproduce runs into one --out
@pytest.mark.parametrize(
    "command, lock", [("reproduce", ".reproduce.lock"), ("compare", ".compare.lock")]
)
def test_a_second_command_into_a_busy_out_is_refused_in_one_line(command, lock, tmp_path, capsys):
    """While one ``reproduce`` (``compare``) holds --out, a second one is refused with one line
    and exit 2 before running anything (before: both ran, each rewriting the other's files)."""
    from matsense import cli
    from matsense._files import folder_lock

    out = tmp_path / "out"
    out.mkdir()
    with folder_lock(out, lock, f"matsense {command}"):
        argv = [command, "--quick", "--workers", "1", "--out", str(out)]
        assert cli.main(argv + (["--claims", "C1"] if command == "reproduce" else [])) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"another matsense {command} is writing to {out}" in line
    assert sorted(p.name for p in out.iterdir()) == [lock]


def test_two_concurrent_reproduce_runs_never_mix_summary_json(tmp_path):
    """Two real ``reproduce`` processes into one --out at once: each either completes or is
    refused with one line, at least one completes, and summary.json is one run's whole
    result."""
    import json
    import subprocess
    import sys

    from test_supervision import ENV

    out = tmp_path / "out"
    argv = [
        sys.executable,
        "-m",
        "matsense",
        "reproduce",
        "--quick",
        "--claims",
        "C1,C2",
        "--workers",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    procs = [
        subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    for rc, err in outcomes:
        if rc != 0:
            assert rc == 2
            assert "another matsense reproduce is writing to" in _one_line(err)
    assert any(rc == 0 for rc, _ in outcomes)
    summary = json.loads((out / "summary.json").read_text())
    assert [c["id"] for c in summary["claims"]] == ["C1", "C2"]


# ------------------------------------- 8. Dask at scale, a worker killed mid-batch
def test_dask_sweep_at_scale_survives_a_killed_worker():
    """benchmarks/fault_dask_scale.py: completion at n1 = n2 = 20 000, m = 4·10⁵ on a loopback
    LocalCluster of 2 workers, one SIGKILLed at its 15th GD step (mid-batch): every run in the
    store once, bitwise the numbers of a local run. The script checks and says RESULT: ok."""
    pytest.importorskip("distributed")
    import subprocess
    import sys
    from pathlib import Path

    from test_supervision import ENV

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "fault_dask_scale.py"
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=ENV, timeout=600
    )
    assert done.returncode == 0 and "RESULT: ok" in done.stdout, (done.stdout, done.stderr[-2000:])
    assert "one killed at its step 15 (yes)" in done.stdout


def test_a_kernel_cache_that_cannot_be_written_does_not_fail_the_run(tmp_path):
    """numba writes each compiled kernel to its on-disk cache; on a full disk that write used
    to raise out of the run that needed the kernel (found by the fuzz campaign: a fresh
    checkout's first ``compare`` under a file-size limit failed in numba's cache, not in
    its own files). Now the kernel runs from memory; nothing partial is left in the cache."""
    import subprocess
    import sys

    from test_supervision import ENV

    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))\n"
        "import matsense as ms\n"
        "p = ms.Problem.gaussian(8, r=1, m=80)\n"
        "t = ms.run(p, ms.GD(), ms.init.small_random(p, 2, 0.1), 5)\n"
        "print(t.status, len(t.history['iteration']))\n"
    )
    cache = tmp_path / "numba-cache"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(ENV, NUMBA_CACHE_DIR=str(cache)),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["max_iters", "6"]
    assert not [p for p in cache.rglob("*") if ".tmp." in p.name]


def test_sigterm_while_a_worker_starts_leaves_no_traceback(tmp_path):
    """The race behind a flaky SIGTERM of ``reproduce``: the signal arrives after a worker was
    spawned but before the pool wrote its preparation data, so the child died on "EOFError:
    Ran out of input" with a traceback on the caller's stderr. Forced here by signalling from
    inside the spawn."""
    import subprocess
    import sys

    script = tmp_path / "race.py"
    script.write_text(
        "import os, signal, sys\n"
        "import multiprocessing.popen_spawn_posix as P\n"
        "from matsense.workers import Terminated, process_pool\n"
        "spawn, fired = P.util.spawnv_passfds, []\n"
        "def spawn_then_signal(path, args, passfds):\n"
        "    pid = spawn(path, args, passfds)\n"
        "    if '--multiprocessing-fork' in args and not fired:  # the first worker only\n"
        "        fired.append(pid)\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return pid\n"
        "P.util.spawnv_passfds = spawn_then_signal\n"
        "if __name__ == '__main__':\n"
        "    try:\n"
        "        with process_pool(1) as pool:\n"
        "            pool.submit(abs, -1).result()\n"
        "    except Terminated:\n"
        "        print('terminated', file=sys.stderr)\n"
        "        sys.exit(143)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip().splitlines() == ["terminated"], done.stderr
