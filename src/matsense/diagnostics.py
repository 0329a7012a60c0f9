"""Diagnostics of an iterate: error, loss, imbalance, subspace components, singular values.

All functions are batched (leading axis B) and backend-agnostic; symbols follow
the paper (F, G, X, M_star, Δ = FᵀF − GᵀG).
"""

from __future__ import annotations

import functools

import numpy as np

from . import backend, limits
from .methods import base as _base


# ------------------------------------------------------------ argument checks
# Cheap (tuple comparisons only: some of these functions run once per history row) and
# before any array operation, so that a mismatch is a ValueError naming the argument and the
# shape it should have, never NumPy's broadcasting or gufunc message from deep inside.
def _what(value) -> str:
    """A short one-line description of a bad argument."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"a {type(value).__name__} of shape {tuple(shape)}"
    text = " ".join(repr(value).split())
    return f"{text[:57] + '...' if len(text) > 60 else text} ({type(value).__name__})"


def _shape(name: str, a, expected: str, min_ndim: int = 2) -> tuple:
    """``a``'s shape; TypeError if it is not an array, ValueError with fewer than ``min_ndim`` axes."""
    shape = getattr(a, "shape", None)
    if shape is None or not hasattr(a, "ndim") or isinstance(a, (str, bytes)):
        raise TypeError(f"{name} must be an array of shape {expected}, got {_what(a)}")
    shape = tuple(shape)
    if len(shape) < min_ndim:
        raise ValueError(f"{name} must be an array of shape {expected}, got shape {shape}")
    return shape


def _same_batch(name: str, shape: tuple, other: str, other_shape: tuple, expected: str) -> None:
    """ValueError unless the batch axes (all but the last two) of two shapes broadcast."""
    a, b = shape[:-2], other_shape[:-2]
    if a == b or not a or not b:
        return
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        raise ValueError(
            f"{name} must be an array of shape {expected} whose batch axes "
            f"{a} match {other}'s {b} (shape {other_shape})"
        ) from None


def _factor_pair(F, G, names=("F", "G")) -> tuple[tuple, tuple]:
    """The shapes of F (…, n1, k) and G (…, n2, k), checked to agree on k and the batch."""
    f, g = names
    fs = _shape(f, F, "(B, n1, k)")
    gs = _shape(g, G, f"(B, n2, k) with k = {fs[-1]} columns like {f}")
    if gs[-1] != fs[-1]:
        raise ValueError(
            f"{g} must be an array of shape (B, n2, k) with k = {fs[-1]} columns "
            f"like {f} (shape {fs}), got shape {gs}"
        )
    _same_batch(g, gs, f, fs, "(B, n2, k)")
    return fs, gs


def _factors(factors, name: str = "factors") -> tuple:
    """The shapes of ``factors``: (F, G) or (X,), each (…, n, k); X is used as both sides."""
    if not isinstance(factors, (tuple, list)) or len(factors) not in (1, 2):
        raise TypeError(
            f"{name} must be a tuple (F, G) of arrays (B, n1, k), (B, n2, k) or "
            f"(X,) with X (B, n, k), got {_what(factors)}"
        )
    if len(factors) == 1:
        xs = _shape("X", factors[0], "(B, n, k)")
        return xs, xs
    return _factor_pair(*factors)


def _basis(name: str, a, n: int, side: str) -> tuple:
    """An orthonormal basis of shape (n, r) for a factor with n rows."""
    shape = _shape(name, a, f"(n, r) with n = {n} rows like {side}")
    if shape[-2] != n:
        raise ValueError(
            f"{name} must be an array of shape (n, r) with n = {n} rows like "
            f"{side}, got shape {shape}"
        )
    return shape


def _core(name: str, a, k: int, like: tuple, other: str = "F") -> None:
    """A k × k (batched) matrix such as Δ₀."""
    shape = _shape(name, a, f"(B, k, k) with k = {k}")
    if shape[-2:] != (k, k):
        raise ValueError(
            f"{name} must be an array of shape (B, k, k) with k = {k} like the "
            f"factors, got shape {shape}"
        )
    _same_batch(name, shape, other, like, f"(B, {k}, {k})")


def product(factors: tuple):
    """P = F Gᵀ for ``(F, G)``, P = X Xᵀ for ``(X,)`` (batched)."""
    _factors(factors)
    return _base.product(factors)


