"""The ``matsense`` command line: help, ``run``, ``reproduce``, error handling."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pandas as pd
import pytest

import matsense
from matsense import cli
from matsense.driver import cli as run_cli

TINY = ["--n1", "8", "--r", "1", "--m", "100", "--k", "2", "--alpha", "0.1", "--no-progress"]


def _commands() -> list[str]:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(sub.choices)


def _python_m(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "matsense", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


# ----------------------------------------------------------------------- help
def test_every_command_has_help(capsys):
    commands = _commands()
    assert {"run", "reproduce"} <= set(commands)
    for command in commands:
        assert cli.main([command, "--help"]) == 0, command
        out = capsys.readouterr().out
        assert out.startswith(f"usage: matsense {command}"), command


def test_top_level_help_and_version_as_a_module():
    res = _python_m("--help")
    assert res.returncode == 0 and "run" in res.stdout and "reproduce" in res.stdout
    res = _python_m("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"matsense {matsense.__version__}"


def test_no_command_prints_usage(capsys):
    assert cli.main([]) == 2
    assert "usage: matsense" in capsys.readouterr().err


# ------------------------------------------------------------------------ run
def test_run_from_flags_writes_csv_json_and_figure(tmp_path, capsys):
    out = tmp_path / "sub" / "traj.csv"
    assert cli.main(["run", *TINY, "--iters", "30", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no progress bar off a terminal
    for word in ("status", "iterations", "rel. error", "linear rate"):
        assert word in captured.out
    df = pd.read_csv(out)
    assert df["iteration"].tolist() == list(range(31))
    assert (tmp_path / "sub" / "traj.png").stat().st_size > 0
    record = json.loads((tmp_path / "sub" / "traj.json").read_text())
    assert record["config"]["n1"] == 8 and record["config"]["iters"] == 30
    assert record["summary"]["status"] == "max_iters"
    assert {"value", "t_start", "t_end"} <= set(record["linear_rate"])


def test_run_from_toml_with_flag_overrides(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(
        "[problem]\nn1 = 8\nr = 1\nm = 100\n\n[init]\nk = 1\nalpha = 0.1\n\n"
        '[method]\nmethod = "gd"\nstep_size = 0.3\n\n[run]\niters = 400\ntol = 1e-9\n'
    )
    out = tmp_path / "traj.parquet"
    figure = tmp_path / "figs" / "curve.svg"
    args = [
        "run",
        "--config",
        str(config),
        "--iters",
        "300",
        "--out",
        str(out),
        "--figure",
        str(figure),
        "--no-progress",
    ]
    assert cli.main(args) == 0
    stdout = capsys.readouterr().out
    assert "converged" in stdout and "per iteration" in stdout  # a linear rate was fitted
    df = pd.read_parquet(out)
    assert df["rel_error"].iloc[-1] <= 1e-9
    assert figure.exists() and not out.with_suffix(".png").exists()
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["iters"] == 300 and record["config"]["tol"] == 1e-9


def test_run_method_parameters_and_no_figure(tmp_path, capsys):
    out = tmp_path / "t.csv"
    args = [
        "run",
        *TINY,
        "--method",
        "rebalanced_gd",
        "--step-size",
        "0.25",
        "--param",
        "switch_at=5",
        "--iters",
        "20",
        "--out",
        str(out),
        "--no-figure",
    ]
    assert cli.main(args) == 0
    stdout = capsys.readouterr().out
    assert "reconstruction" in stdout and "switch at t = 5" in stdout
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["switch_at"] == 5 and record["config"]["step_size"] == 0.25
    assert record["summary"]["switch_iteration"] == 5
    assert not out.with_suffix(".png").exists()


def test_run_without_output_only_prints(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", *TINY, "--iters", "5"]) == 0
    assert "status       max_iters" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_run_on_the_torch_backend(capsys):
    pytest.importorskip("torch")
    args = ["run", *TINY, "--iters", "3", "--backend", "torch", "--dtype", "float32"]
    assert cli.main(args) == 0
    assert "status       max_iters" in capsys.readouterr().out


def test_run_deterministic_init_and_peer_method(capsys):
    args = [
        "run",
        *TINY,
        "--k",
        "1",
        "--init",
        "spectral",
        "--method",
        "scaledgd",
        "--iters",
        "100",
        "--tol",
        "1e-8",
    ]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "init=spectral\n" in out and "converged" in out


def test_run_refuses_x_xt_on_an_asymmetric_problem(capsys):
    assert cli.main(["run", *TINY, "--init", "symmetric_random", "--iters", "2"]) == 2
    err = capsys.readouterr().err
    assert "can only fit a symmetric PSD M*" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------- error handling
BAD_RUNS = [
    (["--k", "0"], "k must be in [1, 8], got 0"),
    (["--r", "9"], "r must be in [1, 8], got 9"),
    (["--step-size", "-1"], "step_size must be a finite number > 0"),
    (["--method", "adam"], "unknown method 'adam'"),
    (["--tau", "0.1"], "unknown key 'tau'"),
    (["--method", "rebalanced_gd", "--tau", "0.1", "--param", "tau=0.2"], "tau is given twice"),
    (["--param", "step_size=fast"], "step_size must be a real number, got 'fast'"),
    (["--param", "nokey"], "--param: expected KEY=VALUE"),
    (["--k", "two"], "argument --k: invalid int value: 'two'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--out", "traj.txt"], "--out must end in .csv or .parquet"),
    (["--figure", "fig.jpeg"], "--figure must end in .png or .pdf or .svg"),
    (["--config", "missing.toml"], "cannot read missing.toml"),
    (["--backend", "jax"], "jax"),
    (["--dtype", "float16"], "float16"),
]


@pytest.mark.parametrize("extra, message", BAD_RUNS, ids=[" ".join(e) for e, _ in BAD_RUNS])
def test_bad_run_input_is_one_line_and_exit_2(extra, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", *TINY, "--iters", "2", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("matsense"), err
    assert "error: " in err and message in err


BAD_TOML = [
    ("[problem]\nn1 = 8\nrr = 2\n", "run.toml:3: unknown key 'rr'"),
    ('[init]\nk = "two"\n', "run.toml:2: k must be"),
    ("[run]\niters = 1.5\n", "run.toml:2: iters must be"),
    ("[problem]\nn1 = = 8\n", "invalid TOML"),
    ("[problem]\nn1 = 8\nr = 9\n", "r must be in [1, 8], got 9"),
]


@pytest.mark.parametrize(
    "text, message",
    BAD_TOML,
    ids=["unknown-key", "wrong-type", "float-for-int", "syntax", "bad-value"],
)
def test_bad_toml_as_a_subprocess(tmp_path, text, message):
    (tmp_path / "run.toml").write_text(text)
    res = _python_m("run", "--config", "run.toml", "--no-progress", cwd=tmp_path)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("matsense: error: ")
    assert message in res.stderr


def test_bad_flag_as_a_subprocess(tmp_path):
    res = _python_m("run", "--k", "0", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr == "matsense: error: k must be in [1, 30], got 0\n"
    res = _python_m("run", "--k", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "argument --k: expected one argument" in res.stderr


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_cli, "cmd_run", interrupted)
    assert cli.main(["run"]) == 130
    assert capsys.readouterr().err == "matsense: interrupted\n"


def test_programming_errors_are_not_swallowed(monkeypatch):
    def broken(args):
        raise RuntimeError("bug")

    monkeypatch.setattr(run_cli, "cmd_run", broken)
    with pytest.raises(RuntimeError, match="bug"):
        cli.main(["run"])


# ------------------------------------------------------------------ registrars
def test_missing_command_modules_are_skipped():
    assert cli._load_registrar("matsense.not_written_yet:register") is None
    assert cli._load_registrar("matsense.not_written_yet.cli:register") is None


def test_broken_command_modules_surface(tmp_path, monkeypatch):
    (tmp_path / "broken_cmd.py").write_text("import a_dependency_that_is_missing_xyz\n")
    (tmp_path / "good_cmd.py").write_text(
        "def register(subparsers):\n"
        "    p = subparsers.add_parser('hello', help='say hello')\n"
        "    p.set_defaults(func=lambda args: print('hello') or 0)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="a_dependency_that_is_missing_xyz"):
        cli._load_registrar("broken_cmd:register")
    monkeypatch.setattr(cli, "REGISTRARS", [*cli.REGISTRARS, "good_cmd:register"])
    assert "hello" in _commands()
    assert cli.main(["hello"]) == 0


# ------------------------------------------------------------------- reproduce
def test_reproduce_without_experiments_module(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matsense.experiments", None)
    assert cli.main(["reproduce", "--out", str(tmp_path)]) == 1
    assert "matsense.experiments" in capsys.readouterr().err


def test_reproduce_rejects_zero_seeds(capsys, tmp_path):
    assert cli.main(["reproduce", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "--seeds must be >= 1, got 0" in capsys.readouterr().err


def test_reproduce_rejects_zero_workers(capsys, tmp_path):
    assert cli.main(["reproduce", "--workers", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--workers must be >= 1, got 0" in err and len(err.strip().splitlines()) == 1


def test_reproduce_quick_through_the_cli(tmp_path):
    """The whole path (runs, table, summary.json, figures, report) on two cheap claims."""
    out = tmp_path / "results"
    res = _python_m(
        "reproduce",
        "--quick",
        "--seeds",
        "1",
        "--claims",
        "c1,C3",
        "--out",
        str(out),
        "--no-progress",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [c["id"] for c in summary["claims"]] == ["C1", "C3"]
    assert all(c["seeds"] == [0] for c in summary["claims"])
    assert (out / "report.html").exists()
    assert f"wrote {out / 'summary.json'}" in res.stdout
    assert "C1" in res.stdout and "C3" in res.stdout


def test_reproduce_unknown_claim_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["reproduce", "--quick", "--claims", "C9", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("matsense: error: ") and "C9" in err and err.count("\n") == 1


def test_run_verbose_names_the_kernel(capsys, monkeypatch):
    monkeypatch.setenv("MATSENSE_KERNEL", "numpy")
    assert cli.main(["run", *TINY, "--iters", "3", "--no-figure", "-v"]) == 0
    out = capsys.readouterr().out
    assert "kernel       numpy (DenseOperator, numpy on cpu, float64" in out
    assert "ms per iteration" in out


def test_run_verbose_prints_the_switch_report(capsys):
    args = [
        "run",
        *TINY,
        "--method",
        "rebalanced_gd",
        "--step-size",
        "0.25",
        "--param",
        "switch_at=5",
        "--iters",
        "20",
        "--no-figure",
        "-v",
    ]
    assert cli.main(args) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("switch ")]
    assert len(line) == 1
    assert "t = 5: r̂ = " in line[0] and "‖ΔFGᵀ‖/‖FGᵀ‖ = " in line[0]
    assert "η·λ_max of the Gauss–Newton blocks" in line[0] and "(stable below 2)" in line[0]


def test_run_warns_in_one_line_when_the_switch_leaves_the_stable_region(capsys):
    """The previous default lift on completion (coherent redundant directions, issue #19)."""
    args = [
        "run",
        "--ensemble",
        "completion",
        "--n1",
        "1000",
        "--m",
        "100000",
        "--r",
        "5",
        "--k",
        "10",
        "--alpha",
        "1e-3",
        "--normalization",
        "sqrt_n",
        "--method",
        "rebalanced_gd",
        "--step-size",
        "0.5",
        "--param",
        "transform=balanced",
        "--iters",
        "50",
        "--no-figure",
        "--no-progress",
    ]
    cli.main(args)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("matsense: warning: rebalanced_gd: the 'balanced' switch puts")
    assert "above the stable limit 2" in err[0]


def test_run_summary_without_a_switch_is_strict_json(tmp_path):
    out = tmp_path / "t.csv"
    args = [
        "run",
        *TINY,
        "--method",
        "rebalanced_gd",
        "--param",
        "switch_at=500",
        "--iters",
        "10",
        "--out",
        str(out),
        "--no-figure",
    ]
    assert cli.main(args) == 0
    record = json.loads(
        out.with_suffix(".json").read_text(),
        parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"),
    )
    assert record["summary"]["switch_iteration"] == -1
