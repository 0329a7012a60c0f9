"""
Results in a notebook
=====================

A tour of what the results look like in Jupyter (download this page as a notebook at the
bottom): trajectories, batches, fits and the reproduction's verdicts show as HTML tables,
``.plot()`` draws the error curve with each phase marked, and ``.to_frame()`` gives the long
pandas table behind it.
"""

import os
import tempfile

import matsense as ms
from matsense.experiments import reproduce

TINY = os.environ.get("MATSENSE_GALLERY_TINY") == "1"  # the test suite's sizes
n, iters = (10, 600) if TINY else (20, 2000)

problem = ms.Problem.gaussian(n, r=2, m=3 * n * n // 2, singular_values=[1, 0.5], seed=0)
init = ms.init.small_random(problem, k=3, alpha=[0.1, 0.05, 0.02], seed=0)
batch = ms.run(problem, ms.RebalancedGD(step_size=0.3, tau=1e-2), init=init, iters=iters,
               tol=1e-10, record_every=5)

# %%
# A batch: a count per status, one row per trajectory.
batch

# %%
# One of its trajectories, with its phases (before and after the rebalancing switch):
batch[1]

# %%
# Its error curve, the switch marked:
batch[1].plot()

# %%
# The linear rate after the switch, with its window:
traj = batch[1]
fit, phase = ms.rates.method_rate(ms.RebalancedGD(), traj.history["iteration"],
                                  traj.history["error"], traj.extras)
fit

# %%
# The long table: one row per trajectory and recorded iteration.
batch.to_frame().head()

# %%
# The reproduction's verdicts (here two claims, quick settings, one process):
reproduce(tempfile.mkdtemp(), quick=True, claims=["C1"] if TINY else ["C1", "C7"], workers=1)
