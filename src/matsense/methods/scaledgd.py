"""Scaled gradient descent (Tong, Ma & Chi 2021) and its damped variant ScaledGD(λ)
(Xu, Shen, Chi & Ma 2023), PAPER.md §4.

Asymmetric (loss ½‖𝒜(F Gᵀ) − y‖², simultaneous update):

    F ← F − η S G (GᵀG + λI)⁻¹,    G ← G − η Sᵀ F (FᵀF + λI)⁻¹

Symmetric (loss ¼‖𝒜(X Xᵀ) − y‖², ∇f(X) = sym(S) X):

    X ← X − η sym(S) X (XᵀX + λI)⁻¹

with S = 𝒜*(𝒜(P) − y). ScaledGD is λ = 0; ScaledGD(λ) a fixed λ > 0.

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

from .. import _validate as V
from .. import backend
from .base import AsymState, SymState, product, residual_norm, step_size, sym

DEFAULT_RCOND = 1e-12


def rcond_value(value) -> float:
    """Validate the relative eigenvalue cutoff of the pseudo-inverse: 0 <= rcond < 1."""
    value = V.positive_float("rcond", value, allow_zero=True)
    if value >= 1:
        raise ValueError(f"rcond must be in [0, 1), got {value}")
    return value


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


def scaled_step_asymmetric(F, G, S, eta, damping=0.0, rcond=DEFAULT_RCOND):
    """(F − η S G (GᵀG + λI)⁻¹, G − η Sᵀ F (FᵀF + λI)⁻¹), both from the current (F, G)."""
    F_new = F - eta * precondition(S @ G, G.mT @ G, damping, rcond)
    G_new = G - eta * precondition(S.mT @ F, F.mT @ F, damping, rcond)
    return F_new, G_new


def scaled_step_symmetric(X, S, eta, damping=0.0, rcond=DEFAULT_RCOND):
    """X − η sym(S) X (XᵀX + λI)⁻¹."""
    return X - eta * precondition(sym(S) @ X, X.mT @ X, damping, rcond)


def _state(factors):
    return AsymState(*factors) if len(factors) == 2 else SymState(*factors)


def _scaled_step(problem, state, eta, damping, rcond):
    r, S = problem.residual_and_adjoint(product(tuple(state)))
    if isinstance(state, SymState):
        new = SymState(scaled_step_symmetric(state.X, S, eta, damping, rcond))
    else:
        new = AsymState(*scaled_step_asymmetric(state.F, state.G, S, eta, damping, rcond))
    return new, residual_norm(r)


@dataclass(frozen=True)
class ScaledGD:
    """ScaledGD: GD right-preconditioned by the inverse Gram matrix of the other factor.

    F ← F − η S G (GᵀG)⁻¹, G ← G − η Sᵀ F (FᵀF)⁻¹ on F Gᵀ; X ← X − η sym(S) X (XᵀX)⁻¹
    on X Xᵀ (the parameterization follows ``init``). Linear convergence at a
    κ-independent rate from spectral initialization with k = r.

    Parameters
    ----------
    step_size : float
        η > 0 (default 0.5, the reference runs' value).
    rcond : float
        Relative eigenvalue cutoff of the pseudo-inverse used when a Gram
        matrix is (numerically) singular, in [0, 1) (default 1e-12).
    """

    step_size: float = 0.5
    rcond: float = DEFAULT_RCOND
    name: str = "scaledgd"

    def __post_init__(self):
        object.__setattr__(self, "step_size", step_size(self.step_size))
        object.__setattr__(self, "rcond", rcond_value(self.rcond))

    def init(self, problem, factors):
        return _state(factors)

    def step(self, problem, state):
        return _scaled_step(problem, state, self.step_size, 0.0, self.rcond)

    def factors(self, state) -> tuple:
        return tuple(state)

    def extras(self, state) -> dict:
        return {}


@dataclass(frozen=True)
class ScaledGDLambda:
    """ScaledGD(λ): ScaledGD with a fixed damping λ > 0 of the Gram matrices.

    X ← X − η sym(S) X (XᵀX + λI)⁻¹ on X Xᵀ, and the F Gᵀ analogue. Designed for
    small random initialization and over-parameterization (k > r), where the
    undamped inverse blows up the redundant directions.

    Parameters
    ----------
    step_size : float
        η > 0 (default 0.5).
    damping : float
        λ > 0 (default 1e-3); it should sit well below σ_r(M*) and well above
        the initialization's squared scale.
    rcond : float
        Pseudo-inverse cutoff, in [0, 1); only matters if λ is negligible.
    """

    step_size: float = 0.5
    damping: float = 1e-3
    rcond: float = DEFAULT_RCOND
    name: str = "scaledgd_lambda"

    def __post_init__(self):
        object.__setattr__(self, "step_size", step_size(self.step_size))
        object.__setattr__(self, "damping", V.positive_float("damping", self.damping))
        object.__setattr__(self, "rcond", rcond_value(self.rcond))

    def init(self, problem, factors):
        return _state(factors)

    def step(self, problem, state):
        return _scaled_step(problem, state, self.step_size, self.damping, self.rcond)

    def factors(self, state) -> tuple:
        return tuple(state)

    def extras(self, state) -> dict:
        return {}
