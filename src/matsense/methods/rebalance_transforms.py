"""The transforms of rebalanced GD (:mod:`matsense.methods.rebalance`, which re-exports them).

Each starts from F Gᵀ = U Σ Vᵀ computed from k×k cores and, for 'balanced' and 'truncated', a
signal rank r̂ (:func:`signal_rank`); the module docstring of :mod:`matsense.methods.rebalance`
gives the formulas and the measurements behind them.
"""

from __future__ import annotations

import numpy as np

from .. import backend

#: Signal rule of the balanced transform: σ_i > SIGNAL_HIGH·ρ, or σ_i > SIGNAL_LOW·ρ while the
#: relative pull uᵢᵀ S vᵢ / σᵢ of GD on direction i is below PULL_LIMIT (docs/rebalance_study.md).
SIGNAL_HIGH, SIGNAL_LOW, PULL_LIMIT = 4.0, 0.5, 0.03


def product_operator_norm(F, G):
    """‖F Gᵀ‖_op per trajectory, from k×k factors: F = Q₁R₁, G = Q₂R₂ ⇒ σ(FGᵀ) = σ(R₁R₂ᵀ)."""
    xp = backend.namespace(F, G)
    R1 = xp.linalg.qr(F).R
    R2 = xp.linalg.qr(G).R
    return xp.linalg.svdvals(R1 @ R2.mT)[..., 0]


def rebalance(F, G, beta):
    """The first reconstruction: F ← β U_F V_Fᵀ, G ← G V_F Σ_F V_Fᵀ / β (F Gᵀ unchanged).

    Parameters
    ----------
    F, G : arrays (n1, k), (n2, k), or batched (B, n1, k), (B, n2, k)
    beta : float, or one per trajectory (B,)
        Finite and > 0; β = 0 is accepted only for a trajectory whose F Gᵀ = 0,
        whose factors are returned unchanged.

    Returns the new (F, G), shaped as given. ValueError for a β out of range,
    or when the new factors are not finite (β too small for these factors).
    """
    from .. import _validate as V

    F, G = V.real_array("F", F), V.real_array("G", G)
    xp = backend.namespace(F, G)
    if (
        F.ndim not in (2, 3)
        or G.ndim != F.ndim
        or F.shape[-1] != G.shape[-1]
        or (F.ndim == 3 and F.shape[0] != G.shape[0])
    ):
        raise ValueError(
            f"F and G must be (n1, k) and (n2, k) arrays (or batched (B, n, k)) "
            f"with one k, got shapes {tuple(F.shape)} and {tuple(G.shape)}"
        )
    single = F.ndim == 2
    Fb, Gb = (F[None], G[None]) if single else (F, G)
    B = Fb.shape[0]
    b = np.asarray(backend.to_numpy(beta) if backend.is_array(beta) else beta, dtype=object)
    if b.ndim > 1 or (b.ndim == 1 and b.size != B):
        raise ValueError(f"beta must be a number or one per trajectory ({B}), got shape {b.shape}")
    b = np.broadcast_to(b, (B,))
    for value in b:
        V.positive_float(
            "beta", value.item() if isinstance(value, np.generic) else value, allow_zero=True
        )
    b = b.astype(float)
    if (b == 0).any():
        zero_product = backend.to_numpy(product_operator_norm(Fb, Gb)) == 0
        if ((b == 0) & ~zero_product).any():
            raise ValueError("beta must be > 0 (β = 0 is only accepted where F Gᵀ = 0), got 0")
    beta_x = xp.asarray(b, dtype=Fb.dtype, device=backend.device_of(Fb))
    with np.errstate(all="ignore"):
        Fn, Gn = _rebalance(Fb, Gb, beta_x)
    if not (bool(xp.all(xp.isfinite(Fn))) and bool(xp.all(xp.isfinite(Gn)))):
        raise ValueError(
            f"rebalance: the new factors are not finite for beta={b.tolist()[:4]} "
            f"(G/β overflows float64): use a larger beta"
        )
    return (Fn[0], Gn[0]) if single else (Fn, Gn)


def _rebalance(F, G, beta):
    """:func:`rebalance` on batched arrays without the checks (β ≤ 0: factors unchanged)."""
    xp = backend.namespace(F, G)
    U, s, Vh = xp.linalg.svd(F, full_matrices=False)
    b = xp.reshape(beta, (-1, 1, 1))
    ok = b > 0
    safe = xp.where(ok, b, xp.ones_like(b))
    F_new = safe * (U @ Vh)
    G_new = (G @ (Vh.mT * s[..., None, :]) @ Vh) / safe
    return xp.where(ok, F_new, F), xp.where(ok, G_new, G)


def product_change(F, G, F_new, G_new):
    """‖F_new G_newᵀ − F Gᵀ‖_F / ‖F Gᵀ‖_F per trajectory (batched), without an n1 × n2 matrix.

    F Gᵀ − F' G'ᵀ = [F, F'] [G, −G']ᵀ = Q_a R_a R_bᵀ Q_bᵀ, so its norm is that of the
    2k × 2k core R_a R_bᵀ, accurate to rounding even when the change is ~1e-16 relative.
    """
    xp = backend.namespace(F, G)
    Ra = xp.linalg.qr(xp.concat([F, F_new], axis=-1)).R
    Rb = xp.linalg.qr(xp.concat([G, -G_new], axis=-1)).R
    R1 = xp.linalg.qr(F).R
    R2 = xp.linalg.qr(G).R
    diff = xp.sqrt(xp.sum((Ra @ Rb.mT) ** 2, axis=(-2, -1)))
    base = xp.sqrt(xp.sum((R1 @ R2.mT) ** 2, axis=(-2, -1)))
    return diff / xp.where(base > 0, base, xp.ones_like(base))


