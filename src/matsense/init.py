"""Initializations (docs/conventions.md).

``small_random``: entries of F_0 i.i.d. N(0, α²) and of G_0 i.i.d. N(0, (ratio·α)²)
(independent draws; the paper's default ratio 1/3 creates the imbalance
F_0ᵀF_0 − G_0ᵀG_0 the asymmetric rate depends on). With
``normalization="sqrt_n"`` the standard deviation is divided by √n (n the
factor's number of rows). ``balanced`` sets G_0 = F_0; ``symmetric_random``
draws X_0 for X Xᵀ. ``spectral`` (top-k SVD of 𝒜*(y)) and
``spectral_symmetric`` (top-k eigenpairs of sym(𝒜*(y))) are deterministic, as
are ``zeros`` / ``zeros_symmetric`` (SVP's start M_0 = 0). ``spectral_trimmed`` and
``spectral_trimmed_symmetric`` are the spectral starts from the (1 − p_s)m
measurements of smallest |y_i| (robust recovery, docs/robust.md). :data:`INITS` names
them all (an :class:`InitSpec` each: random or not, F Gᵀ or X Xᵀ, how to build).

Batching: ``alpha`` and ``seed`` may be scalars or sequences; they broadcast
to a batch of B trajectories, trajectory b drawn from
``default_rng(seed[b])`` at scale ``alpha[b]``. A batched call therefore equals
the same calls one by one. With scalar ``alpha`` and ``seed`` the factors have
no batch axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import _validate as V
from . import plugins

NORMALIZATIONS = ("entry", "sqrt_n")


def _scalars(name: str, value, check):
    """A real scalar or a non-empty 1-d sequence of them, each validated by ``check``."""
    if np.ndim(value) == 0 and not isinstance(value, (list, tuple)):
        check(name, value.item() if isinstance(value, np.generic) else value)
        return
    try:
        items = list(np.asarray(value, dtype=object).ravel()) if np.ndim(value) <= 1 else None
    except Exception:  # noqa: BLE001 - ragged input
        items = None
    if items is None:
        raise ValueError(f"{name} must be a scalar or a 1-d sequence, got {value!r}")
    if not items:
        raise ValueError(f"{name} must be a scalar or a non-empty sequence, got {value!r}")
    for v in items:
        check(name, v.item() if isinstance(v, np.generic) else v)


def _seed_value(name, value):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        V.int_in_range(name, value, 0)
        return
    raise ValueError(f"{name} must be a non-negative integer (or a list of them), got {value!r}")


def _broadcast(alpha, seed):
    _scalars("alpha", alpha, V.positive_float)
    _scalars("seed", seed, _seed_value)
    a = np.atleast_1d(np.asarray(alpha, dtype=float))
    s = np.atleast_1d(np.asarray(seed))
    if a.ndim != 1 or s.ndim != 1:
        raise ValueError("alpha and seed must be scalars or 1-d sequences")
    try:
        a, s = np.broadcast_arrays(a, s)
    except ValueError:
        raise ValueError(
            f"alpha ({a.size} values) and seed ({s.size} values) must have equal lengths or be scalars"
        ) from None
    for value in a:
        V.positive_float("alpha", float(value))
    if not np.issubdtype(s.dtype, np.integer):
        raise ValueError(f"seed must be a non-negative integer (or a list of them), got {seed!r}")
    seeds = [V.int_in_range("seed", int(v), 0) for v in s]
    batched = np.ndim(alpha) > 0 or np.ndim(seed) > 0
    return a, seeds, batched


def _check_k(problem, k):
    V.problem_arg(problem, "init")
    n1, n2 = problem.shape
    return V.int_in_range("k", k, 1, min(n1, n2))


def _scale(alpha: float, n: int, normalization: str) -> float:
    if normalization == "entry":
        return alpha
    if normalization == "sqrt_n":
        return alpha / np.sqrt(n)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")


def _finish(arrays, batched):
    out = np.stack(arrays)
    return out if batched else out[0]


def small_random(
    problem, k: int, alpha, *, ratio: float = 1 / 3, normalization: str = "entry", seed=0
):
    """Small random (F_0, G_0): F_0 at scale α, G_0 at scale ratio·α, independent.

    Returns
    -------
    (F0, G0) : arrays of shape ([B,] n1, k) and ([B,] n2, k)
    """
    k = _check_k(problem, k)
    ratio = V.positive_float("ratio", ratio)
    alphas, seeds, batched = _broadcast(alpha, seed)
    n1, n2 = problem.shape
    Fs, Gs = [], []
    for a, s in zip(alphas, seeds):
        rng = np.random.default_rng(s)
        Fs.append(_scale(a, n1, normalization) * rng.standard_normal((n1, k)))
        Gs.append(_scale(ratio * a, n2, normalization) * rng.standard_normal((n2, k)))
    return _finish(Fs, batched), _finish(Gs, batched)


def balanced(problem, k: int, alpha, *, normalization: str = "entry", seed=0):
    """Balanced (F_0, G_0) with G_0 = F_0 (zero imbalance): the "curse of symmetry"."""
    V.problem_arg(problem, "init")
    n1, n2 = problem.shape
    if n1 != n2:
        raise ValueError(f"balanced initialization needs n1 == n2, got {n1} and {n2}")
    X0 = symmetric_random(problem, k, alpha, normalization=normalization, seed=seed)
    return X0, X0.copy()


def symmetric_random(problem, k: int, alpha, *, normalization: str = "entry", seed=0):
    """Small random X_0 for X Xᵀ, entries i.i.d. N(0, α²) (or N(0, α²/n))."""
    V.problem_arg(problem, "init")
    n1, n2 = problem.shape
    if n1 != n2:
        raise ValueError(f"X Xᵀ needs a square problem, got shape {(n1, n2)}")
    k = _check_k(problem, k)
    alphas, seeds, batched = _broadcast(alpha, seed)
    Xs = [
        _scale(a, n1, normalization) * np.random.default_rng(s).standard_normal((n1, k))
        for a, s in zip(alphas, seeds)
    ]
    return _finish(Xs, batched)


def _adjoint_of_y(problem) -> np.ndarray:
    """𝒜*(y) as a NumPy (n1, n2) array (≈ M* when E[𝒜*𝒜] = I); small sizes only."""
    from . import backend

    y = problem.y
    return backend.to_numpy(problem.operator.adjoint(y[None]))[0].astype(float)


def _use_matrix_free(problem, k: int, matrix_free) -> bool:
    """Whether the spectral init works on 𝒜*(y) as a linear operator (default: where the
    operator does not form n1 × n2 matrices, above the dense limit: 𝒜*(y) is never formed)."""
    n1, n2 = problem.shape
    if matrix_free is None:
        matrix_free = not problem.operator.forms_dense()
    matrix_free = V.strict_bool("matrix_free", matrix_free)
    return matrix_free and k < min(n1, n2)  # ARPACK needs k < min(n1, n2)


def _adjoint_of_y_operator(problem, symmetric: bool = False):
    """𝒜*(y) (or its symmetric part) as a scipy LinearOperator: products with the factored
    calls ``adjoint_matmul`` / ``adjoint_rmatmul``, O(m k) or O(m n k) each, never n1 × n2."""
    from scipy.sparse.linalg import LinearOperator

    from . import backend

    op, y = problem.operator, problem.y
    z = y[None]
    tgt = backend.target_of(y)
    n1, n2 = problem.shape

    def matmat(x):  # 𝒜*(y) x, x of shape (n2, j)
        x = backend.convert(np.asarray(x, dtype=float).reshape(n2, -1), tgt)
        return backend.to_numpy(op.adjoint_matmul(z, x[None])[0]).astype(float)

    def rmatmat(x):  # 𝒜*(y)ᵀ x, x of shape (n1, j)
        x = backend.convert(np.asarray(x, dtype=float).reshape(n1, -1), tgt)
        return backend.to_numpy(op.adjoint_rmatmul(z, x[None])[0]).astype(float)

    if symmetric:

        def sym(x):
            return (matmat(x) + rmatmat(x)) / 2

        return LinearOperator(
            (n1, n1), matvec=sym, rmatvec=sym, matmat=sym, rmatmat=sym, dtype=float
        )
    return LinearOperator(
        (n1, n2), matvec=matmat, rmatvec=rmatmat, matmat=matmat, rmatmat=rmatmat, dtype=float
    )


def spectral(problem, k: int, *, matrix_free: bool | None = None):
    """Spectral (F_0, G_0): top-k SVD 𝒜*(y) ≈ U_k Σ_k V_kᵀ split as F_0 = U_k √Σ_k, G_0 = V_k √Σ_k.

    Deterministic (no seed): the factors have no batch axis. ``matrix_free``
    (default: when the operator does not form n1 × n2 matrices, above the dense
    limit :data:`matsense.limits.DENSE`) finds
    the top k singular triplets with ARPACK (``scipy.sparse.linalg.svds``) on
    𝒜*(y) as a linear operator instead of an SVD of the dense n1 × n2 matrix;
    the two agree to solver precision (singular vectors up to sign).

    Returns
    -------
    (F0, G0) : arrays of shape (n1, k) and (n2, k)
    """
    k = _check_k(problem, k)
    if _use_matrix_free(problem, k, matrix_free):
        from scipy.sparse.linalg import svds

        U, s, Vt = svds(_adjoint_of_y_operator(problem), k=k, random_state=0)
        order = np.argsort(s)[::-1]
        U, s, Vt = U[:, order], s[order], Vt[order]
    else:
        U, s, Vt = np.linalg.svd(_adjoint_of_y(problem), full_matrices=False)
    root = np.sqrt(s[:k])
    return U[:, :k] * root, Vt[:k].T * root


def spectral_symmetric(problem, k: int, *, matrix_free: bool | None = None):
    """Spectral X_0 for X Xᵀ: top-k eigenpairs (λ_i, u_i) of sym(𝒜*(y)), X_0 = U_k √max(λ_k, 0).

    ``matrix_free`` as for :func:`spectral` (ARPACK ``eigsh``, largest algebraic).

    Returns
    -------
    X0 : array of shape (n, k)
    """
    V.problem_arg(problem, "init")
    n1, n2 = problem.shape
    if n1 != n2:
        raise ValueError(f"X Xᵀ needs a square problem, got shape {(n1, n2)}")
    k = _check_k(problem, k)
    if _use_matrix_free(problem, k, matrix_free):
        from scipy.sparse.linalg import eigsh

        w, Q = eigsh(
            _adjoint_of_y_operator(problem, symmetric=True),
            k=k,
            which="LA",
            v0=np.ones(n1) / np.sqrt(n1),
        )
        order = np.argsort(w)[::-1]
        w, Q = w[order], Q[:, order]
    else:
        S0 = _adjoint_of_y(problem)
        w, Q = np.linalg.eigh((S0 + S0.T) / 2)
        w, Q = w[::-1][:k], Q[:, ::-1][:, :k]
    return Q * np.sqrt(np.maximum(w, 0.0))


def _trimmed(problem, fraction):
    """The problem with its round(fraction·m) largest |y_i| set to 0 (the rest kept).

    ``fraction`` None: the problem's outlier fraction (``meta['outliers']``, 0 without)."""
    from . import backend

    if fraction is None:
        fraction = problem.meta.get("outliers", {}).get("fraction", 0.0)
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not (0 <= fraction < 1)
    ):
        raise ValueError(f"trim fraction must be a number in [0, 1), got {fraction!r}")
    y = backend.to_numpy(problem.y)
    drop = int(round(fraction * y.shape[0]))
    if drop == 0:
        return problem
    keep = np.ones(y.shape[0], dtype=bool)
    keep[np.argsort(np.abs(y), kind="stable")[y.shape[0] - drop :]] = False
    return problem.replace(y=backend.convert(np.where(keep, y, 0.0), backend.target_of(problem.y)))


