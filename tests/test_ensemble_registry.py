"""An ensemble owns itself (issue #20 part 1): one record per ensemble in its operator's module,
read by Problem.generate, RunConfig (checks and memory estimate), the CLI, compare and the claims'
settings, which never name an ensemble; one dense-limit policy; plugin ensembles are records."""

from __future__ import annotations

import ast
import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import matsense as ms
from matsense import diagnostics, ensembles, limits, plugins
from matsense.config import RunConfig
from matsense.ensemble import ClaimDefaults, Ensemble
from matsense.experiments.settings import COMPLETION_P, COMPLETION_SIZE, LARGE, ClaimSettings
from matsense.problems import ENSEMBLE_PLUGINS, ENSEMBLES, Problem

SRC = Path(ms.__file__).resolve().parent


@pytest.fixture(autouse=True)
def fresh_registries():
    plugins.reset()
    yield
    plugins.reset()


# ------------------------------------------------------------------ the registry
def test_registry_holds_one_record_per_builtin_ensemble():
    assert (
        ensembles.NAMES == ENSEMBLES == ("gaussian", "symmetric-gaussian", "rank-one", "completion")
    )
    assert ensembles.DEFAULT == "gaussian" == RunConfig().ensemble == ClaimSettings().ensemble
    for name, record in ensembles.BUILTIN.items():
        assert isinstance(record, Ensemble) and record.name == name and record.help
        assert ensembles.get(name) is record
        # the record lives in the module of its operator
        assert record.build.__module__.startswith("matsense.operators.")
    assert ensembles.get("symmetric") is ensembles.get("symmetric-gaussian")
    assert ensembles.ALIASES == {"symmetric": "symmetric-gaussian"}
    assert [p.name for p in ensembles.get("completion").params] == ["p"]
    assert all(not ensembles.get(n).params for n in ENSEMBLES if n != "completion")
    assert ensembles.get("symmetric-gaussian").square and not ensembles.get("gaussian").square


def test_claim_defaults_come_from_the_records():
    completion = ensembles.get("completion").claims
    assert completion.params == {"p": COMPLETION_P} and completion.size == COMPLETION_SIZE == 2
    assert ensembles.get("rank-one").claims.generate == {"symmetric_measurements": False}
    assert ensembles.with_large() == ("completion", "rank-one") == tuple(LARGE)
    assert LARGE["completion"] == {"n1": 10_000, "p": 0.01, "m": 1_000_000}
    assert ensembles.get("gaussian").claims == ClaimDefaults()


def test_unknown_names_and_keys_are_one_line_errors():
    with pytest.raises(
        ValueError,
        match=r"^unknown ensemble 'poisson'; known: gaussian, "
        r"symmetric-gaussian, rank-one, completion$",
    ):
        ensembles.get("poisson")
    with pytest.raises(ValueError, match="unknown ensemble 3"):
        ensembles.get(3)
    with pytest.raises(
        ValueError,
        match=r"^p \(observation probability\) applies to the "
        r"completion ensemble only, not 'rank-one'$",
    ):
        RunConfig.from_dict({"ensemble": "rank-one", "p": 0.5})
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\], got 0.0"):
        ClaimSettings(ensemble="completion", p=0.0)
    assert RunConfig.from_dict({"ensemble": "symmetric"}).ensemble == "symmetric-gaussian"


def test_generated_meta_names_the_ensemble_once():
    for name in ENSEMBLES:
        meta = Problem.generate(name, 6, r=1, m=12, seed=0).meta
        assert meta["ensemble"] == name and "kind" not in meta
    data = Problem.from_arrays(np.ones((3, 2, 2)), np.ones(3)).meta
    assert data["source"] == "arrays" and "kind" not in data and "ensemble" not in data
    assert (
        Problem.gaussian(4, r=1, m=5, ensemble="symmetric").meta["ensemble"] == "symmetric-gaussian"
    )


