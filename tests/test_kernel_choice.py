"""Which kernel runs: environment settings validated alike, inapplicable requests announced."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from matsense.operators import DenseOperator, dispatch
from matsense.operators.kernels import numba_kernel


@pytest.fixture(autouse=True)
def fresh_warnings():
    """Each test sees the once-per-process warnings as if the process had just started."""
    dispatch._warned.clear()
    yield
    dispatch._warned.clear()


@pytest.fixture(scope="module")
def op():
    rng = np.random.default_rng(2)
    return DenseOperator(rng.standard_normal((83, 5, 4))), rng.standard_normal(83)


def _expected(op, P, y):
    p = P.reshape(P.shape[0], -1)
    r = p @ op.A_flat.T - y
    return r, (r @ op.A_flat).reshape(P.shape)


def _rel(a, b):
    return float(np.abs(np.asarray(a) - b).max() / np.abs(b).max())


def _kernel_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught if issubclass(w.category, dispatch.KernelWarning)]


@pytest.mark.parametrize("kernel", ["auto", "numba", "numpy", "two-pass", "triton"])
@pytest.mark.parametrize("B", [1, 8])
def test_bad_thread_setting_is_one_error_for_every_kernel(op, kernel, B, monkeypatch):
    operator, y = op
    monkeypatch.setenv("MATSENSE_KERNEL", kernel)
    P = np.ones((B, 5, 4))
    for bad in ("0", "-1", "abc"):
        monkeypatch.setenv("MATSENSE_THREADS", bad)
        with pytest.raises(ValueError) as info:
            operator.residual_and_adjoint(P, y)
        assert str(info.value) == f"MATSENSE_THREADS must be an integer >= 1, got '{bad}'"


def test_triton_on_numpy_says_so_once_and_runs_the_automatic_choice(op, monkeypatch):
    operator, y = op
    monkeypatch.setenv("MATSENSE_KERNEL", "triton")
    P = np.random.default_rng(0).standard_normal((1, 5, 4))
    (r, S), said = _kernel_warnings(lambda: operator.residual_and_adjoint(P, y))
    assert said == [
        (
            "MATSENSE_KERNEL=triton runs torch tensors on CUDA only; NumPy arrays use "
            "the automatic choice (MATSENSE_KERNEL=auto) instead"
        )
    ]
    r0, S0 = _expected(operator, P, y)
    assert _rel(r, r0) < 1e-12 and _rel(S, S0) < 1e-12
    _, again = _kernel_warnings(lambda: operator.residual_and_adjoint(P, y))
    assert again == []


def test_forced_numba_that_cannot_run_names_the_fallback(op, monkeypatch):
    operator, y = op
    monkeypatch.setenv("MATSENSE_KERNEL", "numba")
    monkeypatch.setattr(numba_kernel, "numba_usable", lambda: False)  # as in a forked child
    P = np.random.default_rng(1).standard_normal((2, 5, 4))
    (r, S), said = _kernel_warnings(lambda: operator.residual_and_adjoint(P, y))
    assert len(said) == 1 and said[0].startswith("MATSENSE_KERNEL=numba: ")
    assert said[0].endswith("; using the NumPy one-pass loop instead")
    r0, S0 = _expected(operator, P, y)
    assert _rel(r, r0) < 1e-12 and _rel(S, S0) < 1e-12
    assert _kernel_warnings(lambda: operator.residual_and_adjoint(P, y))[1] == []


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_numpy_kernels_on_torch_say_so_once(op, kernel, monkeypatch):
    torch = pytest.importorskip("torch")
    operator, y = op
    monkeypatch.setenv("MATSENSE_KERNEL", kernel)
    top = operator.to(operator.target.__class__("torch", "cpu", "float64"))
    P = np.random.default_rng(3).standard_normal((1, 5, 4))
    (r, S), said = _kernel_warnings(
        lambda: top.residual_and_adjoint(torch.from_numpy(P), torch.from_numpy(y))
    )
    assert said == [
        (
            f"MATSENSE_KERNEL={kernel} runs NumPy arrays only; using two-pass (two "
            f"matrix products) for torch tensors instead"
        )
    ]
    r0, S0 = _expected(operator, P, y)
    assert _rel(r.numpy(), r0) < 1e-12 and _rel(S.numpy(), S0) < 1e-12
    assert (
        _kernel_warnings(
            lambda: top.residual_and_adjoint(torch.from_numpy(P), torch.from_numpy(y))
        )[1]
        == []
    )


def test_triton_that_cannot_run_on_torch_falls_back_to_two_pass(op, monkeypatch):
    torch = pytest.importorskip("torch")
    operator, y = op
    monkeypatch.setenv("MATSENSE_KERNEL", "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    top = operator.to(operator.target.__class__("torch", "cpu", "float64"))
    P = np.random.default_rng(4).standard_normal((2, 5, 4))  # a CPU tensor, and a batch
    (r, S), said = _kernel_warnings(
        lambda: top.residual_and_adjoint(torch.from_numpy(P), torch.from_numpy(y))
    )
    assert len(said) == 1 and said[0].startswith("MATSENSE_KERNEL=triton ")
    assert said[0].endswith("; using two-pass (two matrix products) instead")
    r0, S0 = _expected(operator, P, y)
    assert _rel(r.numpy(), r0) < 1e-12 and _rel(S.numpy(), S0) < 1e-12


def test_thread_setting_reaches_the_numba_kernel(monkeypatch):
    numba = pytest.importorskip("numba")
    from matsense.threads import single_threaded

    rng = np.random.default_rng(6)
    A, y, p = rng.standard_normal((97, 13)), rng.standard_normal(97), rng.standard_normal((2, 13))
    with single_threaded():
        ref = numba_kernel.fused_numba(A, p, y)
    before = numba.get_num_threads()
    monkeypatch.setenv("MATSENSE_KERNEL", "numba")
    monkeypatch.setenv("MATSENSE_THREADS", "1")
    r, s = dispatch.residual_and_adjoint_flat(A, p, y)
    assert np.array_equal(r, ref[0]) and np.array_equal(s, ref[1])  # one partial sum, same order
    assert numba.get_num_threads() == before
    monkeypatch.delenv("MATSENSE_THREADS")  # below THREADED_MIN_BYTES: one thread all the same
    r, s = dispatch.residual_and_adjoint_flat(A, p, y)
    assert np.array_equal(r, ref[0]) and np.array_equal(s, ref[1])


def test_numba_kernel_is_loaded_from_the_disk_cache_in_a_fresh_process(tmp_path):
    """cache=True works: a second interpreter loads the compiled kernel instead of compiling."""
    pytest.importorskip("numba")
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from matsense.operators.kernels import numba_kernel\n"
        "numba_kernel.fused_numba(np.ones((9, 4)), np.ones((1, 4)), np.zeros(9))\n"
        "st = numba_kernel._numba_kernel().stats\n"
        "print(sum(st.cache_hits.values()), sum(st.cache_misses.values()))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    counts = [
        subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        ).stdout.split()
        for _ in range(2)
    ]
    assert counts == [["0", "1"], ["1", "0"]]  # compiled once, then loaded from the cache


@pytest.mark.parametrize("kernel", ["numba", "numpy", "two-pass"])
def test_trajectory_config_names_the_forced_kernel(kernel, monkeypatch):
    import matsense as ms

    monkeypatch.setenv("MATSENSE_KERNEL", kernel)
    problem = ms.Problem.gaussian(8, r=1, m=60, seed=0)
    traj = ms.run(problem, ms.GD(step_size=0.2), ms.init.small_random(problem, 2, 0.1), 3)
    assert traj.config["kernel"] == kernel


def test_trajectory_config_names_the_planners_pick(monkeypatch):
    import matsense as ms
    from matsense.operators import planner

    monkeypatch.delenv("MATSENSE_KERNEL", raising=False)
    planner.clear_plans()
    problem = ms.Problem.gaussian(9, r=1, m=70, seed=0)
    traj = ms.run(problem, ms.GD(step_size=0.2), ms.init.small_random(problem, 2, 0.1), 3)
    [plan] = [p for p in planner.plans() if p["key"][0] == problem.operator.A_flat.shape]
    assert traj.config["kernel"] == plan["choice"]
    assert plan["choice"] in ("numba", "numpy", "two-pass")


def test_trajectory_config_names_the_kernel_of_other_ensembles():
    import matsense as ms

    for problem, name in (
        (ms.Problem.rank_one(8, r=1, m=60, seed=0), "four-gemm"),
        (ms.Problem.completion(8, r=1, m=40, seed=0), "numba-entries"),
    ):
        traj = ms.run(problem, ms.GD(step_size=0.2), ms.init.small_random(problem, 2, 0.1), 2)
        assert traj.config["kernel"] == name


def test_run_together_names_the_kernel_of_its_stacked_passes(monkeypatch):
    """Three runs in lock-step share passes of B = 3: their kernel is that plan's choice (the
    planner never saw B = 1 for this operator)."""
    import matsense as ms
    from matsense.operators import planner

    monkeypatch.delenv("MATSENSE_KERNEL", raising=False)
    planner.clear_plans()
    problem = ms.Problem.gaussian(8, r=1, m=61, seed=0)
    init = ms.init.small_random(problem, 2, 0.1)
    trajs = ms.run_together(problem, [(ms.GD(step_size=0.2), init)] * 3, 4)
    [plan] = [p for p in planner.plans() if p["key"][0] == problem.operator.A_flat.shape]
    assert plan["key"][2] == 3
    assert [t.config["kernel"] for t in trajs] == [plan["choice"]] * 3
