"""Sensing operators: identities against their dense matrices, the one-pass kernel, memory."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import matsense as ms
from matsense import threads
from matsense.init import symmetric_random
from matsense.operators import DenseOperator, SymmetricOperator, blocking, dispatch
from matsense.operators.kernels import numba_kernel, numpy_loop


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def _dense_formula(A_raw, P, y):
    """r_i = <A_i, P>/√m − y_i, S = Σ_i r_i A_i/√m, straight from docs/conventions.md."""
    m = A_raw.shape[0]
    r = np.einsum("ijk,bjk->bi", A_raw, P) / math.sqrt(m) - y
    S = np.einsum("bi,ijk->bjk", r, A_raw) / math.sqrt(m)
    return r, S


def _sym(S):
    return (S + np.swapaxes(S, -1, -2)) / 2


@pytest.fixture(scope="module")
def raw():
    rng = np.random.default_rng(7)
    m, n1, n2 = 157, 9, 6
    return rng.standard_normal((m, n1, n2)), rng.standard_normal(m)


# ----------------------------------------------------------------- dense operator
def test_adjoint_identity(raw):
    A, _ = raw
    op = DenseOperator(A)
    rng = np.random.default_rng(1)
    M = rng.standard_normal((3, 9, 6))
    z = rng.standard_normal((3, 157))
    lhs = np.sum(op.apply(M) * z, axis=1)
    rhs = np.sum(M * op.adjoint(z), axis=(1, 2))
    assert _rel(lhs, rhs) < 1e-13


@pytest.mark.parametrize("B", [1, 2, 3, 4, 5, 16])
def test_fused_equals_dense_formula(raw, B):
    A, y = raw
    op = DenseOperator(A)
    rng = np.random.default_rng(B)
    P = rng.standard_normal((B, 9, 6))
    r0, S0 = _dense_formula(A, P, y)
    for block_rows in [1, 2, 7, int(rng.integers(3, 150)), 157, 1000, None]:
        op.block_rows = block_rows
        r, S = op.residual_and_adjoint(P, y)
        assert r.shape == (B, 157) and S.shape == (B, 9, 6)
        assert _rel(r, r0) < 1e-12
        assert _rel(S, S0) < 1e-12


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_fused_kernel_direct_random_blocks(threads):
    """The blocked kernel itself, for every batch size it serves, random blocks, and row
    ranges on the thread pool: the dense result, and deterministic (fixed summation order)."""
    rng = np.random.default_rng(3)
    m, d = 301, 47  # m not a multiple of the thread count
    A = rng.standard_normal((m, d))
    y = rng.standard_normal(m)
    for B in range(1, dispatch.FUSED_MAX_BATCH + 1):
        p = rng.standard_normal((B, d))
        r0 = p @ A.T - y
        s0 = r0 @ A
        for block_rows in [1, *rng.integers(2, m + 20, size=4)]:
            r, s = numpy_loop.fused_numpy(A, p, y, int(block_rows), threads)
            assert _rel(r, r0) < 1e-12 and _rel(s, s0) < 1e-12
            r2, s2 = numpy_loop.fused_numpy(A, p, y, int(block_rows), threads)
            assert np.array_equal(r, r2) and np.array_equal(s, s2)


def test_threaded_numpy_kernel_propagates_nan():
    A = np.ones((40, 4))
    A[33, 2] = np.nan  # in the last thread's range
    r, s = numpy_loop.fused_numpy(A, np.ones((2, 4)), np.zeros(40), 8, 3)
    assert np.isnan(r[:, 33]).all() and np.isnan(s).all()
    assert np.isfinite(np.delete(r, 33, axis=1)).all()


def test_kernel_threads_setting(monkeypatch):
    monkeypatch.delenv("MATSENSE_THREADS", raising=False)
    assert threads.kernel_threads(threads.THREADED_MIN_BYTES - 1) == 1
    assert 1 <= threads.kernel_threads(threads.THREADED_MIN_BYTES) <= 8
    monkeypatch.setenv("MATSENSE_THREADS", "3")
    assert threads.kernel_threads(10) == 3
    with threads.single_threaded():
        assert threads.kernel_threads(2**30) == 1
    assert threads.kernel_threads(10) == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("MATSENSE_THREADS", bad)
        with pytest.raises(
            ValueError, match=f"MATSENSE_THREADS must be an integer >= 1, got '{bad}'"
        ):
            threads.kernel_threads(10)


def test_single_threaded_restores_numba_threads():
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    with threads.single_threaded():
        assert numba.get_num_threads() == 1
        A = np.random.default_rng(0).standard_normal((50, 8))
        r, s = numba_kernel.fused_numba(A, np.ones((1, 8)), np.zeros(50))
        assert np.allclose(s, (A @ np.ones(8)) @ A)
    assert numba.get_num_threads() == before


def test_numpy_kernel_runs_blas_single_threaded(monkeypatch):
    """Inside the loop BLAS is on one thread (its barriers are what hurt on shared cores)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []
    real = numpy_loop._rows_pass

    def spy(*args):
        libs = threads.numpy_blas_controller().lib_controllers  # NumPy's BLAS
        seen.append({lib.get_num_threads() for lib in libs})
        return real(*args)

    monkeypatch.setattr(numpy_loop, "_rows_pass", spy)
    A = np.random.default_rng(0).standard_normal((60, 10))
    with threadpoolctl.threadpool_limits(2, "blas"):
        numpy_loop.fused_numpy(A, np.ones((1, 10)), np.zeros(60), 7, 2)
    assert seen and all(s <= {1} for s in seen)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numba_kernel_equals_dense_formula(dtype):
    pytest.importorskip("numba")
    rng = np.random.default_rng(5)
    m, d = 203, 61  # m not a multiple of 4 or of the thread count: tail rows
    A = rng.standard_normal((m, d))
    y = rng.standard_normal(m)
    tol = 1e-12 if dtype == "float64" else 1e-5
    for B in range(1, dispatch.FUSED_MAX_BATCH + 1):
        p = rng.standard_normal((B, d))
        r0 = p @ A.T - y
        s0 = r0 @ A
        r, s = numba_kernel.fused_numba(A.astype(dtype), p.astype(dtype), y.astype(dtype))
        assert r.dtype == dtype and s.dtype == dtype
        assert _rel(r, r0) < tol and _rel(s, s0) < tol


