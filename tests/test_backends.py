"""Backends: the same trajectory on NumPy and PyTorch; validated backend/device/dtype requests."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import matsense as ms
from matsense import backend
from matsense.init import small_random, symmetric_random
from matsense.operators import DenseOperator, SymmetricOperator


def _rel(a, b):
    a, b = backend.to_numpy(a), backend.to_numpy(b)
    return float(np.nanmax(np.abs(a - b)) / max(np.nanmax(np.abs(b)), 1e-300))


@pytest.fixture(scope="module")
def asym():
    return ms.Problem.gaussian(15, 12, r=2, m=400, seed=2)


@pytest.fixture(scope="module")
def sym():
    return ms.Problem.gaussian(12, r=2, m=300, symmetric=True, seed=4)


# ------------------------------------------------------------- request validation
def test_unsupported_dtype_names_the_supported_ones(asym):
    with pytest.raises(ValueError, match="float64, float32.*float16"):
        asym.to(dtype="float16")
    with pytest.raises(ValueError, match="float64, float32"):
        backend.target("numpy", "cpu", "int32")


def test_unknown_backend_and_device(asym):
    with pytest.raises(ValueError, match="numpy, torch.*jax"):
        asym.to(backend="jax")
    with pytest.raises(ValueError, match="'cpu', 'cuda'"):
        asym.to(device="tpu")


def test_cuda_with_numpy_backend_is_refused(asym):
    with pytest.raises(ValueError, match="backend='torch'"):
        asym.to(device="cuda")


def test_torch_missing_is_one_clear_line(asym, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ValueError, match="needs PyTorch, which is not installed") as info:
        asym.to(backend="torch", device="cuda")
    assert "\n" not in str(info.value)


def test_numpy_dtype_conversion(asym):
    p32 = asym.to(dtype="float32")
    assert p32.operator.A_flat.dtype == np.float32 and p32.y.dtype == np.float32
    assert p32.meta["dtype"] == "float32"
    F0, G0 = small_random(asym, 2, 0.1, seed=0)
    t = ms.run(p32, ms.GD(step_size=0.3), (F0, G0), iters=20)
    assert t.factors[0].dtype == np.float32
    t64 = ms.run(asym, ms.GD(step_size=0.3), (F0, G0), iters=20)
    assert _rel(t.factors[0], t64.factors[0]) < 1e-4


def test_check_dtype_accepts_dtype_objects():
    assert backend.check_dtype(np.float32) == "float32"
    assert backend.check_dtype(np.dtype("float64")) == "float64"
    assert backend.check_dtype(float) == "float64"


# ------------------------------------------------------------------------- torch
def test_cuda_without_gpu_is_a_value_error(asym):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible; the error path cannot be exercised")
    with pytest.raises(ValueError, match="no CUDA GPU") as info:
        asym.to(backend="torch", device="cuda")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        asym.to(backend="torch", device="cuda:0", dtype="float32")


def test_to_torch_converts_everything(asym):
    torch = pytest.importorskip("torch")
    pt = asym.to(backend="torch")
    assert isinstance(pt.operator.A_flat, torch.Tensor) and isinstance(pt.y, torch.Tensor)
    assert isinstance(pt.M_star, torch.Tensor) and pt.y.dtype == torch.float64
    assert pt.meta["backend"] == "torch" and pt.meta["device"] == "cpu"
    # float64 CPU shares the operator's memory with the NumPy problem
    assert pt.operator.A_flat.data_ptr() == asym.operator.A_flat.ctypes.data
    back = pt.to("numpy")
    np.testing.assert_array_equal(back.operator.A_flat, asym.operator.A_flat)
    np.testing.assert_array_equal(back.y, asym.y)
    p32 = asym.to("torch", dtype="float32")
    assert p32.operator.A_flat.dtype == torch.float32 and p32.y.dtype == torch.float32


@pytest.mark.parametrize("B", [1, 3, 9])
def test_torch_operator_equals_numpy(asym, B):
    torch = pytest.importorskip("torch")
    pt = asym.to("torch")
    P = np.random.default_rng(B).standard_normal((B, 15, 12))
    r0, S0 = asym.residual_and_adjoint(P)
    r1, S1 = pt.residual_and_adjoint(torch.from_numpy(P))
    assert isinstance(S1, torch.Tensor)
    assert _rel(r1, r0) < 1e-12 and _rel(S1, S0) < 1e-12


def test_torch_symmetric_operator_equals_numpy(sym):
    torch = pytest.importorskip("torch")
    ps = sym.with_symmetric_operator()
    pst = ps.to("torch")
    assert isinstance(pst.operator, SymmetricOperator)
    assert pst.operator.full_to_packed.dtype == torch.int64
    P = np.random.default_rng(0).standard_normal((2, 12, 12))
    r0, S0 = ps.residual_and_adjoint(P)
    r1, S1 = pst.residual_and_adjoint(torch.from_numpy(P))
    assert _rel(r1, r0) < 1e-12 and _rel(S1, S0) < 1e-12
    # packing on torch directly gives the same operator
    op = SymmetricOperator.from_dense(sym.to("torch").operator)
    assert _rel(op.A_flat, ps.operator.A_flat) == 0


def _same_run(problem, method, init, iters):
    pytest.importorskip("torch")
    a = ms.run(problem, method, init, iters=iters)
    b = ms.run(problem.to("torch"), method, init, iters=iters)
    for fa, fb in zip(a.factors, b.factors):
        assert type(fb).__module__.startswith("torch")
        assert _rel(fb, fa) <= 1e-10
    for key in ("error", "residual_norm", "singular_values"):
        assert _rel(b.history[key], a.history[key]) <= 1e-10, key
    assert np.array_equal(a.status, b.status) and np.array_equal(a.iterations, b.iterations)
    return a, b


def test_same_gd_trajectory_numpy_torch_asymmetric(asym):
    _same_run(asym, ms.GD(step_size=0.3), small_random(asym, 3, 0.05, seed=1), 120)


def test_same_gd_trajectory_numpy_torch_symmetric(sym):
    _same_run(sym, ms.GD(step_size=0.2), symmetric_random(sym, 3, 0.05, seed=1), 120)


def test_same_rebalanced_gd_trajectory_numpy_torch(asym):
    a, b = _same_run(
        asym, ms.RebalancedGD(step_size=0.3, tau=0.05), small_random(asym, 3, 0.05, seed=1), 80
    )
    assert a.extras["switch_iteration"] == b.extras["switch_iteration"] >= 0


def test_same_batched_run_numpy_torch(asym):
    _same_run(
        asym, ms.GD(step_size=0.3), small_random(asym, 3, [0.05, 0.1, 0.02], seed=[1, 2, 3]), 60
    )


def test_torch_float32_run(asym):
    torch = pytest.importorskip("torch")
    F0, G0 = small_random(asym, 2, 0.1, seed=0)
    t = ms.run(asym.to("torch", dtype="float32"), ms.GD(step_size=0.3), (F0, G0), iters=30)
    assert t.factors[0].dtype == torch.float32
    ref = ms.run(asym, ms.GD(step_size=0.3), (F0, G0), iters=30)
    assert _rel(t.factors[0], ref.factors[0]) < 1e-4


def test_dense_operator_from_torch_arrays():
    torch = pytest.importorskip("torch")
    A = np.random.default_rng(0).standard_normal((20, 3, 4))
    op_t = DenseOperator(torch.from_numpy(A))
    op_n = DenseOperator(A)
    assert _rel(op_t.A_flat, op_n.A_flat) == 0
