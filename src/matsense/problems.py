"""Matrix-sensing problems: ground truth M*, operator 𝒜 and observations y.

Names follow the paper (docs/conventions.md): ``M_star`` is M*, ``r`` its rank,
``m`` the number of measurements, ``kappa`` the condition number σ_1/σ_r.
A :class:`Problem` is immutable; every random draw comes from
``numpy.random.default_rng(seed)`` in a fixed order (U, V, A, noise), so the
same arguments give bitwise-identical problems.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from . import _validate as V
from . import backend, ensembles
from . import backend as _backend  # Problem.to() has a parameter named `backend`
from .operators import DenseOperator, MatrixOperator
from .synthetic import (  # noqa: F401 (re-exported: the ensembles import them from here)
    check_memory,
    common_arguments,
    draw_truth,
    haar_orthonormal,
    singular_value_profile,
)

#: The built-in ensembles of :meth:`Problem.generate` (and of the ``ensemble`` key of run files),
#: in order; each is a record in its operator's module (:mod:`matsense.ensembles`).
ENSEMBLES = ensembles.NAMES

#: Ensembles of other packages (entry-point group ``matsense.ensembles``, read on first use):
#: name -> :class:`~matsense.ensemble.Ensemble` (:data:`matsense.ensembles.PLUGINS`,
#: docs/plugins.md). ``all`` (``reproduce --ensemble all``) and the built-in names are taken.
ENSEMBLE_PLUGINS = ensembles.PLUGINS
ensemble_names = ensembles.names
unknown_ensemble = ensembles.unknown


def _column_space(M: np.ndarray, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, int]:
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    rank = int(np.sum(s > tol * max(s[0], np.finfo(float).tiny))) if s.size else 0
    return U[:, :rank], Vt[:rank].T, rank


@dataclass(frozen=True, eq=False)
class Problem(V.ProblemBase):
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
        ensemble: str = "gaussian",
        max_memory=None,
    ) -> Problem:
        """Seeded synthetic problem with the dense Gaussian ensemble.

        M* = U diag(σ) Vᵀ with Haar-random U, V (V = U when ``symmetric``); entries of every A_i
        are i.i.d. N(0, 1); y = 𝒜(M*) + ``noise``·ε with ε ~ N(0, I_m).

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
        ensemble : {'gaussian', 'symmetric'}
            'symmetric': symmetric measurement matrices A_i = (Z_i + Z_iᵀ)/2 (GOE-like, isotropic
            on symmetric matrices; as ``Problem.generate("symmetric-gaussian", ...)``), stored
            packed (:class:`~matsense.operators.SymmetricOperator`, half the bytes). F Gᵀ then
            sees only sym(F Gᵀ): docs/ensembles.md.
        max_memory : int or str, optional
            Most bytes the problem may take (e.g. ``"8G"``); default: the ``MATSENSE_MAX_MEMORY``
            environment variable, else 90% of the memory available to this process. A larger
            problem is refused with a one-line ``ValueError`` before anything is allocated.
        """
        if ensemble not in ("gaussian", "symmetric"):
            raise ValueError(f"ensemble must be 'gaussian' or 'symmetric', got {ensemble!r}")
        truth = dict(r=r, kappa=kappa, singular_values=singular_values, spacing=spacing)
        draws = dict(m=m, symmetric=symmetric, noise=noise, seed=seed, max_memory=max_memory)
        return ensembles.get(ensemble).build(n1, n2, **truth, **draws)

    @classmethod
    def generate(cls, ensemble: str, n1: int, n2: int | None = None, **kwargs) -> Problem:
        """A seeded synthetic problem of the named ensemble (the ``ensemble`` key of run files).

        ``ensemble``: a name of :func:`matsense.ensembles.names` — 'gaussian',
        'symmetric-gaussian', 'rank-one', 'completion', or an installed
        ensemble plugin's (:data:`ENSEMBLE_PLUGINS`); ``kwargs`` are those of
        the ensemble's builder (:meth:`gaussian`, :meth:`rank_one`,
        :meth:`completion`; a plugin's ``builder(n1, n2, **kwargs)``).
        ``meta['ensemble']`` names it. ``outlier_fraction``, ``outlier_scale``,
        ``outlier_mode``: outliers on any ensemble, seeded by ``seed``
        (:func:`matsense.corruption.with_outliers`).
        """
        from . import corruption

        outliers = corruption.outliers_from(kwargs)  # takes its keys out of kwargs
        problem = ensembles.get(ensemble).build(n1, n2, **kwargs)
        if outliers is None:
            return problem
        return corruption.with_outliers(problem, outliers, kwargs.get("seed", 0))

    @classmethod
    def rank_one(
        cls,
        n: int,
        *,
        r: int,
        m: int,
        n2: int | None = None,
        singular_values=None,
        kappa: float = 1.0,
        spacing: str = "geometric",
        symmetric: bool = False,
        noise: float = 0.0,
        seed: int = 0,
        symmetric_measurements: bool | None = None,
        max_memory=None,
    ) -> Problem:
        """Seeded synthetic problem with rank-one measurements A_i = a_i b_iᵀ.

        a_i ~ N(0, I_n1), b_i ~ N(0, I_n2) i.i.d. (b_i = a_i when ``symmetric``:
        covariance sensing ⟨a_i a_iᵀ, M⟩ = a_iᵀ M a_i); 𝒜(M)_i = a_iᵀ M b_i/√m,
        isotropic in expectation (covariance sensing is not: E[𝒜*𝒜](M) =
        2M + tr(M)·I on symmetric M). Stored as two m × n matrices; one
        iteration costs O(m(n1 + n2)k) (:class:`~matsense.operators.RankOneOperator`).
        M* is kept as factors when n1·n2 is large. ``symmetric_measurements``
        (default: ``symmetric``) chooses b_i = a_i separately, e.g. ``False``
        for a PSD M* seen through independent a_i, b_i (what ``matsense
        reproduce --ensemble rank-one`` uses). Other arguments as :meth:`gaussian`.
        """
        truth = dict(r=r, singular_values=singular_values, kappa=kappa, spacing=spacing)
        draws = dict(m=m, symmetric=symmetric, noise=noise, seed=seed)
        sym = symmetric_measurements
        return ensembles.get("rank-one").build(
            n, n2, **truth, **draws, symmetric_measurements=sym, max_memory=max_memory
        )

    @classmethod
    def completion(
        cls,
        n: int,
        *,
        r: int,
        m: int | None = None,
        p: float | None = None,
        n2: int | None = None,
        singular_values=None,
        kappa: float = 1.0,
        spacing: str = "geometric",
        symmetric: bool = False,
        noise: float = 0.0,
        seed: int = 0,
        max_memory=None,
    ) -> Problem:
        """Seeded matrix completion: m entries of M* observed, sampled uniformly.

        ``m`` distinct entries drawn uniformly without replacement, or each entry
        kept with probability ``p`` (give one of the two). 𝒜(M)_i =
        √(n1·n2/m)·M[rows_i, cols_i], so that 𝒜*𝒜 = I in expectation; stored
        as indices and values, O(mk) per iteration
        (:class:`~matsense.operators.EntryOperator`). U, V Haar-random (hence
        incoherent with high probability). M* is kept as factors when n1·n2 is
        large. Other arguments as :meth:`gaussian`.
        """
        truth = dict(r=r, singular_values=singular_values, kappa=kappa, spacing=spacing)
        draws = dict(m=m, p=p, symmetric=symmetric, noise=noise, seed=seed, max_memory=max_memory)
        return ensembles.get("completion").build(n, n2, **truth, **draws)

    @classmethod
    def observe(cls, op, rng, truth, noise, symmetric, meta) -> Problem:
        """The generated problem of operator ``op`` and ``truth`` (:func:`draw_truth`):
        y = 𝒜(M*) (:meth:`~matsense.operators.MatrixOperator.measure_truth`), plus
        ``noise``·ε drawn from ``rng``; ``meta`` completed with σ, κ, symmetric and noise.
        What an ensemble's builder ends with.
        """
        U, sigma, Vb, M_dense = truth
        y = op.measure_truth(U, sigma, Vb, M_dense)
        if noise > 0:
            with np.errstate(over="ignore"):
                y = y + noise * rng.standard_normal(op.m)
        with np.errstate(over="ignore"):
            y_ok = bool(np.all(np.isfinite(y)) and np.isfinite(np.linalg.norm(y)))
        if not y_ok:
            raise ValueError(
                f"the observations y overflow float64 (noise={noise:g}, "
                f"singular values up to {sigma[0]:g}): use smaller values"
            )
        meta = dict(
            meta,
            kappa=float(sigma[0] / sigma[-1]),
            singular_values=sigma.tolist(),
            symmetric=symmetric,
            noise=noise,
        )
        return cls(op, y, M_dense, symmetric, len(sigma), meta, U, Vb, np.diag(sigma))

    @classmethod
    def from_arrays(cls, A, y, M_star=None, *, symmetric: bool | None = None) -> Problem:
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
        return cls._from_data(DenseOperator(A), y, M_star, symmetric, "arrays")

    @classmethod
    def from_rank_one(cls, a, b, y, M_star=None, *, symmetric: bool | None = None) -> Problem:
        """A problem from your own rank-one measurements A_i = a_i b_iᵀ.

        Parameters
        ----------
        a : array, shape (m, n1)
        b : array, shape (m, n2), or None
            ``None``: b_i = a_i (symmetric measurements a_iᵀ M a_i).
        y : array, shape (m,)
            Observations on the operator's scale, y_i = a_iᵀ M* b_i / √m.
        M_star : array (n1, n2), optional
            Ground truth, only used to report errors.
        symmetric : bool, optional
            As for :meth:`from_arrays`.
        """
        from .operators.rank_one import RankOneOperator

        a = V.ndim_in("a", V.real_array("a", a), (2,))
        if b is not None:
            b = V.ndim_in("b", V.real_array("b", b), (2,))
            if b.shape[0] != a.shape[0]:
                raise ValueError(
                    f"a and b need one row per measurement: a has {a.shape[0]} rows, "
                    f"b has {b.shape[0]}"
                )
        y = V.ndim_in("y", V.real_array("y", y), (1,))
        if y.shape[0] != a.shape[0]:
            raise ValueError(
                f"y must have one entry per measurement: a has m={a.shape[0]} rows, "
                f"y has {y.shape[0]}"
            )
        for name, arr in (("a", a), ("b", b), ("y", y)):
            if arr is not None:
                V.finite_array(name, arr)
        return cls._from_data(RankOneOperator(a, b), y, M_star, symmetric, "rank-one arrays")

    @classmethod
    def from_entries(
        cls,
        rows,
        cols,
        values,
        shape,
        M_star=None,
        *,
        symmetric: bool | None = None,
        allow_duplicates: bool = False,
    ) -> Problem:
        """A matrix-completion problem from observed entries M[rows_i, cols_i] = values_i.

        ``values`` are the entries themselves (not scaled): the operator is 𝒜(M)_i =
        √(n1·n2/m)·M[rows_i, cols_i] and ``problem.y`` holds the values on that scale, in the
        operator's order (``problem.operator.order`` maps yours to it; sorted by column tile, row,
        then column). Duplicate (row, col) pairs are an error unless ``allow_duplicates``.
        """
        from .operators.completion import EntryOperator

        op = EntryOperator(rows, cols, shape, allow_duplicates=allow_duplicates)
        values = V.ndim_in("values", V.real_array("values", values), (1,))
        if values.shape[0] != op.m:
            raise ValueError(
                f"values must have one entry per (row, col): {op.m} indices, "
                f"{values.shape[0]} values"
            )
        V.finite_array("values", values)
        y = op.scale * np.asarray(values, dtype=float)[op.order]
        return cls._from_data(op, y, M_star, symmetric, "entries")

    @classmethod
    def _from_data(cls, op, y, M_star, symmetric, source) -> Problem:
        """A problem from a user's operator and observations, with an optional dense M*
        (``meta['source']`` says what the data were: 'arrays', 'rank-one arrays', 'entries')."""
        n1, n2 = op.shape
        U = Vb = None
        rank = None
        if symmetric is not None:
            symmetric = V.strict_bool("symmetric", symmetric)
        if M_star is not None:
            M_star = V.ndim_in("M_star", V.real_array("M_star", M_star), (2,))
            if tuple(M_star.shape) != (n1, n2):
                raise ValueError(
                    f"M_star must have shape (n1, n2) = {(n1, n2)} to match the "
                    f"measurements, got {tuple(M_star.shape)}"
                )
            V.finite_array("M_star", M_star)
            Mn = backend.to_numpy(M_star)
            U, Vb, rank = _column_space(Mn)
            if symmetric is None:
                symmetric = n1 == n2 and np.allclose(
                    Mn, Mn.T, atol=1e-12 * max(1.0, np.abs(Mn).max())
                )
        symmetric = bool(symmetric)
        if symmetric and n1 != n2:
            raise ValueError(f"a symmetric problem needs square measurements, got n1={n1}, n2={n2}")
        meta = dict(source=source, n1=n1, n2=n2, m=op.m, r=rank, symmetric=symmetric)
        return cls(op, y, M_star, symmetric, rank, meta, U, Vb)

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
    def has_truth(self) -> bool:
        """Whether M* is known (densely, or as factors U_star S_star V_starᵀ)."""
        return self.M_star is not None or self.S_star is not None

    @property
    def M_star_norm(self) -> float | None:
        if self.M_star is not None:
            return float(np.linalg.norm(backend.to_numpy(self.M_star)))
        if self.S_star is not None:
            return float(np.linalg.norm(self.S_star))
        return None

    def dense_M_star(self):
        """M* as an n1 × n2 array: the stored one, or formed from its factors (small sizes)."""
        if self.M_star is not None:
            return self.M_star
        if self.S_star is None:
            return None
        self.operator.check_dense("the dense M*")
        return (self.U_star @ self.S_star) @ self.V_star.T

    def residual_and_adjoint(self, P):
        """r = 𝒜(P) − y and S = 𝒜*(r) for a batch of products P (B, n1, n2) (small sizes)."""
        return self.operator.residual_and_adjoint(P, self.y)

    def residual_and_grads(self, F, G):
        """r = 𝒜(F Gᵀ) − y, S G and Sᵀ F (S = 𝒜*(r)) for factors F (B, n1, k), G (B, n2, k).

        What every factored method needs; no n1 × n2 matrix unless the
        ensemble stores one. For X Xᵀ pass F = G = X: sym(S) X = (S X + Sᵀ X)/2.
        """
        return self.operator.residual_and_grads(F, G, self.y)

    def evaluate(self, request):
        """The evaluation a method's step asks for (an
        :class:`~matsense.operators.stacking.Evaluation` at F, G): (r, S G, Sᵀ F) from
        :meth:`residual_and_grads`, or with ``request.adjoint`` (r, S, P) at P = F Gᵀ from
        :meth:`residual_and_adjoint` (small sizes)."""
        if request.adjoint:
            P = request.F @ request.G.mT
            return (*self.residual_and_adjoint(P), P)
        return self.residual_and_grads(request.F, request.G)

    def adjoint_matmul(self, r, V):
        """𝒜*(r) V for residuals r (B, m) and V (B, n2, j) → (B, n1, j), without forming
        the n1 × n2 matrix 𝒜*(r)."""
        return self.operator.adjoint_matmul(r, V)

    def adjoint_rmatmul(self, r, U):
        """𝒜*(r)ᵀ U for residuals r (B, m) and U (B, n1, j) → (B, n2, j)."""
        return self.operator.adjoint_rmatmul(r, U)

    def replace(self, **changes) -> Problem:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------ backends, operators
    def to(self, backend: str = "numpy", device: str = "cpu", dtype=None) -> Problem:
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
        return self.replace(
            operator=self.operator.to(tgt),
            y=_backend.convert(self.y, tgt),
            M_star=_backend.convert(self.M_star, tgt),
            meta=meta,
        )

    def with_symmetric_operator(self) -> Problem:
        """This symmetric problem with 𝒜 replaced by its packed symmetric part.

        A :class:`~matsense.operators.SymmetricOperator` stores svec(sym(A_i))
        (n(n+1)/2 numbers per measurement instead of n²), halving the bytes
        read per iteration. y and M* are kept: for symmetric P,
        <sym(A_i), P> = <A_i, P>, so X Xᵀ runs follow the same trajectory. For
        F Gᵀ the operator measures <A_i, sym(F Gᵀ)> instead of <A_i, F Gᵀ> —
        a different (equally valid) sensing operator; see the operator's docs.
        """
        if not self.symmetric:
            raise ValueError(
                "with_symmetric_operator() needs a symmetric problem "
                "(symmetric=True); this one is asymmetric"
            )
        packed = self.operator.symmetric_packed()
        if packed is self.operator:
            return self
        return self.replace(operator=packed, meta=dict(self.meta, operator="symmetric"))
