"""Scaled gradient descent (Tong, Ma & Chi 2021) and its damped variant ScaledGD(λ)
(Xu, Shen, Chi & Ma 2023), docs/methods.md.

Asymmetric (loss ½‖𝒜(F Gᵀ) − y‖², simultaneous update):

    F ← F − η S G (GᵀG + λI)⁻¹,    G ← G − η Sᵀ F (FᵀF + λI)⁻¹

Symmetric (loss ¼‖𝒜(X Xᵀ) − y‖², ∇f(X) = sym(S) X):

    X ← X − η sym(S) X (XᵀX + λI)⁻¹

with S = 𝒜*(𝒜(P) − y). ScaledGD is λ = 0; ScaledGD(λ) is the preset with a
fixed λ > 0 (:class:`ScaledGDLambda`, as optax writes ``nadam`` as a preset
of ``adam``).

The k×k inverse is applied through a batched eigendecomposition of the
(damped) Gram matrix, :func:`precondition`: eigenvalues at or below
``rcond`` × the largest are dropped, so a singular Gram matrix (a factor with
zero or linearly dependent columns, e.g. a tiny or rank-deficient
initialization) gives the pseudo-inverse step instead of a crash or NaN. For
an invertible Gram matrix this *is* the inverse.

Symbols follow the paper (F, G, X, S, eta = η, damping = λ).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import backend
from .base import (
    AsymState,
    Method,
    SymState,
    below,
    gradient_request,
    gradients_from,
    non_negative,
    param,
    positive,
    residual_norm,
)

DEFAULT_RCOND = 1e-12

#: Validation of the pseudo-inverse cutoff: 0 <= rcond < 1.
rcond_check = below(1.0, non_negative)


def precondition(Y, H, damping=0.0, rcond: float = DEFAULT_RCOND):
    """Y (H + λI)^† for a batch of symmetric PSD k×k matrices H.

    Parameters
    ----------
    Y : array (B, n, k)
    H : array (B, k, k), symmetric positive semi-definite (a Gram matrix).
    damping : float or array (B,)
        λ >= 0, per trajectory when an array.
    rcond : float
        Eigenvalues of H + λI at or below ``rcond`` × its largest eigenvalue
        are treated as zero (pseudo-inverse).
    """
    xp = backend.namespace(Y, H)
    k = H.shape[-1]
    eye = xp.eye(k, dtype=H.dtype, device=backend.device_of(H))
    if backend.is_array(damping):
        lam = xp.reshape(damping, (-1, 1, 1))
    else:
        lam = float(damping)
    # Symmetrize: rounding makes FᵀF slightly asymmetric and eigh reads one triangle.
    Hd = (H + H.mT) / 2 + lam * eye
    w, Q = xp.linalg.eigh(Hd)
    cutoff = rcond * xp.max(w, axis=-1, keepdims=True)
    keep = (w > cutoff) & (w > 0)
    inv = xp.where(keep, 1.0 / xp.where(keep, w, xp.ones_like(w)), xp.zeros_like(w))
    return ((Y @ Q) * inv[..., None, :]) @ Q.mT


def scaled_step(state, grad_F, grad_G, eta, damping=0.0, rcond=DEFAULT_RCOND):
    """One scaled step of either parameterization from its gradients (:func:`~.base.gradients`):
    X − η sym(S)X (XᵀX + λI)⁻¹, or F − η S G (GᵀG + λI)⁻¹, G − η Sᵀ F (FᵀF + λI)⁻¹."""
    if isinstance(state, SymState):
        X = state.X
        return SymState(X - eta * precondition(grad_F, X.mT @ X, damping, rcond))
    F, G = state.F, state.G
    return AsymState(
        F - eta * precondition(grad_F, G.mT @ G, damping, rcond),
        G - eta * precondition(grad_G, F.mT @ F, damping, rcond),
    )


@dataclass(frozen=True)
class ScaledGD(Method):
    """ScaledGD: GD right-preconditioned by the inverse Gram matrix of the other factor.

    F ← F − η S G (GᵀG + λI)⁻¹, G ← G − η Sᵀ F (FᵀF + λI)⁻¹ on F Gᵀ;
    X ← X − η sym(S) X (XᵀX + λI)⁻¹ on X Xᵀ (the parameterization follows
    ``init``). With λ = 0 (default): linear convergence at a κ-independent
    rate from spectral initialization with k = r.

    Parameters
    ----------
    step_size : float
        η > 0 (default 0.5, the reference runs' value).
    damping : float
        λ >= 0 (default 0: ScaledGD; λ > 0: ScaledGD(λ), see :class:`ScaledGDLambda`).
    rcond : float
        Relative eigenvalue cutoff of the pseudo-inverse used when a Gram
        matrix is (numerically) singular, in [0, 1) (default 1e-12).
    """

    name = "scaledgd"
    step_size: float = param(0.5, positive, "step size η")
    damping: float = param(0.0, non_negative, "damping λ of the Gram matrices (>= 0)")
    rcond: float = param(DEFAULT_RCOND, rcond_check, "pseudo-inverse cutoff, in [0, 1)")

    def request(self, problem, state):
        return gradient_request(state)

    def advance(self, problem, state, answer):
        r, grad_F, grad_G = gradients_from(state, answer)
        return (
            scaled_step(state, grad_F, grad_G, self.step_size, self.damping, self.rcond),
            residual_norm(r),
        )


@dataclass(frozen=True)
class ScaledGDLambda(ScaledGD):
    """ScaledGD(λ): the ScaledGD preset with a fixed damping λ > 0 (default 1e-3).

    X ← X − η sym(S) X (XᵀX + λI)⁻¹ on X Xᵀ, and the F Gᵀ analogue. Designed for
    small random initialization and over-parameterization (k > r), where the
    undamped inverse blows up the redundant directions. λ should sit well
    below σ_r(M*) and well above the initialization's squared scale.
    """

    name = "scaledgd_lambda"
    damping: float = param(1e-3, positive, "damping λ of the Gram matrices (> 0)")