def spectral_trimmed(
    problem, k: int, *, fraction: float | None = None, matrix_free: bool | None = None
):
    """:func:`spectral` of the trimmed observations: the (1 − p_s)m measurements of smallest
    |y_i| kept, the others set to 0 (the ScaledSM code's start under outliers).

    ``fraction`` = p_s, default the problem's outlier fraction (``meta['outliers']``; 0,
    the plain spectral start, when it has none).
    """
    return spectral(_trimmed(problem, fraction), k, matrix_free=matrix_free)


def spectral_trimmed_symmetric(
    problem, k: int, *, fraction: float | None = None, matrix_free: bool | None = None
):
    """:func:`spectral_symmetric` of the trimmed observations (see :func:`spectral_trimmed`)."""
    return spectral_symmetric(_trimmed(problem, fraction), k, matrix_free=matrix_free)


def zeros(problem, k: int):
    """Zero factors (F_0, G_0) = (0, 0) of k columns: the start M_0 = 0 of SVP.

    (Factored methods cannot leave 0: their gradient vanishes there.)
    """
    k = _check_k(problem, k)
    n1, n2 = problem.shape
    return np.zeros((n1, k)), np.zeros((n2, k))


def zeros_symmetric(problem, k: int):
    """Zero X_0 of k columns (SVP on X Xᵀ from M_0 = 0)."""
    V.problem_arg(problem, "init")
    n1, n2 = problem.shape
    if n1 != n2:
        raise ValueError(f"X Xᵀ needs a square problem, got shape {(n1, n2)}")
    k = _check_k(problem, k)
    return np.zeros((n1, k))


