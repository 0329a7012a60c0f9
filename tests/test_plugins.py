"""Plugins by entry points (matsense.plugins): the example package of tests/plugin_example,
registered through a ``*.dist-info`` folder on ``sys.path`` (what ``pip install`` writes), adds
a method, an ensemble, an initialization and a claim that ``ms.run``, ``Problem.generate``, run
files, ``matsense run``, sweeps and ``reproduce --claims`` use — while no file under src/ names
them. Broken plugins are left out with one warning line and never break the built-ins."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import matsense as ms
from matsense import cli, plugins
from matsense.config import CORE_KEYS, RunConfig
from matsense.experiments import CLAIMS
from matsense.flags import method_flags
from matsense.methods import METHODS
from matsense.problems import ENSEMBLE_PLUGINS, ENSEMBLES, Problem

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "plugin_example"
BUILTIN_METHODS = (
    "gd",
    "rebalanced_gd",
    "scaledgd",
    "scaledgd_lambda",
    "precgd",
    "apgd",
    "svp",
    "subgm",
    "scaledsm",
)


def entry_points_txt(groups: dict) -> str:
    return "".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items()) + "\n"
        for group, eps in groups.items()
    )


def install(
    where: Path, groups: dict, dist: str = "matsense-example-plugin", version: str = "0.1.0"
) -> Path:
    """A ``*.dist-info`` folder with ``entry_points.txt`` under ``where`` (what pip writes)."""
    info = where / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points_txt(groups))
    return info


def example_groups() -> dict:
    """The entry points the example's pyproject.toml declares."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    return project["entry-points"]