def qr_r(x):
    """The R factor of the thin QR of each matrix of ``x`` (…, n, j), without forming Q.

    The same R as ``xp.linalg.qr(x).R`` (both come from the one Householder
    factorization), at half the cost on tall matrices: NumPy ``mode='r'``,
    torch ``mode='r'``.
    """
    if backend.is_torch_array(x):
        import torch

        return torch.linalg.qr(x, mode="r").R
    if isinstance(x, np.ndarray):
        return np.linalg.qr(x, mode="r")
    return backend.namespace(x).linalg.qr(x).R


def error(P, M_star):
    """‖P − M*‖_F per trajectory; P (…, n1, n2), M_star (n1, n2) or (…, n1, n2)."""
    ps = _shape("P", P, "(B, n1, n2) (the product F Gᵀ, not the factors)")
    ms = _shape("M_star", M_star, f"(n1, n2) = {ps[-2:]} like P")
    if ms[-2:] != ps[-2:]:
        raise ValueError(
            f"M_star must be an array of shape (n1, n2) = {ps[-2:]} like P's last "
            f"two axes (P has shape {ps}), got shape {ms}"
        )
    _same_batch("M_star", ms, "P", ps, f"(n1, n2) = {ps[-2:]}")
    xp = backend.namespace(P)
    return xp.linalg.matrix_norm(P - M_star)


def loss(residual_norm, symmetric_factors: bool):
    """f = ¼‖r‖² for X Xᵀ, ½‖r‖² for F Gᵀ (docs/conventions.md)."""
    if isinstance(residual_norm, (str, bytes)) or not (
        hasattr(residual_norm, "dtype") or isinstance(residual_norm, (int, float))
    ):
        raise TypeError(
            f"residual_norm must be a number or an array of them, got {_what(residual_norm)}"
        )
    if not isinstance(symmetric_factors, (bool, np.bool_)):
        raise TypeError(
            f"symmetric_factors must be True (X Xᵀ) or False (F Gᵀ), got {_what(symmetric_factors)}"
        )
    return residual_norm**2 / (4 if symmetric_factors else 2)


def imbalance(F, G):
    """Δ = FᵀF − GᵀG (B, k, k)."""
    _factor_pair(F, G)
    return F.mT @ F - G.mT @ G


def imbalance_drift(F, G, Delta0):
    """‖Δ_t − Δ_0‖_F per trajectory; Delta0 (B, k, k) or (k, k)."""
    fs, _ = _factor_pair(F, G)
    _core("Delta0", Delta0, fs[-1], fs)
    xp = backend.namespace(F)
    return xp.linalg.matrix_norm(imbalance(F, G) - Delta0)


def _off(Y, U):
    # ‖(I − U Uᵀ) Y‖_F without forming the n×n projector.
    xp = backend.namespace(Y)
    return xp.linalg.matrix_norm(Y - U @ (U.mT @ Y))


def off_subspace(factors: tuple, U_star, V_star):
    """Norm of the factors' components outside M*'s column/row spaces.

    √(‖(I−UUᵀ)F‖² + ‖(I−VVᵀ)G‖²) for (F, G); ‖(I−UUᵀ)X‖ for X.
    """
    fs, gs = _factors(factors)
    _basis("U_star", U_star, fs[-2], "F (or X)")
    if len(factors) == 2:
        _basis("V_star", V_star, gs[-2], "G")
    if len(factors) == 1:
        return _off(factors[0], U_star)
    F, G = factors
    return (_off(F, U_star) ** 2 + _off(G, V_star) ** 2) ** 0.5


def _compiled(build):
    """Decorator: ``build(numba)`` once per process, the compiled kernel it returns — or
    None when numba cannot be imported (the callers then use NumPy)."""

    @functools.lru_cache(maxsize=1)
    def kernel():
        from .threads import numba_module

        numba = numba_module()
        return None if numba is None else build(numba)

    kernel.__doc__ = build.__doc__
    return kernel


@_compiled
def _row_kernel(numba):
    """The compiled kernel of :func:`row_stats` (:func:`matsense._row_stats_kernel.kernel`)."""
    from . import _row_stats_kernel

    return _row_stats_kernel.kernel


