"""Your own data from files (matsense.data, `matsense run --data`): each format read back gives
the problem the Python constructors build from the same arrays — the same trajectory, bitwise —
and every bad file ends in one line naming the file and the field."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import matsense as ms
from matsense.cli import main
from matsense.data import DataError, load_problem

N1, N2, R = 14, 11, 2


@pytest.fixture(scope="module")
def truth():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((N1, R)) @ rng.standard_normal((R, N2))
    return M / np.linalg.norm(M, 2)


@pytest.fixture(scope="module")
def entries(truth):
    rng = np.random.default_rng(1)
    rows, cols = np.nonzero(rng.random(truth.shape) < 0.6)
    order = rng.permutation(rows.size)  # files need not be sorted
    rows, cols = rows[order], cols[order]
    assert rows.max() == N1 - 1 and cols.max() == N2 - 1  # so the tables' shape is (N1, N2)
    return rows, cols, truth[rows, cols]


def _run(problem, k=2):
    init = ms.init.small_random(problem, k=k, alpha=0.05, seed=3)
    return ms.run(problem, ms.GD(step_size=0.3), init, iters=150)


def _same_run(a, b):
    ta, tb = _run(a), _run(b)
    assert ta.iterations == tb.iterations and ta.status == tb.status
    assert ta.history.keys() == tb.history.keys()
    for key in ta.history:
        if key != "time":
            np.testing.assert_array_equal(ta.history[key], tb.history[key], err_msg=key)
    for fa, fb in zip(ta.factors, tb.factors):
        np.testing.assert_array_equal(fa, fb)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_entry_tables_round_trip_bitwise(tmp_path, entries, suffix):
    rows, cols, values = entries
    path = tmp_path / f"entries{suffix}"
    table = pd.DataFrame({"row": rows, "col": cols, "value": values})
    table.to_csv(path, index=False) if suffix == ".csv" else table.to_parquet(path)
    loaded = load_problem(path)
    assert loaded.shape == (N1, N2) and loaded.m == rows.size
    _same_run(loaded, ms.Problem.from_entries(rows, cols, values, (N1, N2)))


def test_entry_npz_with_truth_round_trips_bitwise(tmp_path, entries, truth):
    rows, cols, values = entries
    path = tmp_path / "entries.npz"
    np.savez(path, rows=rows, cols=cols, values=values, shape=np.array([N1, N2]), M_star=truth)
    loaded = load_problem(path)
    assert loaded.has_truth and loaded.rank == R
    _same_run(loaded, ms.Problem.from_entries(rows, cols, values, (N1, N2), M_star=truth))


def test_dense_npz_round_trips_bitwise(tmp_path, truth):
    rng = np.random.default_rng(2)
    m = 300
    A = rng.standard_normal((m, N1, N2))
    y = np.einsum("kij,ij->k", A, truth) / np.sqrt(m)
    np.savez(tmp_path / "dense.npz", A=A, y=y, M_star=truth)
    _same_run(load_problem(tmp_path / "dense.npz"), ms.Problem.from_arrays(A, y, truth))
    np.savez(tmp_path / "dense-no-truth.npz", A=A, y=y)
    loaded = load_problem(tmp_path / "dense-no-truth.npz")
    assert not loaded.has_truth
    _same_run(loaded, ms.Problem.from_arrays(A, y))


def test_rank_one_npz_round_trips_bitwise(tmp_path, truth):
    rng = np.random.default_rng(4)
    m = 400
    a, b = rng.standard_normal((m, N1)), rng.standard_normal((m, N2))
    y = np.einsum("ki,ij,kj->k", a, truth, b) / np.sqrt(m)
    np.savez(tmp_path / "r1.npz", a=a, b=b, y=y, M_star=truth)
    _same_run(load_problem(tmp_path / "r1.npz"), ms.Problem.from_rank_one(a, b, y, truth))


def test_cli_run_data_is_the_python_run(tmp_path, entries, truth, capsys):
    rows, cols, values = entries
    path = tmp_path / "entries.npz"
    np.savez(path, rows=rows, cols=cols, values=values, shape=np.array([N1, N2]), M_star=truth)
    out = tmp_path / "run.parquet"
    assert (
        main(
            [
                "run",
                "--data",
                str(path),
                "--k",
                "2",
                "--alpha",
                "0.05",
                "--init-seed",
                "3",
                "--iters",
                "150",
                "--out",
                str(out),
                "--no-figure",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"data {path} (entries), n1={N1}, n2={N2}, r={R}, m={rows.size}" in printed
    expected = _run(ms.Problem.from_entries(rows, cols, values, (N1, N2), M_star=truth))
    got = pd.read_parquet(out)
    np.testing.assert_array_equal(got["error"].to_numpy(), expected.history["error"])
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["data"] == str(path) and "n1" not in record["config"]


def _cli_error(capsys, *argv) -> str:
    assert main(["run", *argv, "--iters", "5", "--no-figure", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("matsense: error: ")
    return err


def _table(tmp_path, name, **columns):
    path = tmp_path / name
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def _bad_files(tmp_path, entries):
    """(file, words the one-line error must hold) for each kind of bad file."""
    rows, cols, values = entries
    good = {"row": rows, "col": cols, "value": values}
    nan_values = values.copy()
    nan_values[5] = np.nan
    cases = [
        (_table(tmp_path, "no-value.csv", row=rows, col=cols), ["value", "no column"]),
        (
            _table(tmp_path, "nan.csv", row=rows, col=cols, value=nan_values),
            ["value", "non-finite"],
        ),
        (
            _table(tmp_path, "text.csv", row=rows, col=cols, value=["x"] * rows.size),
            ["value", "real numbers"],
        ),
        (_table(tmp_path, "float-rows.csv", **{**good, "row": rows + 0.5}), ["row", "integers"]),
        (_table(tmp_path, "negative.csv", **{**good, "col": cols - 1}), ["col", "out of range"]),
    ]
    p = tmp_path / "big-row.npz"
    np.savez(p, rows=rows, cols=cols, values=values, shape=np.array([N1 - 1, N2]))
    cases.append((p, ["rows", "out of range"]))
    p = tmp_path / "no-b.npz"
    np.savez(p, a=np.ones((3, N1)), y=np.ones(3))
    cases.append((p, ["'b'"]))
    p = tmp_path / "mismatch.npz"
    np.savez(p, A=np.ones((4, N1, N2)), y=np.ones(5))
    cases.append((p, ["y"]))
    p = tmp_path / "unknown.npz"
    np.savez(p, X=np.ones(3))
    cases.append((p, ["cannot tell"]))
    full = tmp_path / "full.npz"
    np.savez(full, rows=rows, cols=cols, values=values, shape=np.array([N1, N2]))
    p = tmp_path / "truncated.npz"
    p.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    cases.append((p, ["truncated"]))
    pq = tmp_path / "full.parquet"
    pd.DataFrame(good).to_parquet(pq)
    p = tmp_path / "truncated.parquet"
    p.write_bytes(pq.read_bytes()[: pq.stat().st_size // 2])
    cases.append((p, ["truncated"]))
    csv = _table(tmp_path, "full.csv", **good)
    p = tmp_path / "truncated.csv"  # cut inside the last line: its value is missing
    p.write_text(csv.read_text().rsplit(",", 1)[0] + ",")
    cases.append((p, ["value", "non-finite"]))
    cases.append((tmp_path / "missing.csv", ["no such file"]))
    p = tmp_path / "data.txt"
    p.write_text("1 2 3\n")
    cases.append((p, ["unknown data format"]))
    return cases


def test_every_bad_file_is_one_line_naming_file_and_field(tmp_path, entries, capsys):
    for path, words in _bad_files(tmp_path, entries):
        with pytest.raises(DataError) as info:
            load_problem(path)
        message = str(info.value)
        assert message.startswith(str(path)) and "\n" not in message, message
        for word in words:
            assert word in message, (path.name, message)
        assert str(path) in _cli_error(capsys, "--data", str(path))


def test_generated_problem_flags_do_not_mix_with_data(tmp_path, entries, capsys):
    rows, cols, values = entries
    path = _table(tmp_path, "e.csv", row=rows, col=cols, value=values)
    err = _cli_error(capsys, "--data", str(path), "--n1", "20", "--ensemble", "completion")
    assert "--ensemble, --n1" in err


def test_the_example_data_sets_run(tmp_path, capsys):
    """examples/make_data.py writes one file of each format; each runs from the command line
    with the settings its docstring gives, to the tolerance."""
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "make_data.py"
    namespace = runpy.run_path(str(script), run_name="make_data")
    assert namespace["main"](["--out", str(tmp_path)]) == 0
    runs = {
        "ratings.parquet": ["--k", "4", "--step-size", "5e-4", "--iters", "5000"],
        "dense.npz": ["--k", "2", "--iters", "2000"],
        "rank_one.npz": ["--k", "2", "--iters", "2000"],
    }
    capsys.readouterr()
    for name, flags in runs.items():
        assert (
            main(
                [
                    "run",
                    "--data",
                    str(tmp_path / name),
                    *flags,
                    "--tol",
                    "1e-8",
                    "--no-figure",
                    "--no-progress",
                ]
            )
            == 0
        )
        assert "status       converged" in capsys.readouterr().out, name


# ----------------------------------------------------- the run-file and sweep key `data`
def _entries_npz(tmp_path, entries, truth):
    rows, cols, values = entries
    path = tmp_path / "entries.npz"
    np.savez(path, rows=rows, cols=cols, values=values, shape=np.array([N1, N2]), M_star=truth)
    return path


def test_run_file_key_data_is_the_python_run(tmp_path, entries, truth, capsys):
    from matsense.config import RunConfig

    path = _entries_npz(tmp_path, entries, truth)
    run_file = tmp_path / "run.toml"
    run_file.write_text(
        f'[problem]\ndata = "{path}"\n[init]\nk = 2\nalpha = 0.05\n'
        "init_seed = 3\n[run]\niters = 150\n"
    )
    cfg = RunConfig.from_toml(run_file)
    assert cfg.data == str(path) and RunConfig.from_dict(cfg.to_dict()) == cfg
    assert "n1" not in cfg.to_dict() and "data" not in RunConfig().to_dict()
    out = tmp_path / "run.parquet"
    assert (
        main(["run", "--config", str(run_file), "--out", str(out), "--no-figure", "--no-progress"])
        == 0
    )
    expected = _run(load_problem(path))
    np.testing.assert_array_equal(
        pd.read_parquet(out)["error"].to_numpy(), expected.history["error"]
    )
    run_file.write_text(f'data = "{path}"\nn1 = 20\nk = 2\n')
    err = _cli_error(capsys, "--config", str(run_file))
    assert f"{run_file}:2: data replaces the generated problem: n1" in err
    run_file.write_text('data = "entries.txt"\n')
    assert "data must be a .csv, .parquet, .npz file" in _cli_error(
        capsys, "--config", str(run_file)
    )


def test_sweep_key_data_runs_each_point_as_alone(tmp_path, entries, truth):
    from matsense.operators import single_threaded
    from matsense.sweep import load, run_sweep

    path = _entries_npz(tmp_path, entries, truth)
    spec = {
        "base": {"data": str(path), "k": 2, "iters": 150, "init_seed": 3},
        "grid": {"alpha": [0.05, 0.1]},
    }
    store = tmp_path / "store"
    summary = run_sweep(spec, store, workers=0)
    assert summary.done == 2 and summary.failed == 0
    runs, history = load(store)
    problem = load_problem(path)
    for alpha in (0.05, 0.1):
        with single_threaded():
            expected = ms.run(
                problem, ms.GD(), ms.init.small_random(problem, k=2, alpha=alpha, seed=3), iters=150
            )
        run_id = runs.loc[runs["alpha"] == alpha, "run_id"].item()
        got = history[history["run_id"] == run_id].sort_values("iteration")
        np.testing.assert_array_equal(got["error"].to_numpy(), expected.history["error"])
    assert run_sweep(spec, store, workers=0).skipped == 2  # resumes
