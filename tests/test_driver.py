"""The driver's contracts (issue 20, parts 3 and 4): stacked evaluations answered by the
operator, methods that name their request, results that carry their phases and start."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import matsense as ms
from matsense.methods.base import Method, request_of
from matsense.operators import single_threaded
from matsense.operators.stacking import PRODUCTS, Evaluation

DRIVER = Path(ms.__file__).parent / "driver"


def _problems():
    return [
        ms.Problem.gaussian(8, r=2, m=120, seed=0),
        ms.Problem.rank_one(8, r=2, m=120, seed=0),
        ms.Problem.completion(8, r=2, m=50, seed=0),
    ]


def _starts(problem, ks=(2, 3)):
    return [ms.init.small_random(problem, k, 0.1, seed=k) for k in ks]


# --------------------------------------------------------------- the operator's part
@pytest.mark.parametrize("problem", _problems(), ids=["gaussian", "rank_one", "completion"])
def test_a_stacked_call_answers_each_request_as_alone(problem):
    """evaluate_stacked gives, request by request, bitwise what problem.evaluate gives alone."""
    op = problem.operator
    reqs = [Evaluation(F[None], G[None]) for F, G in _starts(problem)]
    reqs.append(Evaluation(reqs[0].F, reqs[0].G, adjoint=True))
    with single_threaded():
        alone = [problem.evaluate(req) for req in reqs]
        keys = [op.stack_key(req) for req in reqs]
        for key in set(keys) - {None}:
            idx = [i for i, k in enumerate(keys) if k == key]
            together = op.evaluate_stacked([reqs[i] for i in idx], problem.y)
            assert len(together) == len(idx)
            for i, got in zip(idx, together):
                want = alone[i]
                assert len(got) == len(want) == 3
                for a, b in zip(got, want):
                    np.testing.assert_array_equal(a, b)


def test_stack_keys_say_what_shares_a_call():
    """A flat NumPy operator stacks every request through the products (any k, S itself too);
    other operators stack (r, S G, Sᵀ F) requests of one factor shape and answer S alone."""
    flat, rank_one, _ = _problems()
    (F2, G2), (F3, G3) = _starts(flat)
    r2, r3 = Evaluation(F2[None], G2[None]), Evaluation(F3[None], G3[None])
    svp = Evaluation(F2[None], G2[None], adjoint=True)
    assert flat.operator.stack_key(r2) == flat.operator.stack_key(r3) == PRODUCTS
    assert flat.operator.stack_key(svp) == PRODUCTS
    op = rank_one.operator
    assert op.stack_key(r2) != op.stack_key(r3) and op.stack_key(r2) is not None
    assert op.stack_key(svp) is None


def test_problem_adjoint_products_are_the_operators():
    problem = _problems()[1]
    F, G = _starts(problem)[0]
    r = problem.evaluate(Evaluation(F[None], G[None]))[0]
    np.testing.assert_array_equal(
        problem.adjoint_matmul(r, G[None]), problem.operator.adjoint_matmul(r, G[None])
    )
    np.testing.assert_array_equal(
        problem.adjoint_rmatmul(r, F[None]), problem.operator.adjoint_rmatmul(r, F[None])
    )


# ------------------------------------------------------------------ the method's part
def test_a_methods_step_is_its_request_then_advance():
    problem = _problems()[0]
    F, G = _starts(problem)[0]
    for method in (
        ms.GD(0.2),
        ms.methods.SVP(0.5),
        ms.RebalancedGD(0.2),
        ms.methods.AlternatingPrecGD(),
        ms.methods.ScaledGD(0.5),
    ):
        state = method.init(problem, (F[None], G[None]))
        request = request_of(method, problem, state)
        assert isinstance(request, Evaluation)
        stepped, rn = method.step(problem, state)
        advanced, rn2 = method.advance(problem, state, problem.evaluate(request))
        np.testing.assert_array_equal(rn, rn2)
        for a, b in zip(method.factors(stepped), method.factors(advanced)):
            np.testing.assert_array_equal(a, b)


def test_a_step_override_or_a_plain_method_is_never_answered_for_it():
    """request_of is None for a subclass that overrides step (its step might not start with the
    parent's request) and for a method without request; Method.step without either fails."""

    @dataclasses.dataclass(frozen=True)
    class Counting(ms.GD):
        def step(self, problem, state):
            return ms.GD.step(self, problem, state)

    @dataclasses.dataclass(frozen=True)
    class Bare(Method):
        name = "bare"

    problem = _problems()[0]
    F, G = _starts(problem)[0]
    state = ms.GD().init(problem, (F[None], G[None]))
    assert request_of(Counting(0.2), problem, state) is None
    assert request_of(Bare(), problem, state) is None
    with pytest.raises(NotImplementedError, match="neither step"):
        Bare().step(problem, state)


def test_run_together_steps_a_method_without_request_alone():
    """A method of your own (step only) runs in lock-step with stacked ones, bitwise as alone,
    and only the stacked runs' evaluations go through evaluate_stacked."""

    class Plain:  # the bare protocol: no request/advance
        def init(self, problem, factors):
            return ms.GD(0.2).init(problem, factors)

        def step(self, problem, state):
            return ms.GD(0.2).step(problem, state)

        def factors(self, state):
            return tuple(state)

        def extras(self, state):
            return {}

    problem = _problems()[1]
    start = _starts(problem)[0]
    calls = []
    op = problem.operator
    original = op.evaluate_stacked

    def counting(requests, y):
        calls.append(len(requests))
        return original(requests, y)

    runs = [(Plain(), start), (ms.GD(0.2), start), (ms.GD(0.2), start)]
    with single_threaded():
        alone = [ms.run(problem, m, x0, 20) for m, x0 in runs]
        op.evaluate_stacked = counting
        try:
            together = ms.run_together(problem, runs, 20)
        finally:
            del op.evaluate_stacked
    assert calls == [2] * 21
    for a, b in zip(together, alone):
        for x, y in zip(a.factors, b.factors):
            np.testing.assert_array_equal(x, y)


def test_the_driver_names_no_operator_class_and_stays_small():
    """The driver reads operators and methods by their contracts only, and its modules keep the
    size rules (no function over 60 lines, no module over 500)."""
    for path in DRIVER.glob("*.py"):
        text = path.read_text()
        assert "MatrixOperator" not in text.replace("MatrixOperator.stack_key", "").replace(
            "MatrixOperator.evaluate_stacked", ""
        ), path.name
        assert "isinstance(problem.operator" not in text and "_Prefetched" not in text
        assert len(text.splitlines()) <= 500, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno < 60, f"{path.name}: {node.name}"


def test_matsense_run_module_still_imports():
    from matsense.run import RECORDABLE, IterateInfo, run, run_together, state_bytes

    assert run is ms.run and run_together is ms.run_together
    assert "loss" in RECORDABLE and IterateInfo and state_bytes((4, 4), 10, 1, 2, 5, 1) > 0


# ------------------------------------------------------------- results carry their story
def test_a_trajectory_stores_its_phases_and_its_start():
    problem = ms.Problem.gaussian(10, r=2, m=200, singular_values=[1, 0.5], seed=0)
    F0, G0 = ms.init.small_random(problem, 3, [0.01, 0.02], seed=[1, 2])
    batch = ms.run(problem, ms.RebalancedGD(step_size=0.3), (F0, G0), 400)
    switches = batch.extras["switch_iteration"]
    assert (switches > 0).all()
    for b, phases in enumerate(batch.phases):
        assert [p.name for p in phases] == ["before switch", "after switch"]
        assert phases[1].start == switches[b] and phases[1].event == "rebalancing switch"
        assert batch[b].phases == phases
        assert batch[b].summary()[0]["phases"][1]["start"] == switches[b]
    np.testing.assert_array_equal(batch.start_imbalance, F0.mT @ F0 - G0.mT @ G0)
    np.testing.assert_array_equal(batch[1].start_imbalance, F0[1].T @ F0[1] - G0[1].T @ G0[1])
    stacked = ms.BatchTrajectory.stack([batch[1], batch[0]])
    assert stacked.phases == [batch.phases[1], batch.phases[0]]
    np.testing.assert_array_equal(stacked.start_imbalance[0], batch.start_imbalance[1])
    # plain GD: one phase; X Xᵀ: no imbalance
    gd = ms.run(problem, ms.GD(0.3), (F0[0], G0[0]), 5)
    assert [p.name for p in gd.phases] == ["run"]
    psd = ms.Problem.gaussian(6, r=1, m=60, symmetric=True, seed=0)
    X0 = np.random.default_rng(0).standard_normal((6, 2)) * 0.1
    sym = ms.run(psd, ms.GD(0.3), X0, 3)
    assert sym.start_imbalance is None


def test_rate_of_the_stored_last_phase_is_the_methods():
    from matsense.rates import method_rate, phase_rate

    problem = ms.Problem.gaussian(10, r=2, m=200, singular_values=[1, 0.5], seed=0)
    method = ms.RebalancedGD(step_size=0.3)
    traj = ms.run(problem, method, ms.init.small_random(problem, 3, 0.01, seed=1), 600)
    t, err = traj.history["iteration"], traj.history["error"]
    fit, phase = phase_rate(traj.phases, t, err)
    assert (fit, phase) == method_rate(method, t, err, traj.extras)
    assert phase.start == traj.extras["switch_iteration"] > 0
    with pytest.raises(ValueError, match="at least one Phase"):
        phase_rate((), t, err)


def test_cli_run_saves_phases_and_the_start(tmp_path, capsys):
    from matsense.cli import main

    out = tmp_path / "run.csv"
    code = main(
        [
            "run",
            "--method",
            "rebalanced_gd",
            "--n1",
            "10",
            "--r",
            "2",
            "--k",
            "3",
            "--iters",
            "400",
            "--init",
            "small_random",
            "--alpha",
            "0.01",
            "--out",
            str(out),
            "--no-figure",
            "--seed",
            "0",
        ]
    )
    assert code == 0
    record = json.loads(out.with_suffix(".json").read_text())
    phases = record["summary"]["phases"]
    assert phases[-1]["name"] == "after switch"
    assert phases[-1]["start"] == record["summary"]["switch_iteration"]
    assert np.asarray(record["start_imbalance"]).shape == (3, 3)
    assert f"after the rebalancing switch at t = {phases[-1]['start']}" in capsys.readouterr().out
