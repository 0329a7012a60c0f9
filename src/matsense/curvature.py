"""Curvature of the factored loss: the largest eigenvalue of the Gauss–Newton diagonal blocks.

For f(F, G) = ½‖𝒜(F Gᵀ) − y‖², the Jacobian of (F, G) ↦ 𝒜(F Gᵀ) has the
blocks J_F: dF ↦ 𝒜(dF Gᵀ) and J_G: dG ↦ 𝒜(F dGᵀ), and the Gauss–Newton
matrix J ᵀJ has the diagonal blocks

    H_FF: dF ↦ 𝒜*𝒜(dF Gᵀ) G,        H_GG: dG ↦ (𝒜*𝒜(F dGᵀ))ᵀ F.

GD with step η is stable on a quadratic while η·λ_max < 2; near a solution
the loss is that quadratic, and λ_max(J ᵀJ) ≥ max(λ_max(H_FF), λ_max(H_GG)),
so η·max(λ_max(H_FF), λ_max(H_GG)) > 2 means the step leaves the stable region.
(In the isotropic limit 𝒜*𝒜 = I the two are ‖G‖²_op and ‖F‖²_op.)

:func:`block_curvature` asks the operator first (an operator that knows its
blocks, such as matrix completion's per-row k × k blocks, answers exactly and
cheaply through ``gauss_newton_block_max(F, G)``) and otherwise runs a batched
power iteration through ``apply_factored`` and the two adjoint products.
Symbols follow the paper (F, G, η); see docs/rebalance_study.md.
"""

from __future__ import annotations

import numpy as np

from . import backend

#: Power iterations at most, and the relative change of the Rayleigh quotient that stops them.
POWER_ITERS, POWER_TOL = 10, 1e-3

#: η·λ_max above this leaves GD's stable region (a quadratic diverges for ηλ > 2).
STABLE_LIMIT = 2.0


def block_curvature(operator, F, G, *, iters: int = POWER_ITERS, tol: float = POWER_TOL):
    """max(λ_max(H_FF), λ_max(H_GG)) per trajectory of the batched factors, as a NumPy (B,) array.

    ``operator`` is a :class:`~matsense.operators.MatrixOperator`; F (B, n1, k),
    G (B, n2, k). Exact where the operator provides ``gauss_newton_block_max``;
    otherwise a power iteration of at most ``iters`` steps per block (a lower
    bound that stops when the Rayleigh quotient changes by less than ``tol``,
    relative).
    """
    own = getattr(operator, "gauss_newton_block_max", None)
    if own is not None:
        return np.asarray(own(F, G), dtype=float)

    def h_ff(V):
        return operator.adjoint_matmul(operator.apply_factored(V, G), G)

    def h_gg(W):
        return operator.adjoint_rmatmul(operator.apply_factored(F, W), F)

    return np.maximum(power_max(h_ff, F, iters, tol, G), power_max(h_gg, G, iters, tol, F))


def power_max(matvec, like, iters: int, tol: float, other=None):
    """λ_max of the PSD map ``matvec`` on arrays shaped ``like`` (B, n, k), per batch entry.

    The start is a fixed pseudo-random draw (seed 0), so the estimate is
    reproducible; a batch entry whose map is zero gives 0. With ``other`` (the
    factor the block is built from, (B, n', k)) the start is z wᵀ with w the top
    right singular vector of ``other``: in the isotropic limit H_FF = I ⊗ GᵀG,
    whose top eigenvectors are exactly these, so few iterations are needed.
    """
    xp = backend.namespace(like)
    tgt = backend.target_of(like)
    # one draw per trajectory (the same in any batch), so a trajectory's estimate does not
    # depend on the batch it runs in
    start = np.random.default_rng(0).standard_normal(tuple(like.shape[1:]))
    noise = backend.convert(np.broadcast_to(start, tuple(like.shape)).copy(), tgt)
    V = noise
    if other is not None:
        w = xp.linalg.svd(other, full_matrices=False)[2][..., :1, :]  # (B, 1, k)
        V = (noise @ xp.reshape(w, (w.shape[0], -1, 1))) * w
        V = V + 1e-3 * noise * _norms(xp, V) / _norms(xp, noise)
    V = V / _norms(xp, V)
    lam = xp.zeros(like.shape[:1], dtype=like.dtype, device=backend.device_of(like))
    done = lam > 0
    for i in range(max(1, int(iters))):
        W = matvec(V)
        new = xp.sum(V * W, axis=(-2, -1))
        norms = _norms(xp, W)
        V = W / xp.where(norms > 0, norms, xp.ones_like(norms))
        settled = (xp.abs(new - lam) <= tol * xp.abs(new)) if i > 0 else done
        lam = xp.where(done, lam, new)
        done = done | settled
        if bool(xp.all(done)):
            break
    return np.maximum(backend.to_numpy(lam).astype(float), 0.0)


def _norms(xp, V):
    return xp.reshape(xp.sqrt(xp.sum(V * V, axis=(-2, -1))), (-1, 1, 1))


def dense_blocks(operator, F, G):
    """(H_FF, H_GG) of one trajectory as dense matrices (small problems and tests only).

    F (n1, k), G (n2, k) unbatched NumPy arrays; entries are indexed row-major
    over the factor, i.e. vec(dF)[a·k + j] = dF[a, j].
    """
    n1, k = F.shape
    n2 = G.shape[0]

    def columns(n, apply):
        cols = []
        for i in range(n * k):
            e = np.zeros(n * k)
            e[i] = 1.0
            cols.append(apply(e.reshape(1, n, k)).reshape(-1))
        return np.stack(cols, axis=1)

    J_F = columns(n1, lambda V: operator.apply_factored(V, G[None]))
    J_G = columns(n2, lambda W: operator.apply_factored(F[None], W))
    return J_F.T @ J_F, J_G.T @ J_G
