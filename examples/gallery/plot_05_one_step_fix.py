"""
The one-step fix
================

Claim C7: one rebalancing step, taken once the residual is small, removes the dependence
of the rate on α — after the switch the error falls at the rate of the exactly
parameterized problem, whatever the start. matsense's
:class:`~matsense.methods.RebalancedGD` is a reconstruction of the paper's method
(:doc:`../conventions`). Each curve's switch is marked.
"""

import os

import matplotlib.pyplot as plt

import matsense as ms

TINY = os.environ.get("MATSENSE_GALLERY_TINY") == "1"  # the test suite's sizes
n, iters = (12, 600) if TINY else (20, 3000)
alphas = [0.16, 0.04]

problem = ms.Problem.gaussian(n, r=2, m=3 * n * n // 2, singular_values=[1, 0.5],
                              seed=0)
init = ms.init.small_random(problem, k=3, alpha=alphas, seed=0)
plain = ms.run(problem, ms.GD(step_size=0.3), init=init, iters=iters, tol=1e-10)
fixed = ms.run(problem, ms.RebalancedGD(step_size=0.3, tau=1e-2), init=init, iters=iters,
               tol=1e-10)
for alpha, a, b in zip(alphas, plain, fixed):
    print(f"α = {alpha:<5g} GD {a.status} at t = {a.iterations}, rebalanced GD {b.status} "
          f"at t = {b.iterations}")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained", sharey=True)
plain.plot(left, title="GD, α = 0.16 and 0.04")
fixed.plot(right, title="rebalanced GD, α = 0.16 and 0.04")

# %%
# The rate after the switch, fitted on the phase the method declares as its last:
for traj, alpha in zip(fixed, alphas):
    fit, phase = ms.rates.method_rate(ms.RebalancedGD(), traj.history["iteration"],
                                      traj.history["error"], traj.extras)
    print(f"α = {alpha:<5g} {phase.name} from t = {phase.start}: rate {fit.value:.3g}")
