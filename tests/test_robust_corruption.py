"""Corruption models (issue #22 part 2): outliers placed exactly where the seeded support
says, on every ensemble, with noise or alone; f* = f(M*); bad values refused in one line."""

from __future__ import annotations

import math

import numpy as np
import pytest

import matsense as ms
from matsense import corruption
from matsense.corruption import Outliers, outlier_support, with_outliers
from matsense.losses import Loss

ENSEMBLES = {
    "gaussian": dict(n1=8, r=2, m=120),
    "symmetric-gaussian": dict(n1=8, r=2, m=120, symmetric=True),
    "rank-one": dict(n1=8, r=2, m=150),
    "completion": dict(n1=14, r=2, m=100),
}


def _generate(ensemble, **extra):
    kw = dict(ENSEMBLES[ensemble])
    n1 = kw.pop("n1")
    return ms.Problem.generate(ensemble, n1, seed=7, **kw, **extra)


@pytest.mark.parametrize("ensemble", list(ENSEMBLES))
@pytest.mark.parametrize("mode", ["add", "replace"])
def test_outliers_are_placed_exactly_on_the_seeded_support(ensemble, mode):
    clean = _generate(ensemble)
    bad = _generate(ensemble, outlier_fraction=0.1, outlier_scale=10.0, outlier_mode=mode)
    m = clean.m
    support = outlier_support(7, m, 0.1)
    assert support.size == round(0.1 * m) and np.all(np.diff(support) > 0)
    changed = np.flatnonzero(bad.y != clean.y)
    assert np.array_equal(changed, support)  # (a value drawn as exactly 0 would not show)
    ref = np.max(np.abs(corruption.clean_measurements(clean)))
    assert np.array_equal(ref, np.max(np.abs(clean.y)))  # noiseless: 𝒜(M*) is y
    rng = np.random.default_rng((7, corruption.OUTLIER_STREAM))
    assert np.array_equal(np.sort(rng.choice(m, support.size, replace=False)), support)
    values = 10.0 * ref * rng.uniform(-1, 1, support.size)
    expected = clean.y.copy()
    expected[support] = values if mode == "replace" else expected[support] + values
    assert np.array_equal(bad.y, expected)
    info = bad.meta["outliers"]
    assert info == dict(
        fraction=0.1,
        scale=10.0,
        mode=mode,
        count=support.size,
        magnitude=10.0 * ref,
        reference="truth",
        seed=7,
    )
    # the operator, M* and everything but y are the clean problem's
    assert bad.operator is not None and np.array_equal(bad.U_star, clean.U_star)


def test_outliers_with_noise_and_f_star():
    noisy = _generate("gaussian", noise=0.01)
    both = _generate("gaussian", noise=0.01, outlier_fraction=0.2)
    support = outlier_support(7, noisy.m, 0.2)
    diff = both.y - noisy.y
    assert np.array_equal(np.flatnonzero(diff), support)
    clean = _generate("gaussian")
    f_star = np.sum(np.abs(both.y - clean.y)) / math.sqrt(both.m)
    assert both.meta["l1_at_truth"] == pytest.approx(f_star, rel=1e-12)
    assert corruption.loss_at_truth(both, Loss("l1")) == pytest.approx(f_star, rel=1e-12)
    only = _generate("gaussian", outlier_fraction=0.2)  # noiseless, add: f* = ‖s‖₁/√m
    s = only.y - clean.y
    assert only.meta["l1_at_truth"] == pytest.approx(np.abs(s).sum() / math.sqrt(only.m))


def test_seeds_and_zero_fraction():
    a = outlier_support(1, 1000, 0.1)
    assert np.array_equal(a, outlier_support(1, 1000, 0.1))
    assert not np.array_equal(a, outlier_support(2, 1000, 0.1))
    clean = _generate("gaussian")
    assert with_outliers(clean, Outliers(0.0), 7) is clean
    assert np.array_equal(_generate("gaussian", outlier_fraction=0.0).y, clean.y)


def test_problem_without_truth_uses_y_and_f_star_is_refused():
    p = _generate("gaussian")
    data = ms.Problem.from_arrays(
        np.asarray(p.operator.as_matrix()).reshape(p.m, 8, 8) * math.sqrt(p.m), p.y
    )
    bad = with_outliers(data, Outliers(0.1, 2.0), 3)
    assert bad.meta["outliers"]["reference"] == "y" and "l1_at_truth" not in bad.meta
    with pytest.raises(ValueError, match="no ground truth M"):
        corruption.loss_at_truth(bad, Loss("l1"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(outlier_fraction=1.0), r"outlier_fraction must be a number in \[0, 1\), got 1.0"),
        (dict(outlier_fraction=-0.1), r"outlier_fraction must be a number in \[0, 1\), got -0.1"),
        (dict(outlier_fraction="x"), r"outlier_fraction must be a number in \[0, 1\), got 'x'"),
        (
            dict(outlier_fraction=0.1, outlier_scale=-1),
            r"outlier_scale must be a finite number >= 0, got -1",
        ),
        (
            dict(outlier_fraction=0.1, outlier_mode="swap"),
            r"outlier_mode must be one of add, replace, got 'swap'",
        ),
    ],
)
def test_bad_values_are_one_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _generate("gaussian", **kwargs)


# ------------------------------------------------------------------ run files and CLI
def test_config_keys_build_the_corrupted_problem_and_keep_old_ids():
    from matsense.config import RunConfig

    base = RunConfig.from_dict(dict(n1=8, r=2, m=120, seed=7))
    assert "outlier_fraction" not in base.to_dict()
    same = RunConfig.from_dict(dict(n1=8, r=2, m=120, seed=7, outlier_fraction=0))
    assert same.run_id() == base.run_id() and same.problem_key() == base.problem_key()
    cfg = RunConfig.from_dict(
        dict(
            n1=8, r=2, m=120, seed=7, outlier_fraction=0.1, outlier_mode="replace", outlier_scale=5
        )
    )
    assert cfg.to_dict()["outlier_fraction"] == 0.1 and cfg.run_id() != base.run_id()
    assert cfg.problem_key() != base.problem_key()
    p = cfg.build_problem()
    ref = _generate("gaussian", outlier_fraction=0.1, outlier_mode="replace", outlier_scale=5)
    assert np.array_equal(p.y, ref.y) and p.meta["outliers"]["mode"] == "replace"
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_config_bad_outlier_value_names_the_file_and_line(tmp_path):
    from matsense.config import RunConfig

    f = tmp_path / "run.toml"
    f.write_text("n1 = 8\n[problem]\noutlier_fraction = 1.5\n")
    with pytest.raises(
        ValueError,
        match=r"run.toml:3: outlier_fraction must be a number in "
        r"\[0, 1\), got 1.5",
    ):
        RunConfig.from_toml(f)
    with pytest.raises(ValueError, match="outlier_mode must be one of add, replace"):
        RunConfig.from_dict(dict(outlier_mode="drop"))


def test_cli_outlier_flags(tmp_path):
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "matsense",
        "run",
        "--n1",
        "8",
        "--r",
        "1",
        "--m",
        "100",
        "--iters",
        "3",
        "--no-figure",
        "--outlier-fraction",
    ]
    ok = subprocess.run(
        cmd + ["0.1", "--out", str(tmp_path / "t.csv")], capture_output=True, text=True, timeout=300
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(cmd + ["1.5"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .endswith("outlier_fraction must be a number in [0, 1), got 1.5")
    )
    assert len(bad.stderr.strip().splitlines()) == 1
