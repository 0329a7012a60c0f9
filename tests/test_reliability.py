"""Issue #13: hostile-but-realistic inputs end in a clean one-line error, never a silent wrong
result, an unguarded allocation or a traceback. One section per numbered finding of the issue
(3 and 4, the store and the worker pool, are in test_store_repair.py and test_supervision.py).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import matsense as ms
from matsense import Problem, cli, init
from matsense.config import RunConfig
from matsense.methods import rebalance
from matsense.sweep.spec import load_spec

TINY = ["--n1", "6", "--r", "1", "--m", "60", "--k", "1", "--iters", "3", "--no-progress"]


@pytest.fixture
def small():
    return Problem.gaussian(6, r=2, m=100)


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("matsense: error: "), err
    return lines[0]


def _capped(code: str, cap_gib: int = 4, timeout: int = 120):
    """Run ``code`` in a fresh interpreter under RLIMIT_AS = cap_gib GiB."""
    prelude = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({cap_gib} << 30, {cap_gib} << 30))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ------------------------------------------------- 1. unguarded allocations
def test_large_problem_refused_with_size_limit_and_override(monkeypatch):
    monkeypatch.setenv("MATSENSE_MAX_MEMORY", "1G")
    with pytest.raises(ValueError) as info:
        Problem.gaussian(10, r=2, m=10**7)
    msg = str(info.value)
    assert "\n" not in msg
    assert "7.5 GiB" in msg and "1.0 GiB" in msg
    assert "max_memory=" in msg and "--max-memory" in msg and "MATSENSE_MAX_MEMORY" in msg


def test_max_memory_argument_on_builders_and_run(small):
    with pytest.raises(ValueError, match=r"more than the 1\.0 KiB allowed \(max_memory\)"):
        Problem.gaussian(10, r=2, m=100, max_memory="1K")
    with pytest.raises(ValueError, match="max_memory"):
        Problem.generate("gaussian", 10, r=2, m=100, max_memory=1024)
    F0 = init.small_random(small, k=2, alpha=0.1)
    with pytest.raises(ValueError, match="the run's state and history"):
        ms.run(small, ms.GD(), F0, 10**9, max_memory="1M")
    assert ms.run(small, ms.GD(), F0, 3, max_memory="1G").iterations == 3
    with pytest.raises(ValueError, match="must be a size such as 8G"):
        Problem.gaussian(10, r=2, m=100, max_memory="lots")


def test_memory_check_is_cheap_for_small_allocations(monkeypatch):
    from matsense import memory

    monkeypatch.delenv("MATSENSE_MAX_MEMORY", raising=False)
    monkeypatch.setattr(memory, "available_bytes", lambda: pytest.fail("read /proc"))
    memory.check("a small array", 10**6)  # no /proc read below memory.SMALL
    assert memory.parse_size("2.5GiB") == int(2.5 * 2**30)
    for bad in ("0", "-1G", "abc", True, float("nan"), "inf"):
        with pytest.raises(ValueError):
            memory.parse_size(bad)


def test_astronomical_sizes_are_a_clean_value_error():
    with pytest.raises(ValueError, match="would take .* TiB"):
        Problem.gaussian(10**20, r=2, m=10)
    with pytest.raises(ValueError, match="would take .* TiB"):
        Problem.gaussian(100_000, r=2, m=900)


def test_the_limit_counts_the_address_space_cap():
    """Under `ulimit -v 4G` (what the fuzz campaign uses) the 7.45 GiB problem is refused
    before numpy tries (and fails with a MemoryError traceback)."""
    proc = _capped("""
        from matsense import Problem
        try:
            Problem.gaussian(10, r=2, m=10**7)
        except ValueError as exc:
            print("REFUSED", exc)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("REFUSED") and "7.5 GiB" in proc.stdout


def test_cli_run_too_large_is_one_line_exit_2():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "matsense",
            "run",
            "--n1",
            "100",
            "--m",
            "100000",
            "--max-memory",
            "1G",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    line = _one_error_line(proc.stderr)
    assert "7.5 GiB" in line and "--max-memory" in line


