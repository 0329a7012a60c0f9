"""Sweep specs: TOML parsing, grid / zip expansion, validation errors with key, file and line."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import pytest

from matsense.config import RunConfig
from matsense.sweep import SweepSpec, describe_sweep, load_spec, plan_batches
from matsense.sweep.cli import register

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

BASE = """\
[sweep]
name = "t"

[base]
n1 = 8
r = 2
m = 120
method = "gd"
step_size = 0.3
iters = 50
"""


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_grid_is_a_cartesian_product_last_key_fastest(tmp_path):
    path = write(tmp_path, BASE + "[grid]\nk = [2, 3]\nalpha = [0.1, 0.05, 0.02]\n")
    spec = SweepSpec.from_toml(path)
    assert len(spec) == 6
    assert [(c.k, c.alpha) for c in spec.configs] == [
        (2, 0.1),
        (2, 0.05),
        (2, 0.02),
        (3, 0.1),
        (3, 0.05),
        (3, 0.02),
    ]
    assert all(isinstance(c, RunConfig) and c.n1 == 8 and c.iters == 50 for c in spec.configs)
    assert spec.varying == {"k": 2, "alpha": 3}
    assert spec.label(spec.configs[1]) == "k=2 alpha=0.05"


def test_zip_groups_vary_together_and_multiply_the_grid(tmp_path):
    text = (
        BASE
        + """
[grid]
init_seed = [0, 1]

[[zip]]
n1 = [6, 8, 10]
m = [80, 120, 160]

