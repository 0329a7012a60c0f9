"""What the driver checks before a run starts: the starting factors, the run's options, and
whether its state and history fit in memory (:func:`state_bytes`)."""

from __future__ import annotations

from .. import _validate as V
from .. import backend
from ..methods.base import as_factors


def prepare_init(problem, init):
    """Validate the user's factors, add the batch axis, move them to the problem's backend."""
    factors = as_factors(init)
    n1, n2 = problem.shape
    names = ("F0", "G0") if len(factors) == 2 else ("X0",)
    if len(factors) == 1 and n1 != n2:
        raise ValueError(f"X Xᵀ needs a square problem, got shape {(n1, n2)}; pass init=(F0, G0)")
    arrs = [V.real_array(nm, f) for nm, f in zip(names, factors)]
    for nm, a in zip(names, arrs):
        V.ndim_in(nm, a, (2, 3))
    batched = arrs[0].ndim == 3
    if any(a.ndim != arrs[0].ndim for a in arrs):
        raise ValueError("F0 and G0 must both have a batch axis or neither")
    if not batched:
        arrs = [a[None] for a in arrs]
    B, _, k = arrs[0].shape
    rows = (n1, n2) if len(arrs) == 2 else (n1,)
    for nm, a, n in zip(names, arrs, rows):
        if a.shape[0] != B or a.shape[1] != n or a.shape[2] != k:
            expect = f"(B, {n}, k)" if batched else f"({n}, k)"
            raise ValueError(
                f"{nm} must have shape {expect} with one k for all factors, "
                f"got {tuple(a.shape[1:] if not batched else a.shape)}"
            )
    V.int_in_range("k (columns of the factors)", k, 1, min(n1, n2))
    if len(factors) == 1 and problem.has_truth and not problem.symmetric:
        raise ValueError(
            "X Xᵀ can only fit a symmetric PSD M*, and this problem's M* is not "
            "symmetric: pass init=(F0, G0), or build the problem with symmetric=True"
        )
    ref = problem.y
    xp = backend.namespace(ref)
    out = []
    for nm, a in zip(names, arrs):
        V.finite_array(nm, a)
        out.append(xp.asarray(a, dtype=ref.dtype, device=backend.device_of(ref)))
    return tuple(out), batched


def check_options(iters, record_every, tol, divergence_factor, callback):
    """The run's options, validated (and normalized): (iters, record_every, tol, factor)."""
    iters = V.int_in_range("iters", iters, 0)
    record_every = V.int_in_range("record_every", record_every, 1)
    if tol is not None:
        tol = V.positive_float("tol", tol)
    divergence_factor = V.positive_float("divergence_factor", divergence_factor)
    if callback is not None and not callable(callback):
        raise V.ArgumentTypeError(
            f"callback must be callable (t, info) -> bool, got "
            f"{callback!r} ({type(callback).__name__})"
        )
    return iters, record_every, tol, divergence_factor


def state_bytes(shape, m: int, B: int, k: int, iters: int, record_every: int, record=None) -> int:
    """Estimated bytes of a run on an n1 × n2 problem with m measurements: the method's state
    (a few copies of the factors), the residuals, and the recorded history (rows × B × the
    recorded quantities)."""
    n1, n2 = shape
    rows = max(iters, 0) // max(record_every, 1) + 2
    per_row = 8 + (k if record is None or "singular_values" in record else 0)
    return 8 * (B * (8 * (n1 + n2) * k + 3 * m) + rows * B * per_row)


def check_memory(problem, factors, iters: int, record_every: int, record, max_memory) -> None:
    """ValueError (one line) when the run's state and history would not fit (see
    :func:`matsense.memory.check`)."""
    from .. import memory

    B = factors[0].shape[0]
    memory.check(
        f"the run's state and history (batch of {B}, {iters} iterations, "
        f"recorded every {record_every})",
        state_bytes(problem.shape, problem.m, B, factors[0].shape[-1], iters, record_every, record),
        max_memory,
    )


__all__ = ["prepare_init", "check_options", "state_bytes", "check_memory"]