def test_cli_max_memory_flag_is_validated_and_not_leaked(capsys, monkeypatch):
    monkeypatch.delenv("MATSENSE_MAX_MEMORY", raising=False)
    assert cli.main(["run", *TINY, "--max-memory", "abc"]) == 2
    assert "--max-memory must be a size" in _one_error_line(capsys.readouterr().err)
    assert cli.main(["run", *TINY, "--max-memory", "1G"]) == 0
    import os

    assert "MATSENSE_MAX_MEMORY" not in os.environ
    for command in ("run", "sweep", "reproduce", "compare"):
        assert cli.main([command, "--help"]) == 0
        assert "--max-memory" in capsys.readouterr().out, command


def test_sweep_marks_a_too_large_point_failed_before_dispatch(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(
        "[base]\nn1 = 6\nr = 1\nk = 1\niters = 3\n[grid]\nm = [60, 100000]\nn2 = [6, 500]\n"
    )
    out = tmp_path / "store"
    status = cli.main(
        [
            "sweep",
            str(spec),
            "--out",
            str(out),
            "--workers",
            "0",
            "--max-memory",
            "200M",
            "--no-progress",
        ]
    )
    assert status == 1
    runs = ms.load(out).runs
    failed = runs[runs.status == "failed"]
    assert len(runs) == 4 and len(failed) == 1
    (row,) = failed.to_dict("records")
    assert row["m"] == 100000 and row["n2"] == 500
    assert "would take" in row["message"] and "--max-memory" in row["message"]
    assert (runs.status != "failed").sum() == 3


# ------------------------------------------------- 2. strict booleans
@pytest.mark.parametrize("value", ["no", "false", "yes", 0, 1, None, "True"])
def test_symmetric_must_be_a_bool(value):
    with pytest.raises(ValueError, match="symmetric must be True or False"):
        Problem.gaussian(10, r=2, m=200, symmetric=value)
    A = np.random.default_rng(0).standard_normal((20, 4, 4))
    if value is not None:  # None means "decide from M*" in from_arrays
        with pytest.raises(ValueError, match="symmetric must be True or False"):
            Problem.from_arrays(A, np.zeros(20), symmetric=value)


def test_numpy_bools_are_bools():
    assert Problem.gaussian(6, r=2, m=100, symmetric=np.bool_(True)).symmetric is True
    A = np.random.default_rng(0).standard_normal((20, 4, 4))
    assert Problem.from_arrays(A, np.zeros(20), symmetric=np.bool_(False)).symmetric is False


@pytest.mark.parametrize("value", ['"no"', '"false"', "0", "1"])
def test_symmetric_strings_refused_in_toml_and_sweep_specs(tmp_path, value):
    run = tmp_path / "run.toml"
    run.write_text(f"n1 = 6\nr = 1\nm = 60\nk = 1\nsymmetric = {value}\n")
    with pytest.raises(ValueError, match=r"run\.toml:5: symmetric must be"):
        RunConfig.from_toml(run)
    spec = tmp_path / "spec.toml"
    spec.write_text(f"[base]\nn1 = 6\nr = 1\nm = 60\nk = 1\n[grid]\nsymmetric = [true, {value}]\n")
    with pytest.raises(ValueError, match="symmetric must be"):
        load_spec(spec)


# ------------------------------------------------- 5. output paths
@pytest.mark.parametrize(
    "argv",
    [
        ["run", *TINY, "--out", "{f}/x.csv"],
        ["run", *TINY, "--figure", "{f}/x.png"],
        ["reproduce", "--quick", "--claims", "C1", "--no-progress", "--out", "{f}/x"],
        ["compare", "--quick", "--out", "{f}/x"],
        ["sweep", "{spec}", "--out", "{f}/x", "--no-progress"],
        ["sweep", "{spec}", "--out", "{f}", "--no-progress"],
        ["plot", "{tmp}", "--x", "alpha", "--y", "rate", "--out", "{f}/p.png"],
    ],
)
def test_out_through_a_regular_file_is_refused_before_the_work(tmp_path, capsys, monkeypatch, argv):
    somefile = tmp_path / "somefile"
    somefile.write_text("not a folder\n")
    spec = tmp_path / "s.toml"
    spec.write_text("[base]\nn1 = 6\nr = 1\nm = 60\nk = 1\niters = 3\n")
    # The work must not start: any problem built would be a failure of the check.
    monkeypatch.setattr(Problem, "gaussian", classmethod(lambda *a, **k: pytest.fail("ran")))
    argv = [a.format(f=somefile, spec=spec, tmp=tmp_path) for a in argv]
    assert cli.main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(somefile) in line
    assert somefile.read_text() == "not a folder\n"


def test_out_in_an_unwritable_place_is_refused(tmp_path, capsys):
    assert cli.main(["run", *TINY, "--out", "/proc/matsense-x.csv"]) == 2
    assert "cannot write in /proc" in _one_error_line(capsys.readouterr().err)
    assert cli.main(["run", *TINY, "--out", str(tmp_path / "new" / "x.csv")]) == 0
    assert (tmp_path / "new" / "x.csv").exists()


# ------------------------------------------------- 6. types and dtypes
@pytest.mark.parametrize("which", ["A", "y", "M_star"])
def test_float16_refused_at_the_boundary(which):
    rng = np.random.default_rng(0)
    args = {"A": rng.standard_normal((20, 4, 4)), "y": np.zeros(20), "M_star": np.zeros((4, 4))}
    args[which] = args[which].astype(np.float16)
    with pytest.raises(ValueError, match=f"{which} must be float32 or float64.*float16"):
        Problem.from_arrays(args["A"], args["y"], M_star=args["M_star"])


def test_float16_factors_refused(small):
    F, G = init.small_random(small, k=2, alpha=0.1)
    with pytest.raises(ValueError, match="F0 must be float32 or float64"):
        ms.run(small, ms.GD(), (F.astype(np.float16), G), 3)


def test_run_argument_types(small):
    F0 = init.small_random(small, k=2, alpha=0.1)
    with pytest.raises(TypeError, match="problem must be a matsense Problem.*got None"):
        ms.run(None, ms.GD(), F0, 3)
    with pytest.raises(ValueError, match=r"got the string 'gd'.*get_method\('gd'\)"):
        ms.run(small, "gd", F0, 3)
    with pytest.raises(ValueError, match=r"got the class GD: instantiate it, e\.g\. GD\(\)"):
        ms.run(small, ms.GD, F0, 3)
    with pytest.raises(TypeError, match="callback must be callable.*got 42"):
        ms.run(small, ms.GD(), F0, 3, callback=42)
    with pytest.raises(ValueError, match="method must be a method object"):
        ms.run(small, object(), F0, 3)
    with pytest.raises(ValueError, match="problem must be a matsense Problem"):
        ms.run_together("problem", [(ms.GD(), F0)], 3)
    with pytest.raises(ValueError, match="got the class GD"):
        ms.run_together(small, [(ms.GD, F0)], 3)


def test_init_argument_types(small):
    with pytest.raises(TypeError, match="problem must be a matsense Problem.*None"):
        init.small_random(None, k=2, alpha=0.1)
    with pytest.raises(ValueError, match="alpha must be a real number, got 1j"):
        init.small_random(small, k=2, alpha=1j)
    with pytest.raises(ValueError, match="alpha must be a scalar or a non-empty sequence"):
        init.small_random(small, k=2, alpha=[])
    with pytest.raises(ValueError, match="alpha must be a real number"):
        init.small_random(small, k=2, alpha="0.1")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        init.symmetric_random(Problem.gaussian(6, r=2, m=100, symmetric=True), 2, 0.1, seed=[1.5])
    with pytest.raises(ValueError, match="problem must be"):
        init.spectral("p", 2)
    F, G = init.small_random(small, k=2, alpha=[0.1, 0.2], seed=[0, 1])
    assert F.shape == (2, 6, 2) and G.shape == (2, 6, 2)


# ------------------------------------------------- 7. finite histories
def _no_inf(traj):
    for key, values in traj.history.items():
        arr = np.asarray(values, dtype=float)
        assert not np.isinf(arr).any(), key
        assert not np.isnan(arr).any(), key


def test_overflowing_start_is_refused_not_recorded(small):
    with pytest.raises(ValueError, match="initial iterate's residual or error is not finite"):
        ms.run(small, ms.GD(), init.small_random(small, k=2, alpha=1e150), 10)


@pytest.mark.parametrize("kwargs", [{"singular_values": [1e300, 1e-300]}, {"noise": 1e308}])
def test_overflowing_problems_are_refused(kwargs):
    with pytest.raises(ValueError, match="overflow float64"):
        Problem.gaussian(6, r=2, m=100, **kwargs)


@pytest.mark.parametrize("case", ["step", "alpha", "sigma", "noise"])
def test_diverged_runs_record_only_finite_iterates(case):
    problem = {
        "sigma": lambda: Problem.gaussian(6, r=2, m=100, singular_values=[1e150, 1e-150]),
        "noise": lambda: Problem.gaussian(6, r=2, m=100, noise=1e150),
    }.get(case, lambda: Problem.gaussian(6, r=2, m=100))()
    method = ms.GD(step_size=1e10) if case == "step" else ms.GD()
    alpha = 1e50 if case == "alpha" else 0.1
    traj = ms.run(problem, method, init.small_random(problem, k=2, alpha=alpha), 10)
    assert traj.status == "diverged"
    _no_inf(traj)
    assert traj.history["iteration"][-1] == traj.iterations
    assert all(np.isfinite(f).all() for f in traj.factors)


def test_zero_ground_truth_reports_the_absolute_error():
    A = np.random.default_rng(0).standard_normal((50, 5, 5))
    problem = Problem.from_arrays(A, np.zeros(50), M_star=np.zeros((5, 5)))
    traj = ms.run(problem, ms.GD(), init.small_random(problem, k=2, alpha=0.1), 5, tol=1e-30)
    _no_inf(traj)
    np.testing.assert_array_equal(traj.history["rel_error"], traj.history["error"])
    assert np.isfinite(traj.summary()[0]["final_rel_error"])


def test_rebalance_refuses_bad_beta():
    F, G = np.ones((5, 2)), np.ones((4, 2))
    for beta in (0, -1.0, float("nan"), float("inf"), 1j, "1"):
        with pytest.raises(ValueError, match="beta"):
            rebalance(F, G, beta)
    with pytest.raises(ValueError, match="not finite"):
        rebalance(F, G, 1e-320)
    F1, G1 = rebalance(F, G, 2.0)
    assert F1.shape == F.shape and G1.shape == G.shape
    np.testing.assert_allclose(F1 @ G1.T, F @ G.T, rtol=1e-12)
    # β = 0 only where F Gᵀ = 0: those factors are kept
    Fz, Gz = np.zeros((2, 5, 2)), np.ones((2, 4, 2))
    Fz[0] = 1.0
    out = rebalance(Fz, Gz, np.array([2.0, 0.0]))
    np.testing.assert_array_equal(out[0][1], Fz[1])


# ------------------------------------------------- 8. settings the kernels read
@pytest.mark.parametrize("kernel", ["auto", "numba", "numpy", "two-pass"])
@pytest.mark.parametrize("threads", ["-1", "abc", "0"])
def test_every_kernel_refuses_a_bad_thread_count(monkeypatch, small, kernel, threads):
    monkeypatch.setenv("MATSENSE_KERNEL", kernel)
    monkeypatch.setenv("MATSENSE_THREADS", threads)
    with pytest.raises(ValueError, match="MATSENSE_THREADS must be an integer >= 1"):
        ms.run(small, ms.GD(), init.small_random(small, k=2, alpha=0.1), 2)


def test_triton_on_numpy_warns_once_naming_what_runs(monkeypatch, small):
    from matsense.operators import dispatch

    monkeypatch.setenv("MATSENSE_KERNEL", "triton")
    monkeypatch.setattr(dispatch, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            ms.run(small, ms.GD(), init.small_random(small, k=2, alpha=0.1), 3)
    texts = [str(w.message) for w in caught if "triton" in str(w.message)]
    assert len(texts) == 1
    assert "NumPy arrays use" in texts[0]
