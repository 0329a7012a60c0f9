"""Matrix-sensing problems: ground truth M*, operator 𝒜 and observations y.

Names follow the paper (docs/conventions.md): ``M_star`` is M*, ``r`` its rank,
``m`` the number of measurements, ``kappa`` the condition number σ_1/σ_r.
A :class:`Problem` is immutable; every random draw comes from
``numpy.random.default_rng(seed)`` in a fixed order (U, V, A, noise), so the
same arguments give bitwise-identical problems.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from . import _validate as V
from . import backend
from . import backend as _backend  # Problem.to() has a parameter named `backend`
from .operators import DenseOperator, MatrixOperator, SymmetricOperator


def singular_value_profile(r: int, kappa: float = 1.0, spacing: str = "geometric") -> np.ndarray:
    """σ_1 = 1 down to σ_r = 1/κ, spaced geometrically (default) or linearly."""
    r = V.int_in_range("r", r, 1)
    kappa = V.positive_float("kappa", kappa)
    if kappa < 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    if r == 1:
        return np.ones(1)
    if spacing == "geometric":
        return np.geomspace(1.0, 1.0 / kappa, r)
    if spacing == "linear":
        return np.linspace(1.0, 1.0 / kappa, r)
    raise ValueError(f"spacing must be 'geometric' or 'linear', got {spacing!r}")


def haar_orthonormal(rng: np.random.Generator, n: int, r: int) -> np.ndarray:
    """An n×r matrix with Haar-distributed orthonormal columns (QR with sign fix)."""
    Q, R = np.linalg.qr(rng.standard_normal((n, r)))
    return Q * np.sign(np.diag(R))


def _column_space(M: np.ndarray, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, int]:
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    rank = int(np.sum(s > tol * max(s[0], np.finfo(float).tiny))) if s.size else 0
    return U[:, :rank], Vt[:rank].T, rank


@dataclass(frozen=True, eq=False)
class Problem:
    """A sensing problem: y = 𝒜(M*) (+ noise), with M* known or not.

    Build one with :meth:`gaussian` (seeded synthetic problem) or
    :meth:`from_arrays` (your own measurement matrices and observations).

    Attributes
    ----------
    operator : DenseOperator or SymmetricOperator
        The sensing operator 𝒜 (see :meth:`with_symmetric_operator`).
    y : array, shape (m,)
        Observations, already on the scale of 𝒜 (y = 𝒜(M*) + noise).
    M_star : array, shape (n1, n2), or None
        Ground truth, for error tracking; ``None`` when unknown.
    symmetric : bool
        True for the symmetric PSD setting (M* = M*ᵀ ⪰ 0).
    rank : int or None
        Rank r of M* (None when unknown).
    """

    operator: MatrixOperator
    y: object
    M_star: object = None
    symmetric: bool = False
    rank: int | None = None
    meta: dict = field(default_factory=dict)
    # Orthonormal bases of M*'s column and row spaces (numpy), for diagnostics.
    U_star: np.ndarray | None = field(default=None, repr=False)
    V_star: np.ndarray | None = field(default=None, repr=False)
    # M* = U_star S_star V_starᵀ exactly (r × r, numpy) when the problem was generated from
    # factors: errors are then computed from factors (diagnostics.Truth), never n1 × n2.
    S_star: np.ndarray | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ builders
    @classmethod
    def gaussian(
        cls,
        n1: int,
        n2: int | None = None,
        *,
        r: int,
        m: int,
        kappa: float = 1.0,
        singular_values=None,
        spacing: str = "geometric",
        symmetric: bool = False,
        noise: float = 0.0,
        seed: int = 0,
    ) -> "Problem":
        """Seeded synthetic problem with the dense Gaussian ensemble.

        M* = U diag(σ) Vᵀ with Haar-random U, V (V = U when ``symmetric``);
        entries of every A_i are i.i.d. N(0, 1); y = 𝒜(M*) + ``noise``·ε with
        ε ~ N(0, I_m).

        Parameters
        ----------
        n1, n2 : int
            Matrix shape; ``n2`` defaults to ``n1`` (required equal when symmetric).
        r : int
            Rank, 1 <= r <= min(n1, n2).
        m : int
            Number of measurements, >= 1.
        kappa : float
            Condition number σ_1/σ_r (σ_1 = 1); ignored if ``singular_values`` is given.
        singular_values : sequence of r positive floats, optional
            Explicit σ_1..σ_r.
        spacing : {'geometric', 'linear'}
            How σ_i are spaced between 1 and 1/κ.
        symmetric : bool
            PSD ground truth M* = U diag(σ) Uᵀ.
        noise : float
            Standard deviation of additive Gaussian noise on y (>= 0).
        seed : int
            Seed of the one generator all draws come from.
        """
        n1 = V.int_in_range("n1", n1, 1)
        n2 = n1 if n2 is None else V.int_in_range("n2", n2, 1)
        if symmetric and n1 != n2:
            raise ValueError(f"a symmetric problem needs n1 == n2, got n1={n1}, n2={n2}")
        r = V.int_in_range("r", r, 1, min(n1, n2))
        m = V.int_in_range("m", m, 1)
        noise = V.positive_float("noise", noise, allow_zero=True)
        seed = V.int_in_range("seed", seed, 0)
        if singular_values is None:
            sigma = singular_value_profile(r, kappa, spacing)
        else:
            sigma = np.asarray(V.real_array("singular_values", singular_values), dtype=float)
            if sigma.shape != (r,):
                raise ValueError(
                    f"singular_values must have r={r} entries, got shape {sigma.shape}"
                )
            if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
                raise ValueError(f"singular_values must be finite and > 0, got {sigma.tolist()}")
            sigma = np.sort(sigma)[::-1].copy()
        rng = np.random.default_rng(seed)
        U = haar_orthonormal(rng, n1, r)
        Vb = U if symmetric else haar_orthonormal(rng, n2, r)
        M_star = (U * sigma) @ Vb.T
        if symmetric:
            M_star = (M_star + M_star.T) / 2
        # Scaled in place: no second copy of the m·n1·n2 measurement data.
        op = DenseOperator.from_raw_inplace(rng.standard_normal((m, n1, n2)))
        y = op.apply(M_star[None])[0]
        if noise > 0:
            y = y + noise * rng.standard_normal(m)
        meta = dict(
            kind="gaussian", n1=n1, n2=n2, r=r, m=m, kappa=float(sigma[0] / sigma[-1]),
            singular_values=sigma.tolist(), symmetric=symmetric, noise=noise, seed=seed,
        )
        return cls(op, y, M_star, symmetric, r, meta, U, Vb, np.diag(sigma))

    @classmethod
    def from_arrays(cls, A, y, M_star=None, *, symmetric: bool | None = None) -> "Problem":
        """A problem from your own measurement matrices and observations.

        Parameters
        ----------
        A : array, shape (m, n1, n2)
            Raw measurement matrices; 𝒜(M)_i = <A_i, M>/√m.
        y : array, shape (m,)
            Observations on that scale (y = 𝒜(M*) for noiseless data).
        M_star : array, shape (n1, n2), optional
            Ground truth, only used to report errors.
        symmetric : bool, optional
            Symmetric PSD setting; defaults to True when ``M_star`` is given,
            square and symmetric.
        """
        A = V.ndim_in("A", V.real_array("A", A), (3,))
        y = V.ndim_in("y", V.real_array("y", y), (1,))
        m, n1, n2 = A.shape
        if m < 1 or n1 < 1 or n2 < 1:
            raise ValueError(f"A must have shape (m, n1, n2) with all sizes >= 1, got {A.shape}")
        if y.shape[0] != m:
            raise ValueError(
                f"y must have one entry per measurement matrix: A has m={m}, y has {y.shape[0]}"
            )
        V.finite_array("A", A)
        V.finite_array("y", y)
        U = Vb = None
        rank = None
        if M_star is not None:
            M_star = V.ndim_in("M_star", V.real_array("M_star", M_star), (2,))
            if tuple(M_star.shape) != (n1, n2):
                raise ValueError(
                    f"M_star must have shape (n1, n2) = {(n1, n2)} to match A, got {tuple(M_star.shape)}"
                )
            V.finite_array("M_star", M_star)
            Mn = backend.to_numpy(M_star)
            U, Vb, rank = _column_space(Mn)
            if symmetric is None:
                symmetric = n1 == n2 and np.allclose(Mn, Mn.T, atol=1e-12 * max(1.0, np.abs(Mn).max()))
        symmetric = bool(symmetric)
        if symmetric and n1 != n2:
            raise ValueError(f"a symmetric problem needs square A_i, got n1={n1}, n2={n2}")
        meta = dict(kind="arrays", n1=n1, n2=n2, m=m, r=rank, symmetric=symmetric)
        return cls(DenseOperator(A), y, M_star, symmetric, rank, meta, U, Vb)

    # ----------------------------------------------------------------- accessors
    @property
    def shape(self) -> tuple[int, int]:
        return self.operator.shape

    @property
    def m(self) -> int:
        return self.operator.m

    @property
    def y_norm(self) -> float:
        xp = backend.namespace(self.y)
        return float(xp.linalg.vector_norm(self.y))

    @property
    def M_star_norm(self) -> float | None:
        if self.M_star is None:
            return None
        return float(np.linalg.norm(backend.to_numpy(self.M_star)))

    def residual_and_adjoint(self, P):
        """r = 𝒜(P) − y and S = 𝒜*(r) for a batch of products P (B, n1, n2)."""
        return self.operator.residual_and_adjoint(P, self.y)

    def replace(self, **changes) -> "Problem":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------ backends, operators
    def to(self, backend: str = "numpy", device: str = "cpu", dtype=None) -> "Problem":
        """This problem with its operator, y and M* on another backend / device / dtype.

        Parameters
        ----------
        backend : {'numpy', 'torch'}
        device : {'cpu', 'cuda', 'cuda:<i>'}
            'cuda' needs PyTorch and a visible GPU.
        dtype : {'float64', 'float32'}, optional
            Default: keep the current dtype.

        Methods and :func:`matsense.run` then compute on that backend (factors
        passed to ``run`` are moved there). Converting NumPy float64 to torch
        CPU float64 shares memory; other conversions copy the operator once.
        Raises ``ValueError`` (one line) for an unavailable backend or device
        or an unsupported dtype.
        """
        if dtype is None:
            dtype = _backend.target_of(self.y).dtype
        tgt = _backend.target(backend, device, dtype)
        meta = dict(self.meta, backend=tgt.backend, device=tgt.device, dtype=tgt.dtype)
        return self.replace(operator=self.operator.to(tgt), y=_backend.convert(self.y, tgt),
                            M_star=_backend.convert(self.M_star, tgt), meta=meta)

    def with_symmetric_operator(self) -> "Problem":
        """This symmetric problem with 𝒜 replaced by its packed symmetric part.

        A :class:`~matsense.operators.SymmetricOperator` stores svec(sym(A_i))
        (n(n+1)/2 numbers per measurement instead of n²), halving the bytes
        read per iteration. y and M* are kept: for symmetric P,
        <sym(A_i), P> = <A_i, P>, so X Xᵀ runs follow the same trajectory. For
        F Gᵀ the operator measures <A_i, sym(F Gᵀ)> instead of <A_i, F Gᵀ> —
        a different (equally valid) sensing operator; see the operator's docs.
        """
        if not self.symmetric:
            raise ValueError("with_symmetric_operator() needs a symmetric problem "
                             "(symmetric=True); this one is asymmetric")
        if isinstance(self.operator, SymmetricOperator):
            return self
        return self.replace(operator=SymmetricOperator.from_dense(self.operator),
                            meta=dict(self.meta, operator="symmetric"))