def product_svd(F, G):
    """F Gᵀ = U diag(s) Vᵀ (rank ≤ k, s descending) from the k×k cores: F = Q₁R₁, G = Q₂R₂,
    R₁R₂ᵀ = U_c diag(s) V_cᵀ, U = Q₁U_c, V = Q₂V_c. Batched; never an n1 × n2 matrix."""
    xp = backend.namespace(F, G)
    Q1, R1 = xp.linalg.qr(F)
    Q2, R2 = xp.linalg.qr(G)
    Uc, s, Vch = xp.linalg.svd(R1 @ R2.mT)
    return Q1 @ Uc, s, Q2 @ Vch.mT


def signal_rank(U, s, V, SV, residual_norm):
    """r̂ per trajectory: the last direction i with σ_i > 4ρ, or σ_i > ρ/2 and a relative GD
    pull uᵢᵀ S vᵢ / σᵢ below 0.03 (at least 1). ρ = ‖𝒜(FGᵀ) − y‖, S = 𝒜*(𝒜(FGᵀ) − y), and
    ``SV`` = S V (n1 × k)."""
    xp = backend.namespace(s)
    k = s.shape[-1]
    idx = xp.reshape(xp.arange(1, k + 1, device=backend.device_of(s)), (1, k))
    rho = xp.reshape(residual_norm, (-1, 1))
    pull = xp.sum(U * SV, axis=-2) / xp.where(s > 0, s, xp.ones_like(s))
    signal = (s > SIGNAL_HIGH * rho) | ((s > SIGNAL_LOW * rho) & (pull < PULL_LIMIT))
    return xp.clip(xp.max(xp.where(signal, idx, 0 * idx), axis=-1), 1, k)


def rebalance_balanced(
    F, G, S, residual_norm, step_size: float, *, lift: float = 0.75, rank: int | None = None
):
    """The balanced transform (see the module docstring); returns (F, G, r̂), batched.

    ``S`` is 𝒜*(𝒜(FGᵀ) − y) as a (B, n1, n2) array, or a function V ↦ S V
    (what a matrix-free operator gives: ``operator.adjoint_matmul(r, V)``); it
    is only read when ``rank`` is not given. F Gᵀ is unchanged up to rounding
    (~1e-15 relative). A zero singular value on a signal direction keeps
    Σ D⁻¹ finite (D is floored at ε·σ₁), and a trajectory with F Gᵀ = 0 keeps
    its factors.
    """
    xp = backend.namespace(F, G)
    U, s, V, signal, rhat = _split(F, G, S, residual_norm, rank)
    s1 = s[:, :1]
    level = xp.maximum(s1, lift / step_size + 0 * s1)
    d2 = xp.where(signal, s, level)
    fi = xp.finfo(s.dtype)
    d = xp.sqrt(xp.maximum(d2, fi.eps * s1 + fi.smallest_normal))
    return (*_rescaled(F, G, U, V, s1, d, s / d), rhat)


def _split(F, G, S, residual_norm, rank):
    """F Gᵀ = U diag(s) Vᵀ from the cores, the (B, k) mask of the r̂ signal directions, r̂."""
    xp = backend.namespace(F, G)
    U, s, V = product_svd(F, G)
    k = s.shape[-1]
    idx = xp.reshape(xp.arange(1, k + 1, device=backend.device_of(s)), (1, k))
    rhat = _signal_rank(U, s, V, S, residual_norm, rank)
    return U, s, V, idx <= xp.reshape(rhat, (-1, 1)), rhat


def _rescaled(F, G, U, V, s1, f_scale, g_scale):
    """(U diag(f_scale), V diag(g_scale)); a trajectory with F Gᵀ = 0 (σ₁ = 0) keeps F, G."""
    xp = backend.namespace(F, G)
    keep = xp.reshape(s1 > 0, (-1, 1, 1))
    return (xp.where(keep, U * f_scale[:, None, :], F), xp.where(keep, V * g_scale[:, None, :], G))


def rebalance_truncated(F, G, S, residual_norm, *, floor: float = 1e-14, rank: int | None = None):
    """The truncated transform (the default; see the module docstring); returns (F, G, r̂).

    With F Gᵀ = U Σ Vᵀ from the k×k cores and r̂ signal directions,

        F ← [U_r̂ √Σ_r̂, c U_e],   G ← [V_r̂ √Σ_r̂, 0],   c = √(floor·σ₁),

    so F Gᵀ loses its k − r̂ redundant directions (they are part of the error)
    and the signal is balanced as in exact-parameterization GD. The seed c U_e
    (imbalance c² on the redundant columns, product exactly zero there) lets GD
    grow back a signal direction the rank rule missed, from scale c, as small
    initialization does; ``floor = 0`` drops the redundant columns for good.
    ``S`` and ``rank`` as in :func:`rebalance_balanced`.
    """
    xp = backend.namespace(F, G)
    U, s, V, signal, rhat = _split(F, G, S, residual_norm, rank)
    s1 = s[:, :1]
    root = xp.sqrt(s)
    f_scale = xp.where(signal, root, xp.sqrt(floor * s1) + 0 * s)
    g_scale = xp.where(signal, root, 0 * s)
    return (*_rescaled(F, G, U, V, s1, f_scale, g_scale), rhat)


def _signal_rank(U, s, V, S, residual_norm, rank):
    """r̂ per trajectory: ``rank`` (capped at k) when given, else :func:`signal_rank`."""
    xp = backend.namespace(s)
    if rank is None:
        SV = S(V) if callable(S) else S @ V
        return signal_rank(U, s, V, SV, residual_norm)
    return xp.full(
        s.shape[:1], min(int(rank), s.shape[-1]), dtype=xp.int64, device=backend.device_of(s)
    )
