"""
The α² slowdown
===============

Claim C4: with more columns than the rank (k > r), gradient descent on F Gᵀ converges
linearly, but with a rate proportional to α², the square of the initialization scale.
Halving α quarters the rate. Three scales run as one batch (one operator pass per
iteration for the three trajectories).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import matsense as ms

TINY = os.environ.get("MATSENSE_GALLERY_TINY") == "1"  # the test suite's sizes
n, iters = (12, 400) if TINY else (20, 4000)
alphas = [0.16, 0.08, 0.04]

problem = ms.Problem.gaussian(n, r=2, m=3 * n * n // 2, singular_values=[1, 0.5],
                              seed=0)
init = ms.init.small_random(problem, k=3, alpha=alphas, seed=0)  # a batch of 3 starts
batch = ms.run(problem, ms.GD(step_size=0.3), init=init, iters=iters, tol=1e-10,
               record_every=5)
batch

# %%
# The linear rate of each trajectory, fitted where its error is between 1e-4 and 1e-10 of
# its start (each fit carries its window):
rates = []
for alpha, traj in zip(alphas, batch):
    h = traj.history
    fit = ms.rates.linear_rate(h["iteration"], h["error"], window=(1e-4, 1e-10))
    rates.append(fit.value)
    print(f"α = {alpha:<5g} rate {fit.value:.3g} on t ∈ [{fit.t_start:g}, {fit.t_end:g}]")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
batch.plot(left, title="error for α = 0.16, 0.08, 0.04")
good = np.isfinite(rates)   # a run too short for the window has no rate
slope = (np.polyfit(np.log(np.array(alphas)[good]), np.log(np.array(rates)[good]), 1)[0]
         if good.sum() >= 2 else np.nan)
right.loglog(alphas, rates, "o-", label=f"measured, log-log slope {slope:.2f}")
right.loglog(alphas, rates[0] * (np.array(alphas) / alphas[0]) ** 2, ":", color="0.4",
             label="∝ α²")
right.set(xlabel="α", ylabel="linear rate", title="rate against α")
right.legend()