[[zip]]
alpha = [0.1, 0.01]
ratio = [0.5, 0.25]
"""
    )
    text = text.replace("n1 = 8\n", "").replace("m = 120\n", "")
    spec = SweepSpec.from_toml(write(tmp_path, text))
    assert len(spec) == 2 * 3 * 2
    pairs = {(c.n1, c.m) for c in spec.configs}
    assert pairs == {(6, 80), (8, 120), (10, 160)}
    assert {(c.alpha, c.ratio) for c in spec.configs} == {(0.1, 0.5), (0.01, 0.25)}


def test_sectioned_base_and_dict_specs():
    spec = load_spec(
        {
            "base": {"problem": {"n1": 6, "m": 60}, "run": {"iters": 5}},
            "grid": {"alpha": [0.1, 0.2]},
        }
    )
    assert [(c.n1, c.m, c.iters, c.alpha) for c in spec.configs] == [
        (6, 60, 5, 0.1),
        (6, 60, 5, 0.2),
    ]
    assert spec.source is None and spec.name == "sweep"


def test_duplicate_points_are_kept_once():
    spec = load_spec({"base": {"n1": 6, "m": 60}, "grid": {"alpha": [0.1, 0.1, 0.2]}})
    assert len(spec) == 2 and spec.duplicates == 1
    assert len({c.run_id() for c in spec.configs}) == 2


def _error(tmp_path, text) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        SweepSpec.from_toml(path)
    return str(info.value)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(needle))


@pytest.mark.parametrize(
    "extra, key, needle",
    [
        # unknown run setting in [base]
        ("bogus = 3\n[grid]\nk = [2]\n", "bogus", "bogus"),
        # unknown key in [grid]
        ("[grid]\nalpah = [0.1, 0.2]\n", "alpah", "alpah"),
        # wrong element type in a grid list
        ('[grid]\nalpha = [0.1, "big"]\n', "alpha", "alpha"),
        # wrong type in [base]
        ("[grid]\nk = [2, 3]\n", "iters", "iters"),
        # grid value that is not a list
        ("[grid]\nk = 3\n", "k", "k = 3"),
        # a method parameter the method does not have
        ("tau = 0.1\n[grid]\nk = [2]\n", "tau", "tau"),
        # unknown [sweep] option
        ("[grid]\nk = [2]\n", "max_batchez", "max_batchez"),
    ],
)
def test_validation_errors_name_key_file_and_line(tmp_path, extra, key, needle):
    text = BASE + extra
    if key == "iters":
        text = text.replace("iters = 50", 'iters = "many"')
        needle = "iters ="
    if key == "max_batchez":
        text = text.replace('name = "t"', 'name = "t"\nmax_batchez = 3')
    msg = _error(tmp_path, text)
    line = _line_of(text, needle)
    assert f"spec.toml:{line}:" in msg, msg
    assert repr(key) in msg or f"{key} " in msg, msg


def test_zip_lists_of_unequal_length(tmp_path):
    text = BASE + "[[zip]]\nalpha = [0.1, 0.2]\nk = [2, 3, 4]\n"
    msg = _error(tmp_path, text)
    assert f"spec.toml:{_line_of(text, '[[zip]]')}:" in msg
    assert "alpha (2)" in msg and "k (3)" in msg


def test_a_key_set_twice_is_reported_with_both_places(tmp_path):
    text = BASE + "[grid]\nn1 = [6, 8]\n"
    msg = _error(tmp_path, text)
    assert f"spec.toml:{_line_of(text, 'n1 = [')}:" in msg
    assert "[base]" in msg and "[grid]" in msg and f"line {_line_of(text, 'n1 = 8')}" in msg


def test_unknown_table_and_bad_options(tmp_path):
    text = BASE + "[gird]\nk = [2]\n"
    assert f"spec.toml:{_line_of(text, '[gird]')}:" in _error(tmp_path, text)
    text = BASE.replace('name = "t"', "rate_window = [1e-12, 1e-4]")
    msg = _error(tmp_path, text)
    assert "rate_window" in msg and f"spec.toml:{_line_of(text, 'rate_window')}:" in msg
    msg = _error(tmp_path, BASE.replace('name = "t"', 'rate_metric = "loss"'))
    assert "rate_metric" in msg
    assert "empty list" in _error(tmp_path, BASE + "[grid]\nk = []\n")
    assert "invalid TOML" in _error(tmp_path, BASE + "[grid\n")


def test_plan_groups_runs_that_share_a_problem():
    spec = load_spec(
        {
            "base": {"n1": 6, "m": 60, "iters": 5},
            "grid": {"seed": [0, 1], "k": [2, 3], "alpha": [0.1, 0.2], "init_seed": [0, 1]},
        }
    )
    tasks = plan_batches(spec.configs, max_batch=128, workers=1)
    # one batch per (problem seed, k): alpha and init_seed vary inside a batch
    assert len(tasks) == 4 and all(t.size == 4 for t in tasks)
    for t in tasks:
        assert len({(c["seed"], c["k"]) for c in t.configs}) == 1
    assert sorted(r for t in tasks for r in t.run_ids) == sorted(c.run_id() for c in spec.configs)
    # max_batch splits; more workers split further so each has work
    assert max(t.size for t in plan_batches(spec.configs, max_batch=3, workers=1)) <= 3
    assert len(plan_batches(spec.configs, max_batch=128, workers=4)) >= 8
    # ... but not in fast mode, where a run's last bits depend on its batch: there the
    # batches must not depend on the worker count
    fast = {
        w: [t.run_ids for t in plan_batches(spec.configs, max_batch=3, workers=w, exact=False)]
        for w in (1, 4, 64)
    }
    assert fast[1] == fast[4] == fast[64] and max(len(ids) for ids in fast[1]) <= 3


def test_dry_run_counts_runs_and_shows_examples(tmp_path, capsys):
    path = write(tmp_path, BASE + "[grid]\nk = [2, 3]\nalpha = [0.1, 0.05]\n")
    text = describe_sweep(path, examples=2)
    assert "4 runs" in text and text.count("e.g.") == 2 and "k=2 alpha=0.1" in text
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["sweep", str(path), "--dry-run"])
    assert args.func(args) == 0
    assert "4 runs" in capsys.readouterr().out
    args = parser.parse_args(["sweep", str(path)])
    with pytest.raises(ValueError, match="--out"):
        args.func(args)


def test_c4_example_spec():
    spec = load_spec(EXAMPLES / "c4_sweep.toml")
    assert len(spec) >= 18
    assert {c.method for c in spec.configs} == {"gd"}
    assert {c.k for c in spec.configs} >= {3, 4, 5}
    assert {0.08, 0.04, 0.02} <= {c.alpha for c in spec.configs}
    assert all(
        (c.n1, c.r, c.m, c.singular_values) == (30, 2, 900, [1.0, 0.5]) for c in spec.configs
    )
    assert all(c.method_params["step_size"] == 0.3 for c in spec.configs)
    assert len({c.problem_key() for c in spec.configs}) == 1