@pytest.fixture(autouse=True)
def fresh_registries():
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path (and on PYTHONPATH, for spawned workers) that holds dist-infos,
    with the example package importable."""
    where = tmp_path / "site"
    where.mkdir()
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.syspath_prepend(str(where))
    paths = [str(where), str(EXAMPLE)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    return where


@pytest.fixture
def example(site):
    install(site, example_groups())
    return site


def cli_run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ no plugins
def test_builtin_lookups_never_read_the_entry_points(example):
    assert ms.get_method("gd").name == "gd" and ms.init.get_init("balanced").random
    assert CLAIMS["C4"].id == "C4" and Problem.generate("gaussian", 4, r=1, m=5).m == 5
    assert all(r._plugins is None for r in (METHODS, ENSEMBLE_PLUGINS, ms.init.INITS, CLAIMS))
    assert "heavy_ball_gd" in METHODS  # an unknown name loads the group, once
    assert METHODS._plugins is not None and ENSEMBLE_PLUGINS._plugins is None


def test_without_plugins_the_registries_are_the_builtins():
    assert tuple(METHODS) == BUILTIN_METHODS
    assert list(CLAIMS) == [f"C{i}" for i in range(1, 9)] + [f"R{i}" for i in range(1, 6)]
    assert tuple(ENSEMBLE_PLUGINS) == () and ms.problems.ensemble_names() == ENSEMBLES
    with pytest.raises(ValueError, match=r"unknown method 'nope'; known methods: apgd, gd,"):
        ms.get_method("nope")
    with pytest.raises(
        ValueError,
        match=r"unknown ensemble 'nope'; known: gaussian, "
        r"symmetric-gaussian, rank-one, completion$",
    ):
        Problem.generate("nope", 4, r=1, m=5)


def test_import_matsense_reads_no_entry_point(site):
    """A broken plugin installed: importing matsense (and its registries) neither fails nor
    warns; the entry points are read on first use only."""
    install(
        site,
        {
            "matsense.methods": {"broken": "no_such_module:X"},
            "matsense.claims": {"C9": "no_such_module:C9"},
        },
        dist="broken-plugin",
    )
    code = (
        "import matsense, matsense.config, matsense.experiments, matsense.cli\n"
        "from matsense import plugins, init, problems\n"
        "from matsense.methods import METHODS\n"
        "from matsense.experiments import CLAIMS\n"
        "print(all(r._plugins is None for r in (METHODS, init.INITS, CLAIMS,"
        " problems.ENSEMBLE_PLUGINS)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True" and done.stderr == ""


# ------------------------------------------------------------------ a method
def test_plugin_method_runs_through_ms_run(example):
    from matsense_example_plugin.method import HeavyBallGD

    assert METHODS["heavy_ball_gd"] is HeavyBallGD and list(METHODS)[
        : len(BUILTIN_METHODS)
    ] == list(BUILTIN_METHODS)
    p = Problem.gaussian(12, r=2, m=200, singular_values=[1.0, 0.5], seed=3)
    start = ms.init.small_random(p, 2, 0.05, seed=1)
    by_name = ms.run(p, ms.get_method("heavy_ball_gd", momentum=0.5), start, 300, tol=1e-12)
    gd = ms.run(p, ms.GD(0.3), start, 300, tol=1e-12)
    assert by_name.status == "converged" and by_name.iterations < gd.iterations
    direct = ms.run(p, HeavyBallGD(0.3, 0.5), start, 300, tol=1e-12)
    assert np.array_equal(direct.history["error"], by_name.history["error"])
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 1.5"):
        ms.get_method("heavy_ball_gd", momentum=1.5)


def test_plugin_method_ensemble_and_init_from_the_command_line(example, capsys, tmp_path):
    out = tmp_path / "hb.csv"
    code, text, err = cli_run(
        capsys,
        "run",
        "--method",
        "heavy_ball_gd",
        "--momentum",
        "0.4",
        "--ensemble",
        "rademacher",
        "--init",
        "orthogonal",
        "--n1",
        "12",
        "--r",
        "2",
        "--k",
        "2",
        "--m",
        "200",
        "--alpha",
        "0.05",
        "--iters",
        "300",
        "--tol",
        "1e-10",
        "--out",
        str(out),
        "--no-figure",
    )
    assert code == 0, err
    assert text.startswith(
        "heavy_ball_gd on F Gᵀ: rademacher, n1=12, n2=12, r=2, m=200, k=2, init=orthogonal (α=0.05)"
    )
    assert re.search(r"status\s+converged", text) and err == ""
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["momentum"] == 0.4 and record["config"]["ensemble"] == "rademacher"
    code, text, err = cli_run(capsys, "run", "--help")
    assert code == 0 and "--momentum" in text and "momentum β in [0, 1) (heavy_ball_gd" in text


def test_plugin_names_in_a_run_file(example, capsys, tmp_path):
    path = tmp_path / "hb.toml"
    path.write_text(
        '[problem]\nensemble = "rademacher"\nn1 = 10\nr = 2\nm = 150\n'
        'singular_values = [1.0, 0.5]\n[init]\ninit = "orthogonal"\nk = 2\n'
        'alpha = 0.05\n[method]\nmethod = "heavy_ball_gd"\nmomentum = 0.3\n'
        "[run]\niters = 400\ntol = 1e-10\n"
    )
    cfg = RunConfig.from_toml(path)
    assert (cfg.method, cfg.method_params, cfg.ensemble, cfg.init) == (
        "heavy_ball_gd",
        {"momentum": 0.3},
        "rademacher",
        "orthogonal",
    )
    problem = cfg.build_problem()
    assert problem.meta["ensemble"] == "rademacher" and problem.m == 150
    code, text, err = cli_run(capsys, "run", "--config", str(path), "--no-figure")
    assert code == 0 and re.search(r"status\s+converged", text), err
    bad = tmp_path / "bad.toml"
    bad.write_text('method = "heavy_ball_gd"\nmomentum = 0.3\nstep_sise = 0.1\n')
    with pytest.raises(
        ValueError,
        match=r"bad.toml:3: unknown key 'step_sise'.*"
        r"momentum \(method heavy_ball_gd\)",
    ):
        RunConfig.from_toml(bad)


# ------------------------------------------------------------------ an ensemble
def test_plugin_ensemble_through_problem_generate(example):
    from matsense_example_plugin.ensemble import rademacher

    p = Problem.generate("rademacher", 8, 6, r=2, m=50, seed=4)
    q = rademacher(8, 6, r=2, m=50, seed=4)
    assert p.shape == (8, 6) and p.meta["ensemble"] == "rademacher" and "ensemble" not in q.meta
    assert np.array_equal(p.y, q.y) and np.array_equal(p.M_star, q.M_star)
    assert "rademacher" in ENSEMBLE_PLUGINS and ms.problems.ensemble_names()[-1] == "rademacher"
    with pytest.raises(
        ValueError,
        match=r"unknown ensemble 'rademacher2'; known: .*completion, "
        r"rademacher$",
    ):
        Problem.generate("rademacher2", 8, r=2, m=50)


def test_plugin_ensemble_memory_estimate_and_p(example):
    cfg = RunConfig.from_dict({"ensemble": "rademacher", "n1": 100, "r": 2, "m": 10**7})
    assert 8 * 10**7 * 100 * 100 <= cfg.memory_bytes() < 8 * 10**7 * 100 * 101
    with pytest.raises(
        ValueError,
        match=r"a rademacher run of n1=100, n2=100, m=10000000, "
        r"k=4 .* would take 745\.\d GiB, more than the",
    ):
        cfg.check_memory()
    with pytest.raises(
        ValueError, match="p .* applies to the completion ensemble only, not 'rademacher'"
    ):
        RunConfig.from_dict({"ensemble": "rademacher", "p": 0.5})


def test_plugin_ensemble_of_another_signature_or_result_is_an_error(site):
    (site / "odd.py").write_text(
        "import numpy as np\n\ndef arrays(n1, n2=None, **kw):\n    return np.zeros((n1, n2))\n"
    )
    install(
        site,
        {"matsense.ensembles": {"arrays": "odd:arrays", "zeros": "numpy:zeros"}},
        dist="odd-plugin",
    )
    with pytest.raises(
        ValueError,
        match=r"ensemble plugin 'arrays' returned ndarray, not a "
        r"matsense.problems.Problem",
    ):
        Problem.generate("arrays", 3, 3, r=1, m=2)
    with pytest.raises(
        ValueError,
        match=r"ensemble plugin 'zeros' does not take \(3, 3, r=, "
        r"m=\): .*; a builder takes \(n1, n2, \*, r, m, seed",
    ):
        Problem.generate("zeros", 3, 3, r=1, m=2)


# ------------------------------------------------------------------ a sweep
def test_plugin_method_and_ensemble_in_a_sweep_with_worker_processes(example, tmp_path):
    from matsense.sweep import load, run_sweep

    spec = {
        "sweep": {"name": "hb"},
        "base": {
            "ensemble": "rademacher",
            "n1": 10,
            "r": 2,
            "m": 150,
            "k": 2,
            "alpha": 0.05,
            "iters": 200,
            "record_every": 10,
        },
        "grid": {"method": ["gd", "heavy_ball_gd"], "init_seed": [0, 1]},
    }
    summary = run_sweep(spec, tmp_path / "store", executor="local", workers=2, progress="off")
    assert summary.complete, summary
    runs, _ = load(tmp_path / "store")
    assert sorted(set(runs["method"])) == ["gd", "heavy_ball_gd"] and len(runs) == 4
    assert set(runs["status"]) <= {"converged", "max_iters"}


def test_plugin_method_and_ensemble_on_dask_workers(example, tmp_path):
    pytest.importorskip("distributed")
    from matsense.sweep import load, run_sweep

    spec = {
        "sweep": {"name": "hb-dask"},
        "base": {
            "ensemble": "rademacher",
            "n1": 8,
            "r": 2,
            "m": 100,
            "k": 2,
            "alpha": 0.05,
            "iters": 100,
            "record_every": 10,
            "method": "heavy_ball_gd",
        },
        "grid": {"momentum": [0.2, 0.4]},
    }
    summary = run_sweep(spec, tmp_path / "store", executor="dask", workers=2, progress="off")
    assert summary.complete, summary
    runs, _ = load(tmp_path / "store")
    assert sorted(runs["momentum"]) == [0.2, 0.4] and set(runs["method"]) == {"heavy_ball_gd"}


# ------------------------------------------------------------------ a claim
def test_plugin_claim_through_reproduce(example, tmp_path, capsys):
    from matsense.experiments import reproduce

    results = reproduce(tmp_path / "api", quick=True, seeds=1, claims=["HB1"], workers=1)
    (res,) = results
    assert res.id == "HB1" and res.holds, res.reason
    assert res.details["speedup"] > 1 and res.measured.startswith("linear, ")
    summary = json.loads((tmp_path / "api" / "summary.json").read_text())
    assert [c["id"] for c in summary["claims"]] == ["HB1"]
    assert (tmp_path / "api" / "figures" / "hb1_heavy_ball.png").exists()
    code, text, err = cli_run(
        capsys,
        "reproduce",
        "--quick",
        "--seeds",
        "1",
        "--claims",
        "hb1",
        "--workers",
        "1",
        "--out",
        str(tmp_path / "cli"),
        "--no-progress",
    )
    assert code == 0, err
    assert "HB1" in text and "Heavy-ball GD" in text


def test_plugin_claim_declares_its_parameters_and_run(example, tmp_path, capsys):
    """HB1's own parameters: read as settings, quick values in quick mode, ``--set`` by name
    (which reads the entry points); its run is built in spawned workers that find it too."""
    code, text, err = cli_run(
        capsys,
        "reproduce",
        "--quick",
        "--seeds",
        "2",
        "--claims",
        "HB1",
        "--set",
        "hb1_momentum=0.3",
        "--workers",
        "2",
        "--out",
        str(tmp_path),
        "--no-progress",
    )
    assert code == 0, err
    (claim,) = json.loads((tmp_path / "summary.json").read_text())["claims"]
    assert claim["holds"], claim["reason"]
    assert (claim["settings"]["hb1_momentum"], claim["settings"]["hb1_iters"]) == (0.3, 300)
    code, _, err = cli_run(
        capsys,
        "reproduce",
        "--quick",
        "--claims",
        "HB1",
        "--set",
        "hb1_iters=many",
        "--out",
        str(tmp_path / "bad"),
    )
    assert code == 2 and err == "matsense: error: hb1_iters: cannot read 'many' as an integer\n"


# ------------------------------------------------------------------ broken plugins
BROKEN = {
    "matsense.methods": {
        "missing": "no_such_module:Method",  # cannot be imported
        "gd": "matsense_example_plugin.method:HeavyBallGD",  # a built-in's name
        "renamed": "matsense_example_plugin.method:HeavyBallGD",  # name != entry point
        "plain": "matsense_example_plugin.method:MomentumState",  # not a dataclass
        "function": "matsense_example_plugin.ensemble:rademacher",  # not a class
    },
    "matsense.ensembles": {
        "completion": "matsense_example_plugin.ensemble:rademacher",
        "all": "matsense_example_plugin.ensemble:rademacher",
    },
    "matsense.inits": {"wrong": "matsense_example_plugin.init:ORTHOGONAL"},
    "matsense.claims": {
        "hb1": "matsense_example_plugin.claim:HeavyBallClaim",
        "HB2": "matsense_example_plugin.claim:HeavyBallClaim",
    },
}


def test_broken_plugins_are_left_out_with_one_warning_each(site):
    install(site, BROKEN, dist="broken-plugin", version="2.0")
    with pytest.warns(plugins.PluginWarning) as caught:
        names = list(METHODS)
    assert names == list(BUILTIN_METHODS)  # the built-in gd is still the built-in
    assert METHODS["gd"] is ms.GD
    messages = [str(w.message) for w in caught]
    assert len(messages) == 5 and all("\n" not in m for m in messages)
    assert all("of distribution broken-plugin 2.0" in m for m in messages)
    with pytest.raises(ValueError) as exc:
        ms.get_method("missing")
    assert str(exc.value) in messages
    assert (
        "entry point 'missing = no_such_module:Method' in group matsense.methods" in str(exc.value)
    ) and "ModuleNotFoundError" in str(exc.value)
    expected = {
        "gd": "takes the name of a built-in method",
        "renamed": "HeavyBallGD.name is 'heavy_ball_gd', not the entry point's name 'renamed'",
        "plain": "MomentumState is not a dataclass",
        "function": "a method plugin must name a class, got function",
    }
    for name, text in expected.items():
        assert any(f"method plugin {name!r}" in m and text in m for m in messages), name
    with pytest.raises(ValueError, match="'renamed'.*not the entry point's name"):
        RunConfig.from_dict({"method": "renamed"})


def test_broken_ensembles_inits_and_claims(site):
    install(site, BROKEN, dist="broken-plugin", version="2.0")
    with pytest.warns(plugins.PluginWarning, match="takes the name of a built-in ensemble"):
        assert tuple(ENSEMBLE_PLUGINS) == ()
    assert Problem.generate("completion", 6, r=1, m=10).meta["ensemble"] == "completion"
    with pytest.warns(
        plugins.PluginWarning,
        match="the InitSpec's name is 'orthogonal', not the entry point's name 'wrong'",
    ):
        with pytest.raises(ValueError, match="init plugin 'wrong'"):
            ms.init.get_init("wrong")
    with pytest.warns(plugins.PluginWarning) as caught:
        assert list(CLAIMS) == [f"C{i}" for i in range(1, 9)] + [f"R{i}" for i in range(1, 6)]
    messages = sorted(str(w.message) for w in caught)
    assert (
        "claim plugin 'HB2'" in messages[0]
        and "'HB1': it must be the entry point's name 'HB2'" in messages[0]
    )
    assert "claim plugin 'hb1'" in messages[1] and "in upper case" in messages[1]


def test_two_distributions_with_one_name_are_both_left_out(site):
    value = "matsense_example_plugin.method:HeavyBallGD"
    install(site, {"matsense.methods": {"heavy_ball_gd": value}}, dist="one")
    install(site, {"matsense.methods": {"heavy_ball_gd": value}}, dist="two")
    with pytest.warns(plugins.PluginWarning, match=r"'heavy_ball_gd' is defined twice ") as w:
        assert "heavy_ball_gd" not in METHODS
    (message,) = [str(x.message) for x in w]
    assert "of distribution one 0.1.0" in message and "of distribution two 0.1.0" in message


def test_method_parameters_may_not_take_run_keys(site, tmp_path):
    module = tmp_path / "site" / "seedy.py"
    module.write_text(
        "from dataclasses import dataclass\nfrom matsense.methods import GD\n\n"
        "@dataclass(frozen=True)\nclass Seedy(GD):\n    name = 'seedy'\n"
        "    seed: int = 0\n    out: str = ''\n"
    )
    install(site, {"matsense.methods": {"seedy": "seedy:Seedy"}}, dist="seedy")
    with pytest.warns(
        plugins.PluginWarning,
        match="hyper-parameters named like run keys or options of matsense run: seed, out",
    ):
        assert "seedy" not in METHODS


def test_the_reserved_names_cover_every_option_of_matsense_run():
    """A method hyper-parameter can never collide with a flag of `matsense run`: every option's
    destination is a run-file key, a name of RUN_OPTIONS or a method's hyper-parameter."""
    parser = cli.build_parser()
    run = parser._subparsers._group_actions[0].choices["run"]
    dests = {a.dest for a in run._actions}
    assert dests - set(CORE_KEYS) - set(plugins.RUN_OPTIONS) - set(method_flags()) == set()


