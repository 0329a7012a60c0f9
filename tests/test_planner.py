"""The kernel planner: measured choice on the first call, one kernel's numbers, fixed in bitwise mode.

No timing is asserted: only which kernels ran, what was chosen among, and the numbers.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import matsense as ms
from matsense import threads
from matsense.operators import DenseOperator, dispatch, planned_kernel, planner
from matsense.operators.kernels import numba_kernel, numpy_loop

CALLS = 5


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch):
    monkeypatch.delenv("MATSENSE_KERNEL", raising=False)
    monkeypatch.delenv("MATSENSE_THREADS", raising=False)
    planner.clear_plans()
    dispatch._warned.clear()
    yield
    planner.clear_plans()
    dispatch._warned.clear()


@pytest.fixture
def spy(monkeypatch):
    """Names of the kernels that ran, in order."""
    ran = []
    for module, name, label in (
        (numba_kernel, "fused_numba", "numba"),
        (dispatch, "fused_numpy", "numpy"),
        (dispatch, "two_pass", "two-pass"),
    ):
        real = getattr(module, name)

        def wrapped(*a, _real=real, _label=label, **kw):
            ran.append(_label)
            return _real(*a, **kw)

        monkeypatch.setattr(module, name, wrapped)
    return ran


def _case(B, m=211, d=37, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, d)) / np.sqrt(m)
    return A, rng.standard_normal((B, d)), rng.standard_normal(m)


def _forced(kernel, A, p, y, monkeypatch):
    monkeypatch.setenv("MATSENSE_KERNEL", kernel)
    try:
        return dispatch.residual_and_adjoint_flat(A, p, y)
    finally:
        monkeypatch.delenv("MATSENSE_KERNEL")


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def _plan_and_check(A, p, y, monkeypatch):
    """A few calls (the first plans), each checked against two-pass; the warnings said."""
    r0, s0 = _forced("two-pass", A, p, y, monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(CALLS):
            r, s = dispatch.residual_and_adjoint_flat(A, p, y)
            assert _rel(r, r0) <= 1e-12 and _rel(s, s0) <= 1e-12
    return [str(w.message) for w in caught if issubclass(w.category, dispatch.KernelWarning)]


@pytest.mark.parametrize("B", [1, 2, 4, 8])
def test_the_first_call_plans_and_every_call_agrees_with_every_forced_kernel(B, spy, monkeypatch):
    A, p, y = _case(B, seed=B)
    forced = {k: _forced(k, A, p, y, monkeypatch) for k in ("numba", "numpy", "two-pass")}
    spy.clear()
    outs = [dispatch.residual_and_adjoint_flat(A, p, y) for _ in range(CALLS)]
    (plan,) = planner.plans()
    choice = plan["choice"]
    assert choice in ("numba", "numpy", "two-pass") and plan["key"] == (A.shape, "<f8", B, None)
    planning = len(spy) - (CALLS - 1)
    assert set(spy[:planning]) == {"numba", "two-pass"}  # the first call tried both
    assert plan["planning_runs"] == planning
    assert spy[planning:] == [choice] * (CALLS - 1)  # then the choice alone
    for r, s in outs:
        for r0, s0 in forced.values():
            assert _rel(r, r0) <= 1e-12 and _rel(s, s0) <= 1e-12
        # one kernel's numbers from the first call on: the same inputs, the same bits
        assert np.array_equal(r, outs[-1][0]) and np.array_equal(s, outs[-1][1])


def test_planned_kernel_names_the_choice_after_a_run():
    problem = ms.Problem.gaussian(8, r=1, m=90, seed=0)
    assert planned_kernel(problem.operator, 1) is None  # not planned yet
    F, G = ms.init.small_random(problem, 2, 0.1, seed=0)
    first = ms.run(problem, ms.GD(0.3), (F, G), iters=20)
    choice = planned_kernel(problem.operator, 1)
    assert choice in ("numba", "numpy", "two-pass")
    assert planned_kernel(problem.operator, 3) is None  # another configuration
    again = ms.run(problem, ms.GD(0.3), (F, G), iters=20)
    for a, b in zip(first.factors, again.factors):
        np.testing.assert_array_equal(a, b)  # planning did not change the first run's bits


def test_a_candidate_that_raises_is_dropped_and_the_call_still_answers(spy, monkeypatch):
    def broken(*a, **kw):
        raise RuntimeError("no luck")

    monkeypatch.setattr(numba_kernel, "fused_numba", broken)
    A, p, y = _case(1)
    said = _plan_and_check(A, p, y, monkeypatch)
    assert said == [
        (
            "kernel 'numba' failed while the planner timed it (RuntimeError: no luck); "
            "it is not used for this configuration"
        )
    ]
    (plan,) = planner.plans()
    assert plan["choice"] in ("numpy", "two-pass") and "numba" in plan["failed"]


def test_when_every_candidate_raises_the_error_propagates(monkeypatch):
    def broken(*a, **kw):
        raise RuntimeError("broken")

    for module, name in (
        (numba_kernel, "fused_numba"),
        (dispatch, "fused_numpy"),
        (dispatch, "two_pass"),
    ):
        monkeypatch.setattr(module, name, broken)
    A, p, y = _case(1)
    with pytest.raises(RuntimeError, match="broken"):
        dispatch.residual_and_adjoint_flat(A, p, y)
    (plan,) = planner.plans()
    assert plan["failed"] == {} and plan["choice"] is None  # the input's fault, not a kernel's


@pytest.mark.parametrize("kernel", ["numba", "numpy", "two-pass"])
@pytest.mark.parametrize("B", [1, 8])
def test_a_forced_kernel_is_not_planned(kernel, B, spy, monkeypatch):
    A, p, y = _case(B)
    monkeypatch.setenv("MATSENSE_KERNEL", kernel)
    for _ in range(3):
        dispatch.residual_and_adjoint_flat(A, p, y)
    assert spy == [kernel] * 3 and planner.plans() == []
    assert planned_kernel(DenseOperator(A.reshape(-1, 37, 1)), B) == kernel


@pytest.mark.parametrize(
    "B, fixed",
    [
        (1, "numba"),
        (4, "numba"),
        (dispatch.FUSED_MAX_BATCH, "numba"),
        (dispatch.FUSED_MAX_BATCH + 1, "two-pass"),
    ],
)
def test_bitwise_mode_uses_a_fixed_kernel(B, fixed, spy, monkeypatch):
    A, p, y = _case(B)
    with threads.single_threaded():
        outs = [dispatch.residual_and_adjoint_flat(A, p, y) for _ in range(CALLS)]
        assert planned_kernel(DenseOperator(A.reshape(-1, 37, 1)), B) == fixed
    assert spy == [fixed] * CALLS and planner.plans() == []
    for r, s in outs[1:]:
        assert np.array_equal(r, outs[0][0]) and np.array_equal(s, outs[0][1])
    monkeypatch.setenv("MATSENSE_THREADS", "1")
    r, s = _forced(fixed, A, p, y, monkeypatch)  # the same numbers as the forced kernel
    assert np.array_equal(r, outs[0][0]) and np.array_equal(s, outs[0][1])


def test_without_numba_the_numpy_loop_serves_and_says_so_once(spy, monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    threads.numba_module.cache_clear()
    numba_kernel._numba_kernel.cache_clear()
    try:
        A, p, y = _case(2)
        said = _plan_and_check(A, p, y, monkeypatch)
        with threads.single_threaded():
            dispatch.residual_and_adjoint_flat(A, p, y)
        assert len(said) == 1 and said[0].startswith(
            "numba cannot be imported (ModuleNotFoundError"
        )
        assert "using the NumPy one-pass loop instead" in said[0]
        assert "numba" not in spy and spy[-1] == "numpy"  # bitwise mode: the loop
        A5, p5, y5 = _case(dispatch.LOOP_MAX_BATCH + 1)
        with threads.single_threaded():
            dispatch.residual_and_adjoint_flat(A5, p5, y5)
        assert spy[-1] == "two-pass"  # ... up to LOOP_MAX_BATCH, then the GEMMs
        (plan,) = planner.plans()
        assert set(plan["median_s"]) <= {"numpy", "two-pass"}
    finally:
        monkeypatch.delitem(sys.modules, "numba")
        threads.numba_module.cache_clear()
        numba_kernel._numba_kernel.cache_clear()


def test_block_rows_on_the_operator_asks_for_the_numpy_loop(spy):
    A, p, y = _case(1)
    op = DenseOperator(A.reshape(-1, 37, 1))
    op.block_rows = 10
    op.residual_and_adjoint(p.reshape(1, 37, 1), y)
    assert spy == ["numpy"] and planner.plans() == []
    assert planned_kernel(op) == "numpy"


def test_numpy_loop_spy_sees_the_real_loop():
    """The spy above patches dispatch's reference; the loop itself is numpy_loop.fused_numpy."""
    assert dispatch.fused_numpy is numpy_loop.fused_numpy


