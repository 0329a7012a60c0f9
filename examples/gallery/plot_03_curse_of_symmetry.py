"""
The curse of symmetry
=====================

Claims C1 and C2: on a symmetric problem (M* positive semi-definite), gradient descent on
X Xᵀ converges linearly when X has exactly r columns, but only sublinearly — the error
∝ 1/t, the loss ∝ 1/t² — when it has more (k > r), however small the start.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import matsense as ms

TINY = os.environ.get("MATSENSE_GALLERY_TINY") == "1"  # the test suite's sizes
n, iters = (10, 400) if TINY else (20, 3000)

problem = ms.Problem.gaussian(n, r=2, m=3 * n * n // 2, singular_values=[1, 0.5],
                              symmetric=True, seed=0)
exact = ms.run(problem, ms.GD(step_size=0.3), iters=iters, record_every=5,
               init=ms.init.symmetric_random(problem, k=2, alpha=0.01, seed=0))
over = ms.run(problem, ms.GD(step_size=0.3), iters=iters, record_every=5,
              init=ms.init.symmetric_random(problem, k=3, alpha=0.01, seed=0))

h = over.history
tail = ms.rates.power_law(h["iteration"], h["error"])
print(f"k = r: {exact.status} at t = {exact.iterations}; "
      f"k > r: error ∝ t^{tail.value:.2f} on t ∈ [{tail.t_start:g}, {tail.t_end:g}]")

# %%
# On log-log axes the over-parameterized error approaches a straight line of slope −1.
fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
for traj, label in ((exact, "k = r = 2: linear"), (over, "k = 3 > r: sublinear")):
    t, err = traj.history["iteration"], traj.history["error"]
    ax.loglog(t[1:], err[1:], label=label)
t = h["iteration"][1:]
ax.loglog(t, h["error"][-1] * t[-1] / t, ":", color="0.4", label="∝ 1/t")
ax.set(xlabel="iteration t", ylabel="‖X Xᵀ − M*‖_F", title="X Xᵀ with k = r and k > r")
ax.legend()
