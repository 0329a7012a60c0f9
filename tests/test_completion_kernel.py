"""The compiled completion kernel (issue #19, part 4): padded registers, threads, int32 indices.

Speed is measured in benchmarks/bench_ensembles.py (``--cases completion-kernel``),
never asserted here.
"""

import numpy as np
import pytest

import matsense as ms
from matsense.operators import completion as completion_mod

entries = pytest.importorskip("matsense.operators.kernels.entries")


def _problem(monkeypatch, n1=300, n2=1000, m=20_000, tile=64, seed=0):
    """A completion problem stored in many column tiles (n2 / tile of them)."""
    monkeypatch.setattr(completion_mod, "TILE_COLUMNS", tile)
    rng = np.random.default_rng(seed)
    flat = rng.choice(n1 * n2, m, replace=False)
    p = ms.Problem.from_entries(flat // n2, flat % n2, rng.standard_normal(m), (n1, n2))
    assert p.operator.tile_columns == tile
    return p


def _factors(p, k, B=1, seed=1):
    rng = np.random.default_rng(seed)
    n1, n2 = p.operator.shape
    return rng.standard_normal((B, n1, k)), rng.standard_normal((B, n2, k))


def _dense(p, F, G):
    """r, S G, Sᵀ F from the n1 × n2 matrices (the definition)."""
    op = p.operator
    r = op.apply(F @ G.mT) - p.y
    S = op.adjoint(r)
    return r, S @ G, S.mT @ F


def _relmax(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _with_threads(p, F, G, count, monkeypatch):
    monkeypatch.setenv("MATSENSE_THREADS", str(count))
    return p.operator.residual_and_grads(F, G, p.y)


# ------------------------------------------------------------------ the numbers
@pytest.mark.parametrize("k", [1, 3, 8, 9, 10, 16, 17, 24])
@pytest.mark.parametrize("B", [1, 3])
def test_equals_the_dense_formula(k, B, monkeypatch):
    """kp = 8 and 16 (unrolled) and the loop over registers (k > 16), against the definition."""
    p = _problem(monkeypatch)
    F, G = _factors(p, k, B)
    r, SG, StF = p.operator.residual_and_grads(F, G, p.y)
    r0, SG0, StF0 = _dense(p, F, G)
    assert r.shape == r0.shape and SG.shape == F.shape and StF.shape == G.shape
    assert SG.flags.c_contiguous and StF.flags.c_contiguous
    for got, ref in ((r, r0), (SG, SG0), (StF, StF0)):
        assert _relmax(got, ref) <= 1e-12


@pytest.mark.parametrize("k", [2, 10, 19])
def test_close_to_the_scalar_kernel(k, monkeypatch):
    """The padded kernel differs from the scalar one (LLVM's lanes) only by rounding."""
    p = _problem(monkeypatch)
    F, G = _factors(p, k, 2)
    op = p.operator
    r, SG, StF = op.residual_and_grads(F, G, p.y)
    r1 = np.empty_like(r)
    SG1, StF1 = np.zeros_like(F), np.zeros_like(G)
    entries.generic(op.rows, op.cols, op.scale, F, G, np.broadcast_to(p.y, r.shape), r1, SG1, StF1)
    for got, ref in ((r, r1), (SG, SG1), (StF, StF1)):
        assert _relmax(got, ref) <= 1e-13


# ------------------------------------------------------------------ same bits
@pytest.mark.parametrize("k", [4, 10, 20])
def test_bitwise_independent_of_the_thread_count(k, monkeypatch):
    """MATSENSE_THREADS = 1, 2, 3 through the public call, same bits; and run to run."""
    p = _problem(monkeypatch, m=40_000)
    F, G = _factors(p, k, 2)
    one = _with_threads(p, F, G, 1, monkeypatch)
    for count in (2, 3, 1):
        got = _with_threads(p, F, G, count, monkeypatch)
        for a, b in zip(got, one):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("P", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("groups", [1, 2, 4])
def test_every_schedule_gives_the_serial_bits(P, groups, monkeypatch):
    """The wavefront over any split (row ranges × tile groups) adds each output row's terms
    in the stored order: bitwise the serial pass, whatever numba's thread count."""
    p = _problem(monkeypatch)
    op = p.operator
    F, G = _factors(p, 10, 2)
    monkeypatch.setattr(completion_mod, "GROUPS_PER_THREAD", groups)
    kp = 16
    y = np.broadcast_to(p.y, (2, op.m))

    def call(driver, *plan):
        r = np.empty((2, op.m))
        SG, StF = (
            completion_mod._zeros_padded(2, op.n1, kp),
            completion_mod._zeros_padded(2, op.n2, kp),
        )
        driver(
            op.rows,
            op.cols,
            op.scale,
            completion_mod._padded(F, kp),
            completion_mod._padded(G, kp),
            y,
            r,
            SG,
            StF,
            *plan,
            kp,
        )
        return r, SG, StF

    ref = call(entries.serial, op._tile_starts())
    seg, grp = op._schedule(P)
    assert seg.shape == (P + 1, len(op._tile_starts()) - 1)
    assert grp[0] == 0 and grp[-1] == len(op._tile_starts()) - 1 and np.all(np.diff(grp) > 0)
    np.testing.assert_array_equal(seg[0], op._tile_starts()[:-1])
    np.testing.assert_array_equal(seg[-1], op._tile_starts()[1:])
    got = call(entries.wavefront, seg, grp)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)


def test_a_trajectory_is_the_same_bits_in_any_batch(monkeypatch):
    p = _problem(monkeypatch)
    F, G = _factors(p, 10, 4)
    r, SG, StF = p.operator.residual_and_grads(F, G, p.y)
    for b in (0, 3):
        rb, SGb, StFb = p.operator.residual_and_grads(F[b : b + 1], G[b : b + 1], p.y)
        np.testing.assert_array_equal(rb[0], r[b])
        np.testing.assert_array_equal(SGb[0], SG[b])
        np.testing.assert_array_equal(StFb[0], StF[b])


def test_tile_width_does_not_change_the_numbers(monkeypatch):
    """One problem stored with 8-column and 4096-column tiles: S G and Sᵀ F bitwise equal,
    r equal up to the permutation of the entries (both through the threaded path)."""
    rng = np.random.default_rng(3)
    n1, n2, m = 200, 900, 15_000
    flat = rng.choice(n1 * n2, m, replace=False)
    vals = rng.standard_normal(m)
    monkeypatch.setattr(completion_mod, "numba_threads", lambda nbytes: 2)
    out = []
    for tile in (8, 4096):
        monkeypatch.setattr(completion_mod, "TILE_COLUMNS", tile)
        p = ms.Problem.from_entries(flat // n2, flat % n2, vals, (n1, n2))
        F, G = _factors(p, 10, 1)
        r, SG, StF = p.operator.residual_and_grads(F, G, p.y)
        key = p.operator.rows.astype(np.int64) * n2 + p.operator.cols
        out.append((r[:, np.argsort(key)], SG, StF))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ inputs and paths
def test_non_contiguous_and_shared_factors(monkeypatch):
    p = _problem(monkeypatch, n1=500, n2=500)
    F, G = _factors(p, 10, 2)
    Ft = np.ascontiguousarray(F.transpose(0, 2, 1)).transpose(0, 2, 1)  # strided view
    assert not Ft.flags.c_contiguous
    for a, b in zip(
        p.operator.residual_and_grads(Ft, G, p.y), p.operator.residual_and_grads(F, G, p.y)
    ):
        np.testing.assert_array_equal(a, b)
    # G is F (X Xᵀ on a square problem): one padded copy serves both
    r, SG, StF = p.operator.residual_and_grads(F, F, p.y)
    r0, SG0, StF0 = _dense(p, F, F)
    assert max(_relmax(r, r0), _relmax(SG, SG0), _relmax(StF, StF0)) <= 1e-12


def test_per_trajectory_y(monkeypatch):
    p = _problem(monkeypatch)
    F, G = _factors(p, 5, 2)
    y2 = np.stack([p.y, -2 * p.y])
    r, SG, _ = p.operator.residual_and_grads(F, G, y2)
    r0, SG0, _ = p.operator.residual_and_grads(F[1:], G[1:], -2 * p.y)
    np.testing.assert_array_equal(r[1], r0[0])
    np.testing.assert_array_equal(SG[1], SG0[0])


def test_float32_uses_the_scalar_kernel(monkeypatch):
    p = _problem(monkeypatch)
    F, G = _factors(p, 6, 1)
    r, SG, StF = p.operator.residual_and_grads(F.astype(np.float32), G.astype(np.float32), p.y)
    assert r.dtype == SG.dtype == StF.dtype == np.float32
    r0, SG0, StF0 = _dense(p, F, G)
    assert max(_relmax(r, r0), _relmax(SG, SG0), _relmax(StF, StF0)) <= 1e-4


def test_a_forked_child_runs_serially(monkeypatch):
    """Where numba's pool cannot be used (a child forked from a numba user), one thread."""
    p = _problem(monkeypatch)
    monkeypatch.setattr(completion_mod, "numba_threads", lambda nbytes: 2)
    assert p.operator._kernel_threads() == min(
        2, completion_mod.numba_module().config.NUMBA_NUM_THREADS
    )
    monkeypatch.setattr(completion_mod, "numba_usable", lambda: False)
    assert p.operator._kernel_threads() == 1
    F, G = _factors(p, 10, 1)
    r, SG, StF = p.operator.residual_and_grads(F, G, p.y)
    r0, SG0, StF0 = _dense(p, F, G)
    assert max(_relmax(r, r0), _relmax(SG, SG0), _relmax(StF, StF0)) <= 1e-12


def test_one_tile_or_small_operator_is_serial(monkeypatch):
    p = ms.Problem.completion(300, r=2, m=5000, seed=0)  # 300 columns: one tile
    assert len(p.operator._tile_starts()) == 2
    assert p.operator._kernel_threads() == 1
    q = _problem(monkeypatch)  # 16 tiles but 160 kB of indices: below THREADED_MIN_BYTES
    monkeypatch.delenv("MATSENSE_THREADS", raising=False)
    assert q.operator._kernel_threads() == 1


def test_indices_are_int32_and_nbytes_counts_them():
    p = ms.Problem.completion(400, r=2, m=8000, seed=0)
    op = p.operator
    assert op.rows.dtype == np.int32 and op.cols.dtype == np.int32
    assert op.nbytes == 8 * op.m
    # the same positions as the int64 arithmetic gives
    flat = op.rows.astype(np.int64) * op.n2 + op.cols
    assert np.unique(flat).size == op.m and flat.min() >= 0 and flat.max() < op.n1 * op.n2
    assert completion_mod._index_dtype(2**31 - 1) == np.int32
    assert completion_mod._index_dtype(2**31) == np.int64


def test_padded_rows_are_cache_line_aligned():
    X = np.arange(2 * 5 * 3, dtype=float).reshape(2, 5, 3)
    P = completion_mod._padded(X, 8)
    assert P.shape == (2, 40) and P.ctypes.data % 64 == 0
    np.testing.assert_array_equal(P.reshape(2, 5, 8)[:, :, :3], X)
    assert not P.reshape(2, 5, 8)[:, :, 3:].any()
    X8 = np.ones((1, 4, 8))
    assert np.shares_memory(completion_mod._padded(X8, 8), X8)  # no padding: no copy
    Z = completion_mod._zeros_padded(3, 7, 16)
    assert Z.ctypes.data % 64 == 0 and not Z.any()
