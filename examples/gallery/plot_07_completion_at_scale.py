"""
Completion at scale
===================

Matrix completion: the measurements are observed entries of M*, and one iteration costs
O(m k) — nothing of size n1 × n2 is ever formed, not even M* (a generated problem keeps it as
factors, and the error is computed from them). Here a rank-3 matrix of 10 000 × 10 000
(10⁸ entries) from about 1% of them.
"""

import os

import matsense as ms

TINY = os.environ.get("MATSENSE_GALLERY_TINY") == "1"  # the test suite's sizes
n, p = (300, 0.2) if TINY else (10_000, 0.01)

problem = ms.Problem.completion(n, r=3, p=p, seed=0)
print(f"{problem.shape[0]} × {problem.shape[1]}, m = {problem.m} observed entries")
init = ms.init.small_random(problem, k=3, alpha=0.01, seed=0)
traj = ms.run(problem, ms.GD(step_size=0.5), init=init, iters=2000, tol=1e-8, record_every=5)
print(f"{traj.status} after {traj.iterations} iterations ({traj.wall_time:.2g} s)")
traj.plot(title=f"completion, n = {n}, {problem.m} entries")
traj
