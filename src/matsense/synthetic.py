"""The shared parts of matsense's seeded synthetic problems (re-exported by :mod:`matsense.problems`).

The σ profile (:func:`singular_value_profile`), the validated arguments every generated problem
shares (:func:`common_arguments`), the Haar-random ground truth drawn first from the seeded
generator (:func:`draw_truth`, :func:`haar_orthonormal`) and the memory check before anything is
allocated (:func:`check_memory`): what an ensemble's builder starts with.
"""

from __future__ import annotations

import math

import numpy as np

from . import _validate as V
from . import limits


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


def check_memory(what: str, nbytes: int, max_memory=None) -> None:
    """ValueError (one line) when ``nbytes`` for ``what`` exceed the memory limit in force."""
    from . import memory

    memory.check(what, nbytes, max_memory)


def common_arguments(
    n1, n2, r, kappa, singular_values, spacing, symmetric, noise, seed, max_memory=None
):
    """The validated arguments every generated problem shares, with σ descending:
    (n1, n2, r, σ, noise, seed) — what an ensemble's builder checks first."""
    n1 = V.int_in_range("n1", n1, 1)
    n2 = n1 if n2 is None else V.int_in_range("n2", n2, 1)
    symmetric = V.strict_bool("symmetric", symmetric)
    if symmetric and n1 != n2:
        raise ValueError(f"a symmetric problem needs n1 == n2, got n1={n1}, n2={n2}")
    r = V.int_in_range("r", r, 1, min(n1, n2))
    noise = V.positive_float("noise", noise, allow_zero=True)
    seed = V.int_in_range("seed", seed, 0)
    if singular_values is None:
        sigma = singular_value_profile(r, kappa, spacing)
    else:
        sigma = np.asarray(V.real_array("singular_values", singular_values), dtype=float)
        if sigma.shape != (r,):
            raise ValueError(f"singular_values must have r={r} entries, got shape {sigma.shape}")
        if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
            raise ValueError(f"singular_values must be finite and > 0, got {sigma.tolist()}")
        sigma = np.sort(sigma)[::-1].copy()
        with np.errstate(over="ignore"):
            spread, size = sigma[0] / sigma[-1], float(np.sqrt(np.sum(sigma**2)))
        if not (math.isfinite(spread) and math.isfinite(size)):
            raise ValueError(
                f"singular_values {sigma.tolist()} overflow float64 (σ_1/σ_r = "
                f"{spread:g}, ‖σ‖ = {size:g}): keep them within about 1e±150"
            )
    check_memory("the factors of M*", (n1 + n2) * r * 8, max_memory)
    return n1, n2, r, sigma, noise, seed


def draw_truth(rng, n1, n2, r, sigma, symmetric):
    """(U, σ, V, dense M* or None): Haar U, V (V = U when symmetric), drawn first from ``rng``;
    M* formed densely within the dense limit (:data:`matsense.limits.DENSE`, use 'truth')."""
    U = haar_orthonormal(rng, n1, r)
    Vb = U if symmetric else haar_orthonormal(rng, n2, r)
    if not limits.DENSE.allows((n1, n2), "truth"):
        return U, sigma, Vb, None
    M_star = (U * sigma) @ Vb.T
    if symmetric:
        M_star = (M_star + M_star.T) / 2
    return U, sigma, Vb, M_star


def haar_orthonormal(rng: np.random.Generator, n: int, r: int) -> np.ndarray:
    """An n×r matrix with Haar-distributed orthonormal columns (QR with sign fix)."""
    Q, R = np.linalg.qr(rng.standard_normal((n, r)))
    return Q * np.sign(np.diag(R))
