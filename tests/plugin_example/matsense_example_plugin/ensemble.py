"""Dense Rademacher measurements: every entry of every A_i is ±1 with probability 1/2."""

import numpy as np

from matsense.problems import Problem, haar_orthonormal, singular_value_profile


def rademacher(
    n1,
    n2=None,
    *,
    r,
    m,
    seed=0,
    kappa=1.0,
    singular_values=None,
    spacing="geometric",
    symmetric=False,
    noise=0.0,
    **unused,
):
    """M* = U diag(σ) Vᵀ (Haar U, V; V = U when symmetric), y_i = ⟨A_i, M*⟩/√m + noise·ε_i."""
    n2 = n1 if n2 is None else n2
    sigma = (
        singular_value_profile(r, kappa, spacing)
        if singular_values is None
        else np.sort(np.asarray(singular_values, dtype=float))[::-1]
    )
    rng = np.random.default_rng(seed)
    U = haar_orthonormal(rng, n1, r)
    V = U if symmetric else haar_orthonormal(rng, n2, r)
    M_star = (U * sigma) @ V.T
    A = rng.choice([-1.0, 1.0], size=(m, n1, n2))
    y = np.einsum("ijk,jk->i", A, M_star) / np.sqrt(m) + noise * rng.standard_normal(m)
    return Problem.from_arrays(A, y, M_star, symmetric=symmetric)


# Optional: bytes of the measurement data, so that sweeps and --max-memory can refuse a run
# that would not fit before building it.
rademacher.memory_bytes = lambda n1, n2, m: 8 * m * n1 * n2