def test_callers_read_the_registry_and_never_name_an_ensemble():
    """No string constant outside docstrings names a built-in ensemble in the modules that
    used to branch on them (the registry's readers), nor in Problem.generate."""
    names = set(ENSEMBLES)  # (the alias 'symmetric' is also the name of a run key)
    files = [
        "config.py",
        "cli.py",
        "methods/svp.py",
        "diagnostics.py",
        "experiments/settings.py",
        "experiments/ensembles.py",
        *(f"compare/{p.name}" for p in (SRC / "compare").glob("*.py")),
    ]
    for rel in files:
        tree = ast.parse((SRC / rel).read_text())
        docs = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        named = [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and n.value in names and id(n) not in docs
        ]
        assert named == [], (rel, named)
    generate = next(
        n
        for n in ast.walk(ast.parse((SRC / "problems.py").read_text()))
        if isinstance(n, ast.FunctionDef) and n.name == "generate"
    )
    assert not [n for n in ast.walk(generate) if isinstance(n, ast.Constant) and n.value in names]


# ------------------------------------------------------------------ the memory estimate
def test_completion_and_rank_one_sweeps_at_scale_are_not_refused(monkeypatch):
    """The bug of issue #20: a dense estimate refused completion n1 = 20 000, m = 4·10⁵ as
    '1164.2 TiB'; each record's own estimate admits it (and rank-one n1 = 1000, m = 2·10⁴)."""
    monkeypatch.setenv("MATSENSE_MAX_MEMORY", "2G")
    base = {"r": 2, "k": 3, "iters": 3}
    completion = RunConfig.from_dict({**base, "ensemble": "completion", "n1": 20_000, "m": 400_000})
    rank_one = RunConfig.from_dict({**base, "ensemble": "rank-one", "n1": 1000, "m": 20_000})
    for cfg in (completion, rank_one):
        cfg.check_memory(2)  # no ValueError
    assert completion.memory_bytes(2) < 128 << 20 and rank_one.memory_bytes(2) < 1 << 30
    dense = RunConfig.from_dict({**base, "ensemble": "gaussian", "n1": 1000, "m": 20_000})
    with pytest.raises(ValueError, match=r"a gaussian run of n1=1000, .* would take"):
        dense.check_memory(2)


def test_completion_sweep_at_scale_runs(tmp_path, monkeypatch):
    from matsense.sweep import load, run_sweep

    monkeypatch.setenv("MATSENSE_MAX_MEMORY", "2G")
    spec = {
        "sweep": {"name": "big-completion"},
        "base": {
            "ensemble": "completion",
            "n1": 20_000,
            "r": 2,
            "m": 400_000,
            "k": 3,
            "alpha": 0.01,
            "iters": 2,
            "record_every": 1,
        },
        "grid": {"seed": [0]},
    }
    summary = run_sweep(spec, tmp_path / "store", executor="local", workers=1, progress="off")
    assert summary.complete, summary
    runs, _ = load(tmp_path / "store")
    assert list(runs["status"]) == ["max_iters"]


CASES = {
    "gaussian": (40, 2000),
    "symmetric-gaussian": (40, 2000),
    "rank-one": (300, 20_000),
    "completion": (400, 40_000),
}


@pytest.mark.parametrize("name", ENSEMBLES)
@pytest.mark.parametrize("symmetric", [False, True])
def test_memory_estimate_is_within_2x_of_the_peak(name, symmetric):
    n, m = CASES[name]
    Problem.generate(name, 8, r=2, m=20, seed=0)  # imports and caches first
    gc.collect()
    tracemalloc.start()
    try:
        problem = Problem.generate(name, n, r=3, m=m, seed=1, symmetric=symmetric)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = ensembles.get(name).memory(n, n, 3, m, symmetric=symmetric)
    assert peak / 2 <= estimate <= 2 * peak, (estimate, peak)
    assert problem.m == m