#: The columns of :func:`row_stats`: error, off-subspace norm, imbalance drift, then σ₁ … σ_k.
ROW_COLUMNS = ("error", "off_subspace", "imbalance_drift")
_F64 = np.dtype(np.float64)
_NONE2, _NONE3 = np.empty((0, 0)), np.empty((0, 0, 0))  # "not asked" for row_stats' kernel


def row_stats(
    factors: tuple, *, M_star=None, U=None, V=None, Delta0=None, delta=False, singular_values=False
):
    """A history row's quantities of each trajectory in one compiled call.

    Returns ``(out, Delta)``: ``out`` (B, 3), or (B, 3 + k) with
    ``singular_values``, holds ‖P − M*‖_F (with the dense ``M_star``), the
    off-subspace norm (with ``U``, and ``V`` for F Gᵀ), ‖Δ − Δ₀‖_F (with
    ``Delta0``), then σ(P) descending — NaN in the columns not asked for; ``Delta`` = FᵀF − GᵀG when
    ``delta`` (else None). The same numbers as :func:`error`,
    :func:`off_subspace`, :func:`imbalance_drift`, :func:`imbalance` and
    :func:`product_singular_values`' NumPy code, to rounding. None when the
    call does not apply: inputs that are not NumPy float64 arrays (factors
    batched (B, n, k)), or no numba; callers then use NumPy.

    Why one call: inside a run each history row follows an operator pass that
    has streamed the measurement data through every cache, so each separate
    NumPy call pays cold-cache misses for its code and data — ~20–30 µs each,
    measured at n = 100, against ~1 µs warm. This wrapper itself makes one
    NumPy call (the output).
    """
    if not _row_shapes_agree(factors, M_star, U, V, Delta0):  # then the checks raise
        fs, gs = _factors(factors)
        _row_args(fs, gs, len(factors) == 1, M_star, U, V, Delta0)
    symmetric = len(factors) == 1
    F = factors[0]
    G = F if symmetric else factors[1]
    args = []
    for a, ndim in ((F, 3), (G, 3), (M_star, 2), (U, 2), (V, 2), (Delta0, 3)):
        if a is None:
            args.append(_NONE2 if ndim == 2 else _NONE3)
        elif type(a) is not np.ndarray or a.dtype is not _F64 or a.ndim != ndim:
            return None
        else:  # one compiled version: C-contiguous arrays
            args.append(a if a.flags.c_contiguous else np.ascontiguousarray(a))
    B = F.shape[0]
    if G.shape[0] != B or (Delta0 is not None and Delta0.shape[0] != B):
        return None  # batch axes that only broadcast: the kernel indexes each array by b
    kernel = _row_kernel()
    if kernel is None:
        return None
    k = F.shape[-1]
    out = np.empty((B, len(ROW_COLUMNS) + (k if singular_values else 0)))
    Delta = np.empty((B, k, k)) if delta else _NONE3
    kernel(*args, symmetric, bool(singular_values), out, Delta)
    return out, (Delta if delta else None)


def _row_shapes_agree(factors, M_star, U, V, Delta0) -> bool:
    """The common case of :func:`row_stats` in a few tuple comparisons (it runs once per
    history row): batched factors of one batch and one k, and arguments that fit them.
    False sends the call through the full checks, which name what does not fit."""
    try:
        fs = factors[0].shape
        gs = factors[-1].shape if len(factors) == 2 else fs
        if len(fs) != 3 or len(gs) != 3 or fs[0] != gs[0] or fs[2] != gs[2]:
            return False
        return (
            (M_star is None or M_star.shape[-2:] == (fs[1], gs[1]))
            and (U is None or (V is not None or len(factors) == 1) and U.shape[-2] == fs[1])
            and (
                V is None
                or len(factors) == 1
                or (V.shape[-2] == gs[1] and V.shape[-1] == U.shape[-1])
            )
            and (Delta0 is None or Delta0.shape[-2:] == (fs[2], fs[2]))
        )
    except (AttributeError, TypeError, IndexError):
        return False


