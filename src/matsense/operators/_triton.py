"""One pass over the measurement data on a GPU: a Triton kernel (opt-in, experimental).

The CUDA path of :func:`~matsense.operators.dispatch.residual_and_adjoint_flat` is
two matrix products, which read A twice: for one trajectory that is about 2×
the one-pass floor bytes(A) / HBM bandwidth. This kernel does on the GPU what
the CPU kernels do: each program takes a contiguous range of rows; for every
``BLOCK_M`` rows it computes their residuals (dot products with p, streamed in
``BLOCK_D`` columns) and then adds their share r_b A_b to a private partial
sum of 𝒜*(r) while the rows are still in cache. The partial sums (one row of
length d per program) are added in program order afterwards, so the result
is deterministic.

Status: **correctness is tested** (``TRITON_INTERPRET=1`` runs the kernel on
CPU tensors, ``tests/test_triton.py``), **speed is not measured** — no GPU was
available when it was written. It is therefore opt-in:
``MATSENSE_KERNEL=triton`` with a torch problem on CUDA and one trajectory;
``benchmarks/bench_iteration.py`` times it next to the two-pass code when
Triton and a GPU are there. Block sizes are first guesses, to be tuned there.
"""

from __future__ import annotations

import functools
import os

BLOCK_M = 8
BLOCK_D = 512


@functools.lru_cache(maxsize=1)
def _kernel():
    """The compiled-on-first-use Triton kernel, or None when Triton is not installed."""
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return None

    @triton.jit
    def one_pass(
        A, P, Y, R, PART, m, d, rows_per_prog, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr
    ):  # pragma: no cover - JIT
        pid = tl.program_id(0)
        row_lo = pid * rows_per_prog
        row_hi = tl.minimum(row_lo + rows_per_prog, m)
        offs_m = tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        for start in range(row_lo, row_hi, BLOCK_M):
            rows = start + offs_m
            rmask = rows < row_hi
            acc = tl.zeros((BLOCK_M,), dtype=A.dtype.element_ty)
            for c0 in range(0, d, BLOCK_D):
                cols = c0 + offs_d
                cmask = cols < d
                a = tl.load(
                    A + rows[:, None] * d + cols[None, :],
                    mask=rmask[:, None] & cmask[None, :],
                    other=0.0,
                )
                pv = tl.load(P + cols, mask=cmask, other=0.0)
                acc += tl.sum(a * pv[None, :], axis=1)
            res = acc - tl.load(Y + rows, mask=rmask, other=0.0)
            res = tl.where(rmask, res, 0.0)
            tl.store(R + rows, res, mask=rmask)
            for c0 in range(0, d, BLOCK_D):
                cols = c0 + offs_d
                cmask = cols < d
                a = tl.load(
                    A + rows[:, None] * d + cols[None, :],
                    mask=rmask[:, None] & cmask[None, :],
                    other=0.0,
                )
                part = PART + pid * d + cols
                tl.store(
                    part,
                    tl.load(part, mask=cmask, other=0.0) + tl.sum(a * res[:, None], axis=0),
                    mask=cmask,
                )

    return one_pass


def interpreted() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "") == "1"


def check_usable(A, p) -> None:
    """ValueError saying why ``MATSENSE_KERNEL=triton`` cannot run on these arrays."""
    if _kernel() is None:
        raise ValueError("MATSENSE_KERNEL=triton needs Triton (pip install triton)")
    if not hasattr(A, "is_cuda") or not (A.is_cuda or interpreted()):
        raise ValueError(
            "MATSENSE_KERNEL=triton needs a torch problem on CUDA "
            "(problem.to('torch', 'cuda')), got "
            f"{type(A).__module__}.{type(A).__name__}"
        )
    if p.shape[0] != 1:
        raise ValueError(
            f"MATSENSE_KERNEL=triton runs one trajectory at a time, got a batch of {p.shape[0]}"
        )


def _programs(A, m: int) -> int:
    import triton

    blocks = triton.cdiv(m, BLOCK_M)
    if A.is_cuda:
        import torch

        sms = torch.cuda.get_device_properties(A.device).multi_processor_count
        return max(1, min(blocks, 4 * sms))
    return max(1, min(blocks, 4))


def fused_triton(A, p, y):
    """r = p Aᵀ − y and s = r A for one trajectory (p of shape (1, d)), one pass over A.

    ``A`` (m, d) C-contiguous torch tensor on CUDA (or on the CPU under
    ``TRITON_INTERPRET=1``), float32 or float64; returns r (1, m), s (1, d).
    """
    import torch

    check_usable(A, p)
    m, d = A.shape
    A = A.contiguous()
    p1 = p.reshape(d).contiguous()
    y1 = y.reshape(m).to(A.dtype).contiguous()
    programs = _programs(A, m)
    rows_per_prog = -(-m // programs)
    programs = -(-m // rows_per_prog)
    r = torch.empty(m, dtype=A.dtype, device=A.device)
    part = torch.zeros((programs, d), dtype=A.dtype, device=A.device)
    _kernel()[(programs,)](
        A, p1, y1, r, part, m, d, rows_per_prog, BLOCK_M=BLOCK_M, BLOCK_D=BLOCK_D
    )
    return r[None], part.sum(dim=0)[None]