def test_broken_plugin_does_not_break_the_command_line(site, capsys):
    install(site, BROKEN, dist="broken-plugin", version="2.0")
    code, text, err = cli_run(
        capsys, "run", "--n1", "8", "--m", "100", "--iters", "20", "--no-figure"
    )
    assert code == 0 and re.search(r"status\s+\w+", text)
    lines = err.splitlines()
    assert len(lines) == 5 and all(
        line.startswith("matsense: warning: method plugin ") for line in lines
    ), err
    code, text, err = cli_run(capsys, "run", "--method", "missing", "--n1", "8")
    assert code == 2 and text == ""
    last = err.splitlines()[-1]
    assert last.startswith(
        "matsense: error: method plugin 'missing' (entry point 'missing = "
        "no_such_module:Method' in group matsense.methods of distribution "
        "broken-plugin 2.0) is left out: cannot be loaded (ModuleNotFound"
    )


def test_matsense_plugins_lists_what_is_installed(site, capsys):
    code, text, err = cli_run(capsys, "plugins")
    assert code == 0 and text.startswith("no matsense plugins installed") and err == ""
    install(site, example_groups())
    install(
        site,
        {"matsense.inits": {"wrong": "matsense_example_plugin.init:ORTHOGONAL"}},
        dist="broken-plugin",
    )
    plugins.reset()  # installed into this running process: read the entry points again
    code, text, err = cli_run(capsys, "plugins")
    assert code == 0 and err == ""
    rows = [line.split() for line in text.splitlines()]
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("matsense.methods", "heavy_ball_gd", "matsense-example-plugin", "ok"),
        ("matsense.ensembles", "rademacher", "matsense-example-plugin", "ok"),
        ("matsense.inits", "orthogonal", "matsense-example-plugin", "ok"),
        ("matsense.inits", "wrong", "broken-plugin", "left"),
        ("matsense.claims", "HB1", "matsense-example-plugin", "ok"),
    ]


