"""
First recovery
==============

Recover a rank-2 matrix M* (30 × 30, singular values 1 and 0.5) from m Gaussian
measurements y_i = ⟨A_i, M*⟩/√m by gradient descent on a factorization F Gᵀ with k = 4 > r
columns, started small (entries of F₀ ~ N(0, α²)).
"""

import os

import matsense as ms

TINY = os.environ.get("MATSENSE_GALLERY_TINY") == "1"  # the test suite's sizes
n, iters = (12, 300) if TINY else (30, 1500)

problem = ms.Problem.gaussian(n, r=2, m=n * n, singular_values=[1, 0.5], seed=0)
F0, G0 = ms.init.small_random(problem, k=4, alpha=0.04, seed=1)
traj = ms.run(problem, ms.GD(step_size=0.3), init=(F0, G0), iters=iters, tol=1e-10)
print(traj.status, traj.iterations, traj.history["rel_error"][-1])

# %%
# The error curve: a fast drop while the signal grows out of the small start, then a slow
# linear phase — its rate ∝ α² is the over-parameterization slowdown of the next example.
traj.plot(title="GD on F Gᵀ, k = 4 > r = 2")

# %%
# In a notebook, the trajectory itself shows as a summary table:
traj
