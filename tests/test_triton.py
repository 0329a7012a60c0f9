"""The experimental Triton one-pass kernel, run by Triton's CPU interpreter.

``TRITON_INTERPRET=1`` must be set before Triton is imported, so each check runs in a
fresh subprocess. Skipped when torch or Triton is not installed (CI installs both).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")


def _interpret(code: str, kernel: str = "triton") -> str:
    env = dict(os.environ, TRITON_INTERPRET="1", MATSENSE_KERNEL=kernel)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_triton_kernel_equals_the_dense_formula():
    out = _interpret("""
        import math
        import numpy as np, torch
        import matsense as ms
        from matsense.operators import _triton

        calls = []
        real = _triton.fused_triton
        def spy(*a):
            calls.append(1)
            return real(*a)
        _triton.fused_triton = spy

        rng = np.random.default_rng(0)
        # m not a multiple of BLOCK_M; d below and above BLOCK_D (masked columns, two chunks)
        for n, m in ((7, 61), (25, 130)):
            p = ms.Problem.gaussian(n, r=2, m=m, seed=1)
            A_raw = np.asarray(p.operator.A_flat).reshape(m, n, n) * math.sqrt(m)
            P = rng.standard_normal((1, n, n))
            r0 = np.einsum("ijk,bjk->bi", A_raw, P) / math.sqrt(m) - np.asarray(p.y)
            S0 = np.einsum("bi,ijk->bjk", r0, A_raw) / math.sqrt(m)
            for dtype, tol in (("float64", 1e-12), ("float32", 2e-5)):
                pt = p.to("torch", dtype=dtype)
                r, S = pt.residual_and_adjoint(torch.as_tensor(P, dtype=getattr(torch, dtype)))
                assert r.dtype == getattr(torch, dtype) and tuple(S.shape) == (1, n, n)
                er = np.abs(r.numpy() - r0).max() / np.abs(r0).max()
                es = np.abs(S.numpy() - S0).max() / np.abs(S0).max()
                assert er < tol and es < tol, (n, dtype, er, es)
        assert len(calls) == 4
        print("ok")
    """)
    assert out.strip() == "ok"


def test_gd_with_the_triton_kernel_follows_the_numpy_trajectory():
    out = _interpret("""
        import numpy as np
        import matsense as ms
        from matsense.init import small_random

        p = ms.Problem.gaussian(8, r=2, m=120, singular_values=[1.0, 0.5], seed=0)
        F, G = small_random(p, 3, 0.1, seed=1)
        ref = ms.run(p, ms.GD(0.3), (F, G), 60, record_every=20)
        tri = ms.run(p.to("torch"), ms.GD(0.3), (F, G), 60, record_every=20)
        for a, b in zip(ref.factors, tri.factors):
            b = b.numpy()
            assert np.abs(a - b).max() <= 1e-10 * np.abs(a).max()
        assert np.allclose(ref.history["rel_error"], tri.history["rel_error"], rtol=1e-10)
        print("ok")
    """)
    assert out.strip() == "ok"


def test_triton_kernel_refuses_what_it_cannot_run():
    out = _interpret("""
        import numpy as np, torch
        import matsense as ms
        from matsense.operators import _triton

        pt = ms.Problem.gaussian(6, r=1, m=40, seed=0).to("torch")
        try:  # batches go elsewhere: the kernel is for one trajectory
            _triton.fused_triton(pt.operator.A_flat, torch.zeros((2, 36), dtype=torch.float64),
                                 pt.y)
        except ValueError as e:
            print(e)
        import os
        os.environ["TRITON_INTERPRET"] = "0"  # a CPU tensor without the interpreter
        try:
            _triton.fused_triton(pt.operator.A_flat, torch.zeros((1, 36), dtype=torch.float64),
                                 pt.y)
        except ValueError as e:
            print(e)
    """)
    lines = out.strip().splitlines()
    assert lines[0] == "MATSENSE_KERNEL=triton runs one trajectory at a time, got a batch of 2"
    assert lines[1].startswith("MATSENSE_KERNEL=triton needs a torch problem on CUDA")


def test_numpy_problems_ignore_the_triton_setting():
    out = _interpret("""
        import numpy as np
        import matsense as ms
        p = ms.Problem.gaussian(6, r=1, m=40, seed=0)
        r, S = p.residual_and_adjoint(np.ones((1, 6, 6)))
        A = p.operator.A_flat
        r0 = np.ones((1, 36)) @ A.T - p.y
        assert np.allclose(r, r0) and np.allclose(S.reshape(1, -1), r0 @ A)
        print("ok")
    """)
    assert out.strip() == "ok"
