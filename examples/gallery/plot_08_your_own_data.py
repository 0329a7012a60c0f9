"""
Your own data
=============

A table of observed entries — here a synthetic ratings table (users × items, two taste
factors, 30% of the ratings seen), written to CSV and read back as a data set of your own
would be — recovered by matrix completion. ``Problem.from_entries`` takes the row and column
indices and the raw values; dense measurements go through ``Problem.from_arrays`` and rank-one
measurements through ``Problem.from_rank_one`` (:doc:`../api`).
"""

import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import matsense as ms

TINY = os.environ.get("MATSENSE_GALLERY_TINY") == "1"  # the test suite's sizes
users, items, iters = (30, 20, 1500) if TINY else (120, 80, 3000)

# %%
# The data: ratings = tastes of the users × profiles of the items, observed at random.
rng = np.random.default_rng(0)
ratings = rng.standard_normal((users, 2)) @ rng.standard_normal((2, items))
seen = rng.random((users, items)) < 0.3
rows, cols = np.nonzero(seen)
path = Path(tempfile.mkdtemp()) / "ratings.csv"
pd.DataFrame({"row": rows, "col": cols, "value": ratings[rows, cols]}).to_csv(path, index=False)

# %%
# Read the file back and build the problem; M_star is optional and only used for errors.
table = pd.read_csv(path)
problem = ms.Problem.from_entries(table["row"].to_numpy(), table["col"].to_numpy(),
                                  table["value"].to_numpy(), (users, items), M_star=ratings)
scale = np.linalg.norm(ratings, 2)      # step sizes are relative to σ₁(M*)
init = ms.init.small_random(problem, k=2, alpha=0.05, seed=0)
traj = ms.run(problem, ms.GD(step_size=0.3 / scale), init=init, iters=iters, tol=1e-8)
print(traj.status, traj.iterations, traj.history["rel_error"][-1])

# %%
F, G = traj.factors
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), layout="constrained")
panels = (ratings, np.where(seen, ratings, np.nan), F @ G.T)
titles = ("the ratings M*", f"what was seen ({seen.mean():.0%})", "recovered F Gᵀ")
for ax, image, title in zip(axes, panels, titles):
    ax.imshow(image, cmap="RdBu", vmin=-3, vmax=3)
    ax.set(title=title, xticks=[], yticks=[])
