"""The registry of initializations (matsense.init.INITS) and its users: configs, the CLI, compare."""

from __future__ import annotations

import numpy as np
import pytest

import matsense as ms
from matsense import config
from matsense.compare import ENTRIES
from matsense.config import RunConfig


@pytest.fixture(scope="module")
def square():
    return ms.Problem.gaussian(6, r=2, m=40, seed=0)


def _same(a, b):
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_registry_flags():
    inits = ms.init.INITS
    assert {n for n, s in inits.items() if s.random} == {
        "small_random",
        "balanced",
        "symmetric_random",
    }
    assert {n for n, s in inits.items() if s.symmetric} == {
        "symmetric_random",
        "spectral_symmetric",
        "zeros_symmetric",
        "spectral_trimmed_symmetric",
    }
    assert all(name == spec.name for name, spec in inits.items())


def test_build_equals_the_functions(square):
    I = ms.init
    opts = dict(ratio=0.5, normalization="sqrt_n", seed=3)
    assert _same(
        I.INITS["small_random"].build(square, 2, 0.1, **opts),
        I.small_random(square, 2, 0.1, **opts),
    )
    assert _same(
        I.INITS["balanced"].build(square, 2, 0.1, **opts),
        I.balanced(square, 2, 0.1, normalization="sqrt_n", seed=3),
    )
    assert _same(
        I.INITS["symmetric_random"].build(square, 2, 0.1, **opts),
        I.symmetric_random(square, 2, 0.1, normalization="sqrt_n", seed=3),
    )
    # Deterministic starts ignore alpha, ratio, normalization and seed.
    assert _same(I.INITS["spectral"].build(square, 2, 0.1, **opts), I.spectral(square, 2))
    assert _same(I.INITS["zeros_symmetric"].build(square, 2), I.zeros_symmetric(square, 2))


def test_unknown_init_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown init 'nope'; known: balanced, small_random"):
        ms.init.get_init("nope")
    with pytest.raises(ValueError, match=r"unknown init 'nope'; known: .*zeros_symmetric"):
        RunConfig.from_dict({"init": "nope"})


def test_config_inits_is_a_view_of_the_registry(square):
    assert sorted(config.INITS) == sorted(ms.init.INITS) and "spectral" in config.INITS
    cfg = RunConfig.from_dict(
        {
            "n1": 6,
            "r": 2,
            "m": 40,
            "k": 2,
            "init": "small_random",
            "alpha": 0.1,
            "ratio": 0.5,
            "init_seed": 4,
        }
    )
    expected = ms.init.small_random(square, 2, 0.1, ratio=0.5, normalization="entry", seed=4)
    assert _same(config.INITS["small_random"](square, cfg), expected)
    assert _same(cfg.build_init(square), expected)


def test_compare_entries_take_their_parameterization_from_the_registry():
    for entry in ENTRIES:
        assert entry.symmetric == ms.init.INITS[entry.init].symmetric
    assert {e.key for e in ENTRIES if e.symmetric} == {"gd_sym", "precgd", "scaledgd_lambda"}


def test_cli_shows_alpha_only_for_random_inits(capsys):
    from matsense import cli

    tiny = ["run", "--n1", "6", "--r", "1", "--m", "40", "--k", "1", "--iters", "2"]
    assert cli.main([*tiny, "--init", "small_random", "--alpha", "0.01"]) == 0
    assert "init=small_random (α=0.01)" in capsys.readouterr().out
    assert cli.main([*tiny, "--init", "spectral", "--alpha", "0.01"]) == 0
    assert "init=spectral\n" in capsys.readouterr().out
