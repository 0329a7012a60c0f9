"""
The asymmetric speed-up
=======================

Claim C5: on the same symmetric problem and the same over-parameterized width k > r, the
asymmetric factorization F Gᵀ converges linearly where X Xᵀ is stuck at 1/t — as long as the
two factors start different (F₀ ≠ G₀: their imbalance Δ = F₀ᵀF₀ − G₀ᵀG₀ drives the rate).
"""

import os

import matplotlib.pyplot as plt

import matsense as ms

TINY = os.environ.get("MATSENSE_GALLERY_TINY") == "1"  # the test suite's sizes
n, iters = (10, 500) if TINY else (20, 3000)

problem = ms.Problem.gaussian(n, r=2, m=3 * n * n // 2, singular_values=[1, 0.5],
                              symmetric=True, seed=0)
X0 = ms.init.symmetric_random(problem, k=3, alpha=0.1, seed=0)
F0, G0 = ms.init.small_random(problem, k=3, alpha=0.1, seed=0)   # G₀ at scale α/3
gd = ms.GD(step_size=0.3)
symmetric = ms.run(problem, gd, init=X0, iters=iters, tol=1e-10, record_every=5)
asymmetric = ms.run(problem, gd, init=(F0, G0), iters=iters, tol=1e-10, record_every=5)
print(f"X Xᵀ: {symmetric.status}, F Gᵀ: {asymmetric.status} at t = {asymmetric.iterations}")

# %%
fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
symmetric.plot(ax)
asymmetric.plot(ax, title="k = 3 > r = 2 on a PSD M*")
ax.lines[0].set_label("X Xᵀ (symmetric)")
ax.lines[1].set_label("F Gᵀ (asymmetric)")
ax.legend()
