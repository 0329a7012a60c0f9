"""Initializations (PAPER.md §3).

``small_random``: entries of F_0 i.i.d. N(0, α²) and of G_0 i.i.d. N(0, (ratio·α)²)
(independent draws; the paper's default ratio 1/3 creates the imbalance
F_0ᵀF_0 − G_0ᵀG_0 the asymmetric rate depends on). With
``normalization="sqrt_n"`` the standard deviation is divided by √n (n the
factor's number of rows). ``balanced`` sets G_0 = F_0; ``symmetric_random``
draws X_0 for X Xᵀ.

Batching: ``alpha`` and ``seed`` may be scalars or sequences; they broadcast
to a batch of B trajectories, trajectory b drawn from
``default_rng(seed[b])`` at scale ``alpha[b]``. A batched call therefore equals
the same calls one by one. With scalar ``alpha`` and ``seed`` the factors have
no batch axis.
"""

from __future__ import annotations

import numpy as np

from . import _validate as V

NORMALIZATIONS = ("entry", "sqrt_n")


def _broadcast(alpha, seed):
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


def small_random(problem, k: int, alpha, *, ratio: float = 1 / 3,
                 normalization: str = "entry", seed=0):
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
    n1, n2 = problem.shape
    if n1 != n2:
        raise ValueError(f"balanced initialization needs n1 == n2, got {n1} and {n2}")
    X0 = symmetric_random(problem, k, alpha, normalization=normalization, seed=seed)
    return X0, X0.copy()


def symmetric_random(problem, k: int, alpha, *, normalization: str = "entry", seed=0):
    """Small random X_0 for X Xᵀ, entries i.i.d. N(0, α²) (or N(0, α²/n))."""
    n1, n2 = problem.shape
    if n1 != n2:
        raise ValueError(f"X Xᵀ needs a square problem, got shape {(n1, n2)}")
    k = _check_k(problem, k)
    alphas, seeds, batched = _broadcast(alpha, seed)
    Xs = [_scale(a, n1, normalization) * np.random.default_rng(s).standard_normal((n1, k))
          for a, s in zip(alphas, seeds)]
    return _finish(Xs, batched)