# ------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class InitSpec:
    """One initialization by name: its function and what it depends on.

    ``random``: drawn from ``default_rng(seed)`` at scale ``alpha`` (the others
    are deterministic and ignore alpha, ratio, normalization and seed).
    ``symmetric``: returns X_0 for X Xᵀ instead of (F_0, G_0). ``uses_ratio``:
    G_0 is drawn at ``ratio``·α.
    """

    name: str
    fn: Callable
    random: bool = False
    symmetric: bool = False
    uses_ratio: bool = False

    def build(
        self,
        problem,
        k: int,
        alpha=None,
        *,
        ratio: float = 1 / 3,
        normalization: str = "entry",
        seed=0,
    ):
        """The initial factors for ``problem`` with ``k`` columns."""
        if not self.random:
            return self.fn(problem, k)
        options = {"ratio": ratio} if self.uses_ratio else {}
        return self.fn(problem, k, alpha, normalization=normalization, seed=seed, **options)


def _specs(*specs: InitSpec) -> dict[str, InitSpec]:
    return {s.name: s for s in specs}


#: Every initialization by name: the one registry read by configs, ``matsense run`` and the
#: peer comparison. Register a new one by adding an :class:`InitSpec`; other packages add theirs
#: through the entry-point group ``matsense.inits`` (:mod:`matsense.plugins`, docs/plugins.md).
INITS = plugins.Registry(
    "init",
    _specs(
        InitSpec("small_random", small_random, random=True, uses_ratio=True),
        InitSpec("balanced", balanced, random=True),
        InitSpec("symmetric_random", symmetric_random, random=True, symmetric=True),
        InitSpec("spectral", spectral),
        InitSpec("spectral_symmetric", spectral_symmetric, symmetric=True),
        InitSpec("spectral_trimmed", spectral_trimmed),
        InitSpec("spectral_trimmed_symmetric", spectral_trimmed_symmetric, symmetric=True),
        InitSpec("zeros", zeros),
        InitSpec("zeros_symmetric", zeros_symmetric, symmetric=True),
    ),
    plugins.check_init,
)


def get_init(name: str) -> InitSpec:
    """The :class:`InitSpec` called ``name``; ValueError naming the known ones otherwise."""
    try:
        return INITS[name]
    except (KeyError, TypeError):
        raise INITS.unknown(
            name, f"unknown init {name!r}; known: {', '.join(sorted(INITS))}"
        ) from None