# ------------------------------------------------------------------ one dense limit
def test_one_dense_limit_policy(monkeypatch):
    assert (limits.DENSE.operator, limits.DENSE.truth, limits.DENSE.error) == (2**26, 2**22, 2**20)
    assert limits.DENSE.allows((2**13, 2**13)) and not limits.DENSE.allows((2**13 + 1, 2**13))
    with pytest.raises(ValueError, match="use must be one of operator, truth, error"):
        limits.DENSE.allows((2, 2), "svd")
    p = Problem.completion(12, r=2, m=100, seed=0)
    assert p.operator.forms_dense() and p.M_star is not None
    monkeypatch.setattr(limits, "DENSE", limits.DENSE.replace(operator=10, truth=10, error=10))
    assert not p.operator.forms_dense()
    with pytest.raises(ValueError, match=r"more than matsense forms \(10 entries"):
        p.operator.adjoint(p.y[None])
    assert Problem.completion(12, r=2, m=100, seed=0).M_star is None  # factors only
    dense = np.ones((4, 4))
    assert diagnostics.Truth(dense=dense, norm=4.0).factored is False
    svp_source = (SRC / "methods" / "svp.py").read_text()
    assert "DENSE_LIMIT" not in svp_source and "forms_dense()" in svp_source


def test_operator_capabilities_are_methods():
    dense = Problem.gaussian(5, r=1, m=30, symmetric=True, seed=0)
    assert dense.operator.packs_symmetric()
    packed = dense.operator.symmetric_packed()
    assert packed.symmetric_packed() is packed and packed.packs_symmetric()
    rank_one = Problem.rank_one(5, r=1, m=30, seed=0)
    assert not rank_one.operator.packs_symmetric()
    with pytest.raises(ValueError, match="RankOneOperator has no packed symmetric form"):
        rank_one.operator.symmetric_packed()


# ------------------------------------------------------------------ a plugin's record
PLUGIN = '''
import numpy as np
from matsense.ensemble import Ensemble
from matsense.problems import Problem, haar_orthonormal


def build(n1, n2=None, *, r, m, seed=0, symmetric=False, **unused):
    """Dense ±1 measurements."""
    n2 = n1 if n2 is None else n2
    rng = np.random.default_rng(seed)
    U = haar_orthonormal(rng, n1, r)
    M = U @ (U if symmetric else haar_orthonormal(rng, n2, r)).T
    A = rng.choice([-1.0, 1.0], size=(m, n1, n2))
    return Problem.from_arrays(A, np.einsum("ijk,jk->i", A, M) / np.sqrt(m), M)


SIGNS = Ensemble("signs", build, help="dense ±1 measurements",
                 data_bytes=lambda n1, n2, m, symmetric=False: 8 * m * n1 * n2)
'''


def test_a_plugin_record_flows_through_generate_and_runconfig(tmp_path, monkeypatch):
    (tmp_path / "signs_plugin.py").write_text(PLUGIN)
    info = tmp_path / "signs_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: signs-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[matsense.ensembles]\nsigns = signs_plugin:SIGNS\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "signs" in ENSEMBLE_PLUGINS and ensembles.names()[-1] == "signs"
    record = ensembles.get("signs")
    assert isinstance(record, Ensemble) and record.help == "dense ±1 measurements"
    p = Problem.generate("signs", 6, 5, r=2, m=40, seed=3)
    assert p.shape == (6, 5) and p.meta["ensemble"] == "signs" and p.m == 40
    cfg = RunConfig.from_dict({"ensemble": "signs", "n1": 6, "r": 2, "m": 40, "k": 2, "iters": 50})
    assert cfg.build_problem().meta["ensemble"] == "signs"
    assert record.memory(6, 6, 2, 40) == 8 * 40 * 36 + 8 * (12 * 2 + 40 + 36)
    assert cfg.memory_bytes() >= record.memory(6, 6, 2, 40)
    with pytest.raises(
        ValueError, match="p .* applies to the completion ensemble only, not 'signs'"
    ):
        RunConfig.from_dict({"ensemble": "signs", "p": 0.5})
    with pytest.raises(ValueError, match=r"ensemble plugin 'signs' does not take"):
        Problem.generate("signs", 6, r=2)