def _row_args(fs, gs, symmetric, M_star, U, V, Delta0) -> None:
    """Checks of row_stats' optional arguments against the factors' shapes (the compiled
    kernel indexes them by those shapes, so a mismatch must never reach it)."""
    if M_star is not None:
        ms = _shape("M_star", M_star, f"(n1, n2) = {(fs[-2], gs[-2])}")
        if ms[-2:] != (fs[-2], gs[-2]):
            raise ValueError(
                f"M_star must be an array of shape (n1, n2) = {(fs[-2], gs[-2])} "
                f"like the factors' rows, got shape {ms}"
            )
    if U is not None:
        _basis("U", U, fs[-2], "F (or X)")
    if V is not None and not symmetric:
        _basis("V", V, gs[-2], "G")
        if U is not None and getattr(V, "shape", (0, 0))[-1] != U.shape[-1]:
            raise ValueError(
                f"V must be an array of shape (n2, r) with r = {U.shape[-1]} "
                f"columns like U, got shape {tuple(V.shape)}"
            )
    if U is not None and V is None and not symmetric:
        raise ValueError(
            "V must be given with U for factors (F, G): the off-subspace norm "
            "needs both M*'s column space U (n1, r) and row space V (n2, r)"
        )
    if Delta0 is not None:
        _core("Delta0", Delta0, fs[-1], fs)


def factor_stats(F, G, U, V, Delta0=None):
    """(off-subspace norm, ‖Δ − Δ₀‖_F, Δ) per trajectory in one compiled call, Δ = FᵀF − GᵀG.

    The same quantities as :func:`off_subspace`, :func:`imbalance_drift` and
    :func:`imbalance` (to rounding; ``Delta0=None`` means Δ₀ = 0), for NumPy
    float64 factors; None otherwise or without numba (see :func:`row_stats`).
    Take Δ₀ from this function too, so that the drift at t = 0 is exactly 0.
    """
    fs, _ = _factor_pair(F, G)
    if U is None or V is None:
        raise ValueError(
            "factor_stats needs U (n1, r) and V (n2, r), M*'s column and row "
            f"spaces; got U = {_what(U)}, V = {_what(V)}"
        )
    if Delta0 is None and isinstance(F, np.ndarray):
        Delta0 = np.zeros((F.shape[0], F.shape[-1], F.shape[-1]))
    got = row_stats((F, G), U=U, V=V, Delta0=Delta0, delta=True)
    if got is None:
        return None
    out, Delta = got
    return out[:, 1].copy(), out[:, 2].copy(), Delta


def redundant_imbalance(F, G, r: int):
    """The smallest |eigenvalue| of Δ = FᵀF − GᵀG on the k − r redundant directions, per trajectory.

    The redundant directions are the k − r right singular vectors of the
    stacked factors [F; G] with the smallest singular values (the factor
    directions the fit does not use). On such a direction v the product decays
    like 1/t while |vᵀΔv| ≪ its size and linearly at rate ≈ η|vᵀΔv| after, so
    the smallest one sets when a balanced start can leave the 1/t regime.
    """
    fs, _ = _factor_pair(F, G)
    k = fs[-1]
    if isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, np.integer)):
        raise TypeError(f"r must be an integer in [0, k) with k = {k}, got {_what(r)}")
    xp = backend.namespace(F, G)
    if not 0 <= r < k:
        raise ValueError(f"r must be in [0, k) with k = {k}, got {r}")
    _, _, Vh = xp.linalg.svd(xp.concat([F, G], axis=-2), full_matrices=False)
    Ve = Vh[..., r:, :].mT
    D = Ve.mT @ imbalance(F, G) @ Ve
    w = xp.linalg.eigvalsh((D + D.mT) / 2)
    return xp.min(xp.abs(w), axis=-1)


