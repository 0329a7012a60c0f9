"""The float64 numba kernel's register tiles: generated code up to date, plans, and bitwise
independence of a trajectory's numbers from the batch it runs in."""

from __future__ import annotations

import numpy as np
import pytest

from matsense.operators.kernels import _gen_tiles, numba_kernel

# m smaller than either tile height, m not a multiple of R (5 or 8) with d not a multiple of 8,
# d below one vector, and an even fit.
SHAPES = [(3, 13), (37, 61), (23, 5), (40, 16)]
POOL = 12


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def _thread_counts():
    numba = pytest.importorskip("numba")
    return [1, 2] if numba.config.NUMBA_NUM_THREADS >= 2 else [1]


def test_generated_module_is_the_generators_output():
    assert _gen_tiles.TARGET.read_text(encoding="utf-8") == _gen_tiles.module_source(), (
        "regenerate with: python -m matsense.operators.kernels._gen_tiles"
    )


@pytest.mark.parametrize("B", range(1, 200))
def test_tile_plan_covers_the_batch_with_generated_drivers(B):
    R, widths = numba_kernel.tile_plan(B)
    assert sum(widths) == B and all(1 <= w <= numba_kernel.MAX_WIDTH for w in widths)
    assert max(widths) - min(widths) <= 1  # chunks of near-equal width
    assert R == (8 if B <= 2 else 5) and (B > 2 or widths == (B,))
    assert (R, tuple(sorted(set(widths), reverse=True))) in _gen_tiles.drivers()


def test_tile_plan_examples():
    assert numba_kernel.tile_plan(1) == (8, (1,))
    assert numba_kernel.tile_plan(2) == (8, (2,))
    assert numba_kernel.tile_plan(5) == (5, (3, 2))
    assert numba_kernel.tile_plan(10) == (5, (4, 3, 3))


@pytest.mark.parametrize("threads", _thread_counts())
@pytest.mark.parametrize("m, d", SHAPES)
def test_a_trajectory_gets_the_same_bits_alone_and_in_any_batch(m, d, threads):
    rng = np.random.default_rng(m * 1000 + d)
    A = rng.standard_normal((m, d)) * 3.0
    y = rng.standard_normal(m)
    pool = rng.standard_normal((POOL, d))
    alone = [numba_kernel.fused_numba(A, pool[k : k + 1], y, threads) for k in range(POOL)]
    for k, (r, s) in enumerate(alone):
        r0 = pool[k : k + 1] @ A.T - y
        assert _rel(r, r0) <= 1e-12 and _rel(s, r0 @ A) <= 1e-12
    for B in range(2, 11):
        picks = [rng.choice(POOL, size=B, replace=False) for _ in range(3)]
        picks.append(np.roll(np.arange(B), B // 2))  # trajectory 0 in the middle
        for idx in picks:
            r, s = numba_kernel.fused_numba(A, pool[idx], y, threads)
            for pos, k in enumerate(idx):
                assert np.array_equal(r[pos], alone[k][0][0]), (B, pos, k)
                assert np.array_equal(s[pos], alone[k][1][0]), (B, pos, k)


@pytest.mark.parametrize("threads", _thread_counts())
def test_nan_stays_in_its_trajectory_and_inf_propagates(threads):
    rng = np.random.default_rng(7)
    A, y, p = rng.standard_normal((30, 50)), rng.standard_normal(30), rng.standard_normal((3, 50))
    clean = numba_kernel.fused_numba(A, p[[0, 2]], y, threads)
    p[1, 7] = np.nan
    r, s = numba_kernel.fused_numba(A, p, y, threads)
    assert np.isnan(r[1]).all() and np.isnan(s[1]).all()
    assert np.array_equal(r[[0, 2]], clean[0]) and np.array_equal(s[[0, 2]], clean[1])
    A[3, 4] = np.inf
    r, s = numba_kernel.fused_numba(A, p[[0, 2]], y, threads)
    assert not np.isfinite(r[:, 3]).any() and not np.isfinite(s).all()


def test_float32_runs_the_reassoc_kernel():
    pytest.importorskip("numba")
    rng = np.random.default_rng(8)
    A, y, p = rng.standard_normal((45, 27)), rng.standard_normal(45), rng.standard_normal((3, 27))
    r, s = numba_kernel.fused_numba(
        A.astype(np.float32), p.astype(np.float32), y.astype(np.float32), 1
    )
    assert r.dtype == np.float32 and s.dtype == np.float32
    r0 = p @ A.T - y
    assert _rel(r, r0) < 1e-5 and _rel(s, r0 @ A) < 1e-5


def test_non_contiguous_inputs():
    pytest.importorskip("numba")
    rng = np.random.default_rng(9)
    A, y = rng.standard_normal((37, 19)), rng.standard_normal((37, 2))[:, 0]
    wide = rng.standard_normal((4, 38))
    p = wide[:, ::2]  # strided rows
    assert not p.flags.c_contiguous and not y.flags.c_contiguous
    r, s = numba_kernel.fused_numba(A, p, y, 1)
    ref = numba_kernel.fused_numba(A, p.copy(), y.copy(), 1)
    assert np.array_equal(r, ref[0]) and np.array_equal(s, ref[1])
    r, s = numba_kernel.fused_numba(A, np.asfortranarray(p), y, 1)
    assert np.array_equal(r, ref[0]) and np.array_equal(s, ref[1])
    # A that is not C-contiguous is refused by dispatch; called directly it takes the
    # reassoc kernel (which indexes with strides), never the tiles' vector loads.
    At = np.asfortranarray(A)
    assert numba_kernel.unavailable_reason(At) == "the operator matrix is not C-contiguous"
    r, s = numba_kernel.fused_numba(At, p, y, 1)
    r0 = p @ A.T - y
    assert _rel(r, r0) < 1e-12 and _rel(s, r0 @ A) < 1e-12


def test_vector_loads_refuse_strided_arrays():
    numba = pytest.importorskip("numba")
    from matsense.operators.kernels._simd import vload, vsum

    @numba.njit
    def first8(a):
        return vsum(vload(a, 0))

    x = np.arange(16.0)
    assert first8(x) == 28.0
    with pytest.raises(numba.core.errors.TypingError):
        first8(x[::2])
