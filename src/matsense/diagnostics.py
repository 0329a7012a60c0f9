"""Diagnostics of an iterate: error, loss, imbalance, subspace components, singular values.

All functions are batched (leading axis B) and backend-agnostic; symbols follow
the paper (F, G, X, M_star, Δ = FᵀF − GᵀG).
"""

from __future__ import annotations

import numpy as np

from . import backend
from .methods.base import product


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
    """‖P − M*‖_F per trajectory."""
    xp = backend.namespace(P)
    return xp.linalg.matrix_norm(P - M_star)


def loss(residual_norm, symmetric_factors: bool):
    """f = ¼‖r‖² for X Xᵀ, ½‖r‖² for F Gᵀ (docs/conventions.md)."""
    return residual_norm**2 / (4 if symmetric_factors else 2)


def imbalance(F, G):
    """Δ = FᵀF − GᵀG (B, k, k)."""
    return F.mT @ F - G.mT @ G


def imbalance_drift(F, G, Delta0):
    """‖Δ_t − Δ_0‖_F per trajectory."""
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
    if len(factors) == 1:
        return _off(factors[0], U_star)
    F, G = factors
    return (_off(F, U_star) ** 2 + _off(G, V_star) ** 2) ** 0.5


def redundant_imbalance(F, G, r: int):
    """The smallest |eigenvalue| of Δ = FᵀF − GᵀG on the k − r redundant directions, per trajectory.

    The redundant directions are the k − r right singular vectors of the
    stacked factors [F; G] with the smallest singular values (the factor
    directions the fit does not use). On such a direction v the product decays
    like 1/t while |vᵀΔv| ≪ its size and linearly at rate ≈ η|vᵀΔv| after, so
    the smallest one sets when a balanced start can leave the 1/t regime.
    """
    xp = backend.namespace(F, G)
    k = F.shape[-1]
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

    #: Below this many entries of M*, a known dense M* is used for the error: forming F Gᵀ
    #: costs less than the two QR factorizations, and is as accurate (no squared norms).
    DENSE_LIMIT = 2**20

    def __init__(self, *, U=None, S=None, V=None, dense=None, norm: float):
        self.U, self.S, self.V, self.dense = U, S, V, dense
        self.norm = float(norm)
        small = dense is not None and dense.shape[-2] * dense.shape[-1] <= self.DENSE_LIMIT
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
        return cls(U=move(problem.U_star), S=move(S), V=move(problem.V_star),
                   dense=problem.M_star, norm=problem.M_star_norm)

    def error(self, factors):
        """‖P − M*‖_F per trajectory, P = F Gᵀ or X Xᵀ."""
        if not self.factored:
            return error(product(factors), self.dense)
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

    F = Q₁R₁, G = Q₂R₂ ⇒ σ(F Gᵀ) = σ(R₁R₂ᵀ); σ(X Xᵀ) = σ(X)².
    """
    xp = backend.namespace(*factors)
    if len(factors) == 1:
        return xp.linalg.svdvals(factors[0]) ** 2
    F, G = factors
    if F.shape == G.shape:  # one batched factorization for both (the same R's, one call)
        R = qr_r(xp.concat([F, G], axis=0))
        B = F.shape[0]
        return xp.linalg.svdvals(R[:B] @ R[B:].mT)
    return xp.linalg.svdvals(qr_r(F) @ qr_r(G).mT)


__all__ = ["Truth", "error", "loss", "imbalance", "imbalance_drift", "redundant_imbalance", "off_subspace",
           "product_singular_values", "product"]