def test_numba_kernel_propagates_nan():
    pytest.importorskip("numba")
    A = np.ones((9, 4))
    A[3, 2] = np.nan
    r, s = numba_kernel.fused_numba(A, np.ones((1, 4)), np.zeros(9))
    assert np.isnan(r[0, 3]) and np.isnan(s).all()


@pytest.mark.parametrize("kernel", ["two-pass", "numpy", "auto", "numba"])
def test_kernel_choice_by_environment(raw, kernel, monkeypatch):
    A, y = raw
    monkeypatch.setenv("MATSENSE_KERNEL", kernel)
    op = DenseOperator(A)
    P = np.random.default_rng(0).standard_normal((1, 9, 6))
    r0, S0 = _dense_formula(A, P, y)
    r, S = op.residual_and_adjoint(P, y)
    assert _rel(r, r0) < 1e-12 and _rel(S, S0) < 1e-12


def test_unknown_kernel_is_a_value_error(raw, monkeypatch):
    A, y = raw
    monkeypatch.setenv("MATSENSE_KERNEL", "cuda-magic")
    with pytest.raises(ValueError, match="auto, numba, numpy, two-pass"):
        DenseOperator(A).residual_and_adjoint(np.zeros((1, 9, 6)), y)


def test_fused_float32(raw):
    A, y = raw
    op = DenseOperator(A.astype(np.float32))
    op.block_rows = 10
    P = np.random.default_rng(0).standard_normal((1, 9, 6))
    r, S = op.residual_and_adjoint(P.astype(np.float32), y.astype(np.float32))
    assert r.dtype == np.float32 and S.dtype == np.float32
    r0, S0 = _dense_formula(A, P, y)
    assert _rel(S, S0) < 1e-4


def test_block_rows_from_cache():
    assert blocking.last_level_cache_bytes() > 0
    assert 2**20 <= blocking.default_block_bytes() <= 8 * 2**20
    assert blocking.block_rows_for(10**9, 8) == 1
    assert blocking.block_rows_for(100, 8, block_bytes=8000) == 10


def test_gaussian_problem_scales_in_place_bitwise():
    """Problem.gaussian keeps one copy of A and equals DenseOperator on the raw draw."""
    p = ms.Problem.gaussian(6, 5, r=2, m=40, seed=3)
    rng = np.random.default_rng(3)
    rng.standard_normal((6, 2)), rng.standard_normal((5, 2))  # U, V come first
    ref = DenseOperator(rng.standard_normal((40, 6, 5)))
    np.testing.assert_array_equal(p.operator.A_flat, ref.A_flat)


