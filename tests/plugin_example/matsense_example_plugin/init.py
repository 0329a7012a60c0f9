"""A balanced orthogonal start: F_0 = G_0 = α·Q, Q with k orthonormal columns (seeded)."""

import numpy as np

from matsense.init import InitSpec
from matsense.problems import haar_orthonormal


def orthogonal(problem, k, alpha, *, normalization="entry", seed=0):
    n1, n2 = problem.shape
    rng = np.random.default_rng(seed)
    F0 = alpha * haar_orthonormal(rng, n1, k)
    return F0, alpha * haar_orthonormal(rng, n2, k)


ORTHOGONAL = InitSpec("orthogonal", orthogonal, random=True)  # random: uses alpha and seed