class Truth:
    """M* as the diagnostics see it: exact low-rank factors, or a dense array.

    With factors (M* = U S Vᵀ, U and V orthonormal, S r×r — what generated
    problems know) the error of P = F Gᵀ is computed without an n1 × n2 matrix:

        F Gᵀ − M* = [F, −U S] [G, V]ᵀ = Q₁ R₁ R₂ᵀ Q₂ᵀ   ⇒   ‖F Gᵀ − M*‖_F = ‖R₁ R₂ᵀ‖_F,

    with thin QR factorizations of the n×(k + r) stacks, O((n1 + n2)(k + r)²)
    per trajectory. The entries of R₁R₂ᵀ carry an absolute rounding error of
    ~1e-16‖F‖‖G‖, so the error is accurate to ~1e-16‖M*‖ even when it is tiny
    (a formula in squared norms would lose half the digits). Without factors
    (``Problem.from_arrays`` with a dense M*) it is ‖F Gᵀ − M*‖_F directly.
    """

    def __init__(self, *, U=None, S=None, V=None, dense=None, norm: float):
        self.U, self.S, self.V, self.dense = U, S, V, dense
        self.norm = float(norm)
        # Within the dense limit for errors (matsense.limits.DENSE, use 'error'), a known dense
        # M* is used: forming F Gᵀ costs less than the two QR factorizations, and is as
        # accurate (no squared norms).
        small = dense is not None and limits.DENSE.allows(dense.shape, "error")
        self.factored = S is not None and not small
        self._US = None if S is None else U @ S

    @classmethod
    def of(cls, problem, like):
        """The truth of ``problem`` on the backend, device and dtype of array ``like`` (None if unknown)."""
        if problem.M_star is None and getattr(problem, "S_star", None) is None:
            return None
        xp = backend.namespace(like)
        dev = backend.device_of(like)

        def move(a):
            return None if a is None else xp.asarray(a, dtype=like.dtype, device=dev)

        S = getattr(problem, "S_star", None)
        return cls(
            U=move(problem.U_star),
            S=move(S),
            V=move(problem.V_star),
            dense=problem.M_star,
            norm=problem.M_star_norm,
        )

    def error(self, factors):
        """‖P − M*‖_F per trajectory, P = F Gᵀ or X Xᵀ."""
        if self.factored:  # the dense path checks its arguments in row_stats / error
            fs, gs = _factors(factors)
            n = (self.U.shape[-2], self.V.shape[-2])
            if (fs[-2], gs[-2]) != n:
                raise ValueError(
                    f"factors must have {n[0]} and {n[1]} rows like M* "
                    f"({n[0]} × {n[1]}), got shapes {fs} and {gs}"
                )
        if not self.factored:
            got = row_stats(factors, M_star=self.dense)
            return error(product(factors), self.dense) if got is None else got[0][:, 0]
        xp = backend.namespace(*factors)
        F, G = (factors[0], factors[0]) if len(factors) == 1 else factors
        B = F.shape[0]
        left = xp.concat([F, xp.broadcast_to(-self._US, (B,) + self._US.shape)], axis=-1)
        right = xp.concat([G, xp.broadcast_to(self.V, (B,) + self.V.shape)], axis=-1)
        return xp.linalg.matrix_norm(qr_r(left) @ qr_r(right).mT)

    def off_subspace(self, factors):
        """Norm of the factors' components outside M*'s column/row spaces (None without U)."""
        if self.U is None:
            return None
        return off_subspace(factors, self.U, self.V)


def product_singular_values(factors: tuple):
    """The k singular values of P = F Gᵀ (or X Xᵀ), descending, from k×k matrices.

    F = Q₁R₁, G = Q₂R₂ ⇒ σ(F Gᵀ) = σ(R₁R₂ᵀ); σ(X Xᵀ) = σ(X)². For NumPy F, G
    (n ≥ k rows) one compiled call (Householder R factors, one-sided Jacobi
    on the k × k core: the same values to rounding): inside a run the
    LAPACK calls it replaces took ~0.22 ms per history row against ~0.03 ms
    on their own, the operator pass having streamed A through the cache.
    """
    _factors(factors)
    xp = backend.namespace(*factors)
    if len(factors) == 1:
        return xp.linalg.svdvals(factors[0]) ** 2
    F, G = factors
    if min(F.shape[-2], G.shape[-2]) >= F.shape[-1]:
        got = row_stats((F, G), singular_values=True)
        if got is not None:
            return got[0][:, len(ROW_COLUMNS) :]
    if F.shape == G.shape:  # one batched factorization for both (the same R's, one call)
        R = qr_r(xp.concat([F, G], axis=0))
        B = F.shape[0]
        return xp.linalg.svdvals(R[:B] @ R[B:].mT)
    return xp.linalg.svdvals(qr_r(F) @ qr_r(G).mT)


__all__ = [
    "Truth",
    "error",
    "loss",
    "imbalance",
    "imbalance_drift",
    "redundant_imbalance",
    "off_subspace",
    "factor_stats",
    "row_stats",
    "ROW_COLUMNS",
    "product_singular_values",
    "product",
]