# ------------------------------------------------------------------ the docs
def test_docs_show_the_example_plugin_as_it_is():
    """docs/plugins.md quotes every file of the example package verbatim."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```(?:python|toml)\n# (\S+)\n(.*?)```", text, re.S)
    quoted = {name: body for name, body in blocks}
    files = ["pyproject.toml"] + [
        f"matsense_example_plugin/{f}" for f in ("method.py", "ensemble.py", "init.py", "claim.py")
    ]
    assert sorted(quoted) == sorted(files)
    for name in files:
        source = (EXAMPLE / name).read_text()
        assert quoted[name] == source, name


def test_docs_run_file_and_listing_are_what_matsense_does(example, capsys):
    text = (ROOT / "docs" / "plugins.md").read_text()
    (run_file,) = [
        b for b in re.findall(r"```toml\n(.*?)```", text, re.S) if not b.startswith("# ")
    ]
    cfg = RunConfig.from_dict(tomllib.loads(run_file), source="docs/plugins.md")
    assert (cfg.method, cfg.ensemble, cfg.init) == ("heavy_ball_gd", "rademacher", "orthogonal")
    cfg.build_init(cfg.build_problem())
    console = re.search(r"\$ matsense plugins\n(.*?)\$ ", text, re.S).group(1)
    code, listing, _ = cli_run(capsys, "plugins")
    assert code == 0 and listing == console
    header = re.search(r"\n(heavy_ball_gd on F Gᵀ: [^\n]*)\n", text).group(1)
    command = re.search(r"\$ matsense (run --method heavy_ball_gd [^$]*?)\nheavy", text, re.S)
    code, out, err = cli_run(capsys, *command.group(1).replace("\\\n", " ").split(), "--no-figure")
    assert code == 0 and out.splitlines()[0] == header, err


def test_a_reset_takes_a_plugin_claims_declarations_out(example):
    """After :func:`plugins.reset` (a test's teardown, a plugin uninstalled) the paper suite
    no longer lists the plugin claim's parameters and runs."""
    from matsense.experiments import declare
    from matsense.experiments.settings import settable_keys

    assert CLAIMS["HB1"].id == "HB1"  # loads the example's claims, which declare theirs
    assert "hb1_iters" in declare.PARAMS and "hb1_iters" in settable_keys()
    plugins.reset()
    assert "hb1_iters" not in declare.PARAMS and "hb1_iters" not in settable_keys()
    assert {"c4_window", "c2_min_iters"} <= set(declare.PARAMS)  # the built-ins' stay
