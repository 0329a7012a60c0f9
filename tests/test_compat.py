"""matsense.compat: every deprecated name answers, with a DeprecationWarning that names the
release removing it and the new home, and still works."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import matsense as ms
from matsense import cli, compat


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


ALIASES = sorted(compat.DEPRECATED)


@pytest.mark.parametrize(("module", "name"), ALIASES, ids=[f"{m}.{n}" for m, n in ALIASES])
def test_each_alias_warns_and_is_the_new_object(module, name):
    alias = compat.DEPRECATED[(module, name)]
    home, _, attr = alias.target.partition(":")
    old = importlib.import_module(module)
    with pytest.warns(DeprecationWarning) as caught:
        value = getattr(old, name)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"{module}.{name} is deprecated" in message
    assert f"removed in matsense {alias.removal}" in message
    assert (alias.instead or f"use {home}.{attr}") in message
    assert caught[0].filename == __file__  # the warning points at the caller's line
    if attr.endswith("()"):  # a view computed on use: equal to a fresh one
        assert value == getattr(importlib.import_module(home), attr[:-2])()
    else:
        assert value is getattr(importlib.import_module(home), attr)


def test_removal_versions_are_later_releases():
    current = _version(ms.__version__)
    removals = [a.removal for a in compat.DEPRECATED.values()]
    removals += [removal for _, removal in compat.DEPRECATED_FLAGS.values()]
    assert removals and all(_version(r) > current for r in removals)


def test_deprecated_names_still_work():
    from matsense import backend, threads
    from matsense.methods import base
    from matsense.operators import _fused

    A = np.random.default_rng(0).standard_normal((30, 5))
    with pytest.warns(DeprecationWarning):
        r, s = _fused.fused_numpy(A, np.ones((1, 5)), np.zeros(30), 7, 1)
    assert np.allclose(s, (np.ones((1, 5)) @ A.T) @ A)
    with pytest.warns(DeprecationWarning):
        assert base.step_size(0.25) == 0.25
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="step_size must be"):
        base.step_size(-1.0)
    p = ms.Problem.gaussian(8, r=1, m=50, seed=0)
    with pytest.warns(DeprecationWarning), backend.blas_threads_for(p.operator, p.y):
        pass
    with pytest.warns(DeprecationWarning):
        assert backend.SMALL_OPERATOR_BYTES == threads.SMALL_OPERATOR_BYTES


def test_unknown_names_raise_attribute_error():
    from matsense import backend
    from matsense.operators import _fused

    with pytest.raises(AttributeError, match="'matsense.operators._fused' has no attribute 'x'"):
        _fused.x  # noqa: B018
    assert not hasattr(backend, "no_such_name")
    with pytest.raises(AttributeError):
        compat.attribute("matsense.backend", "namespace")  # a current name is no alias


def test_dir_lists_the_old_names():
    from matsense.operators import _fused

    assert set(compat.names("matsense.operators._fused")) <= set(dir(_fused))
    assert "fused_numpy" in dir(_fused) and "residual_and_adjoint_flat" in dir(_fused)


def test_cli_flags_table_is_the_compat_one():
    assert cli.DEPRECATED_FLAGS is compat.DEPRECATED_FLAGS
