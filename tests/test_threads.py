"""matsense.threads: one home for cores, BLAS limits and single_threaded(); old names still work
(with a DeprecationWarning: matsense.compat)."""

from __future__ import annotations

import numpy as np
import pytest

from matsense import backend, threads


def test_one_usable_cores_everywhere():
    from matsense.experiments import runs
    from matsense.sweep import executors

    assert executors.cpu_count is threads.usable_cores
    assert runs.usable_cores is threads.usable_cores
    assert threads.usable_cores() >= 1


def test_old_homes_still_import():
    import matsense.operators as ops
    from matsense.operators import _fused

    assert ops.single_threaded is threads.single_threaded
    with pytest.warns(DeprecationWarning, match="removed in matsense 0.3.0"):
        assert _fused.single_threaded is threads.single_threaded
        assert backend.blas_threads_for is threads.blas_threads_for
        assert backend.SMALL_OPERATOR_BYTES == threads.SMALL_OPERATOR_BYTES
    A = np.random.default_rng(0).standard_normal((30, 5))
    with pytest.warns(DeprecationWarning, match="operators._fused.fused_numpy"):
        r, s = _fused.fused_numpy(A, np.ones((1, 5)), np.zeros(30), 7, 1)
    assert np.allclose(s, (np.ones((1, 5)) @ A.T) @ A)