def test_gaussian_peak_memory_one_copy():
    m, n = 400, 30
    tracemalloc.start()
    p = ms.Problem.gaussian(n, r=2, m=m, seed=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert p.operator.nbytes == m * n * n * 8
    assert peak < 1.15 * p.operator.nbytes


@pytest.mark.parametrize("B", [1, 3, 8])
def test_iteration_allocates_nothing_of_operator_size(B):
    p = ms.Problem.gaussian(30, r=2, m=600, seed=0)
    P = np.random.default_rng(0).standard_normal((B, 30, 30))
    p.residual_and_adjoint(P)
    tracemalloc.start()
    p.residual_and_adjoint(P)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # r (B·m), S and a partial sum (B·n1·n2 each): far below the m·n1·n2 data.
    assert peak < 8 * (B * 600 + 4 * B * 900) + 10_000
    assert peak < p.operator.nbytes / 10


# -------------------------------------------------------------- symmetric operator
@pytest.fixture(scope="module")
def square():
    rng = np.random.default_rng(11)
    m, n = 123, 8
    return rng.standard_normal((m, n, n)), rng.standard_normal(m)


def test_packing_is_an_isometry_on_symmetric_matrices():
    rng = np.random.default_rng(0)
    S = _sym(rng.standard_normal((4, 7, 7)))
    T = _sym(rng.standard_normal((4, 7, 7)))
    op = SymmetricOperator(rng.standard_normal((3, 7, 7)))
    assert _rel(np.sum(op.pack(S) * op.pack(T), axis=1), np.sum(S * T, axis=(1, 2))) < 1e-13
    np.testing.assert_allclose(op.unpack(op.pack(S)), S, rtol=0, atol=1e-14)


@pytest.mark.parametrize("B", [1, 2, 6])
def test_symmetric_operator_matches_dense_on_symmetric_P(square, B):
    A, y = square
    op = SymmetricOperator(A)
    rng = np.random.default_rng(B)
    P = _sym(rng.standard_normal((B, 8, 8)))
    r0, S0 = _dense_formula(A, P, y)
    for block_rows in [1, 5, int(rng.integers(2, 120)), None]:
        op.block_rows = block_rows
        r, S = op.residual_and_adjoint(P, y)
        assert _rel(r, r0) < 1e-12
        assert _rel(S, _sym(S0)) < 1e-12
        np.testing.assert_array_equal(S, np.swapaxes(S, 1, 2))


def test_symmetric_operator_on_asymmetric_P_measures_sym_part(square):
    A, y = square
    op = SymmetricOperator(A)
    P = np.random.default_rng(2).standard_normal((3, 8, 8))
    r0, S0 = _dense_formula(A, _sym(P), y)
    r, S = op.residual_and_adjoint(P, y)
    assert _rel(r, r0) < 1e-12 and _rel(S, _sym(S0)) < 1e-12
    # and it differs from the dense operator on the same asymmetric P
    r_dense, _ = _dense_formula(A, P, y)
    assert _rel(r, r_dense) > 1e-3


def test_symmetric_operator_adjoint_and_matrix(square):
    A, _ = square
    op = SymmetricOperator(A)
    m = A.shape[0]
    np.testing.assert_allclose(
        op.as_matrix(), _sym(A).reshape(m, -1) / math.sqrt(m), rtol=0, atol=1e-15
    )
    rng = np.random.default_rng(4)
    M = rng.standard_normal((2, 8, 8))
    z = rng.standard_normal((2, m))
    assert _rel(np.sum(op.apply(M) * z, 1), np.sum(M * op.adjoint(z), (1, 2))) < 1e-13
    assert op.nbytes == m * 36 * 8  # n(n+1)/2 = 36 entries per row


def test_with_symmetric_operator_same_xxt_trajectory():
    p = ms.Problem.gaussian(12, r=2, m=300, symmetric=True, seed=5)
    ps = p.with_symmetric_operator()
    assert isinstance(ps.operator, SymmetricOperator)
    assert ps.y is p.y and ps.M_star is p.M_star
    assert ps.operator.nbytes < 0.55 * p.operator.nbytes
    X0 = symmetric_random(p, 3, 0.05, seed=1)
    a = ms.run(p, ms.GD(step_size=0.2), X0, iters=150)
    b = ms.run(ps, ms.GD(step_size=0.2), X0, iters=150)
    assert _rel(b.factors[0], a.factors[0]) < 1e-10
    assert _rel(b.history["error"], a.history["error"]) < 1e-9


def test_symmetric_operator_does_not_see_antisymmetric_parts(square):
    """Why F Gᵀ runs on the symmetrized operator differ: F Gᵀ + K, K = −Kᵀ, measures the same."""
    A, y = square
    op = SymmetricOperator(A)
    rng = np.random.default_rng(8)
    P = rng.standard_normal((1, 8, 8))
    K = rng.standard_normal((1, 8, 8))
    K = K - np.swapaxes(K, 1, 2)
    r1, S1 = op.residual_and_adjoint(P, y)
    r2, S2 = op.residual_and_adjoint(P + K, y)
    assert _rel(r2, r1) < 1e-12 and _rel(S2, S1) < 1e-12


def test_with_symmetric_operator_rejects_asymmetric_problem():
    p = ms.Problem.gaussian(6, r=1, m=50, seed=0)
    with pytest.raises(ValueError, match="symmetric"):
        p.with_symmetric_operator()
    with pytest.raises(ValueError, match="square"):
        SymmetricOperator(np.zeros((3, 4, 5)))