def test_every_timed_run_follows_a_run_of_the_same_kernel(monkeypatch):
    """Switching kernels costs what no real run pays (another kernel's threads still hold the
    cores): the planner times a kernel only right after it ran, and rotates the rest."""
    plan = planner.Plan(((5, 3), "<f8", 1, None), ["a", "b", "c"])
    ran, timed_flags = [], []
    real_record = plan.record

    def record(name, seconds, timed):
        timed_flags.append(timed)
        real_record(name, seconds, timed)

    monkeypatch.setattr(plan, "record", record)
    clock = iter(np.arange(0, 10, 1e-3))

    def run(name):
        ran.append(name)
        return name

    monkeypatch.setattr(planner.time, "perf_counter", lambda: next(clock))
    planner.run_planned(plan, run, lambda *a: None)
    assert plan.choice is not None
    for i, (name, timed) in enumerate(zip(ran, timed_flags)):
        if timed:
            assert i > 0 and ran[i - 1] == name
    assert all(
        len(plan.samples[c]) >= planner.TIMED_ROUNDS for c in plan.samples if c in plan.candidates
    )
    assert sum(timed_flags) >= 3 * planner.TIMED_ROUNDS and len(ran) < 2 * sum(timed_flags)
    # the first candidate's first timed runs come in one block, before any other kernel ran
    first_other = min(ran.index("b"), ran.index("c"))
    assert sum(timed_flags[:first_other]) == planner.TIMED_ROUNDS
    assert set(ran[:first_other]) == {"a"}


@pytest.mark.parametrize(
    "numba_s, expected", [(0.95e-3, "two-pass"), (0.85e-3, "numba"), (1.2e-3, "two-pass")]
)
def test_the_fallback_keeps_the_plan_unless_another_kernel_is_clearly_faster(numba_s, expected):
    plan = planner.Plan(((5, 3), "<f8", 1, None), ["numba", "two-pass"])
    for _ in range(planner.TIMED_ROUNDS):
        plan.record("numba", numba_s, True)
        plan.record("two-pass", 1e-3, True)
    assert plan.choice == expected
