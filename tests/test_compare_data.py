"""`matsense compare --data FILE`: every applicable method on your own data set, each run what
`ms.run` gives alone (bitwise, one thread), and its one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import matsense as ms
from matsense.cli import main
from matsense.compare.data import ALPHA, entries_for, sigma_1_estimate
from matsense.data import load_problem


def _dense(tmp_path, symmetric=False, truth=True):
    rng = np.random.default_rng(0)
    n, r, m = 10, 2, 250
    U = rng.standard_normal((n, r))
    M = U @ U.T if symmetric else U @ rng.standard_normal((r, n))
    M /= np.linalg.norm(M, 2)
    A = rng.standard_normal((m, n, n))
    fields = dict(A=A, y=np.einsum("kij,ij->k", A, M) / np.sqrt(m))
    if truth:
        fields["M_star"] = M
    path = tmp_path / ("sym.npz" if symmetric else "dense.npz")
    np.savez(path, **fields)
    return path


def _compare(*argv):
    return main(["compare", *argv, "--no-progress"])


def test_compare_data_runs_every_method_as_alone(tmp_path, capsys):
    path = _dense(tmp_path)
    out = tmp_path / "out"
    assert _compare("--data", str(path), "--out", str(out), "--iters", "400") == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["k"] == 2 and result["truth"] is True  # k from M_star's rank
    problem = load_problem(path)
    entries = entries_for(problem)
    assert [r["method"] for r in result["records"]] == [e.key for e in entries]
    assert all(not e.symmetric for e in entries)  # general data: F Gᵀ only
    assert (out / "compare.md").exists() and (out / "compare_data.png").exists()
    sigma_1 = sigma_1_estimate(problem)
    assert result["sigma_1_estimate"] == pytest.approx(sigma_1)
    with ms.operators.single_threaded():
        for entry, record in zip(entries, result["records"]):
            traj = ms.run(
                problem,
                entry.make_method(sigma_1),
                entry.initial_factors(problem, 2, ALPHA, 0),
                400,
                tol=1e-10,
            )
            assert (record["status"], record["iterations"]) == (
                str(traj.status),
                traj.iterations,
            ), entry.key
            assert record["final_rel_error"] == float(traj.history["rel_error"][-1])
    assert sum(r["status"] == "converged" for r in result["records"]) >= 3


def test_symmetric_data_adds_the_x_xt_methods(tmp_path):
    out = tmp_path / "out"
    assert (
        _compare(
            "--data", str(_dense(tmp_path, symmetric=True)), "--out", str(out), "--iters", "50"
        )
        == 0
    )
    records = json.loads((out / "compare.json").read_text())["records"]
    assert {"gd_sym", "precgd", "scaledgd_lambda"} <= {r["method"] for r in records}


@pytest.mark.parametrize(
    "extra, words",
    [
        ([], "no M_star to take the rank from: give --k"),
        (["--k", "2", "--quick"], "--quick cannot be used with it"),
        (["--k", "0"], "--k must be an integer in [1, 10]"),
    ],
)
def test_compare_data_errors_are_one_line(tmp_path, capsys, extra, words):
    path = _dense(tmp_path, truth=False)
    assert _compare("--data", str(path), "--out", str(tmp_path / "o"), *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err, err


def test_k_and_iters_need_data(tmp_path, capsys):
    assert _compare("--quick", "--k", "3", "--out", str(tmp_path / "o")) == 2
    assert "--k applies with --data only" in capsys.readouterr().err
