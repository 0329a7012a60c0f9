"""
A sweep and its plot
====================

A grid of runs — here initialization scales α × widths k × seeds of claim C4 — written to a
crash-safe Parquet store, one row per run and per recorded iteration; running the same sweep
again resumes. The runs that share a problem advance as one batch. The command line does the
same with ``matsense sweep examples/c4_sweep.toml --out DIR`` and ``matsense plot DIR --x alpha
--y rate --hue k --logx --logy``; ``executor="dask"`` (the ``[dask]`` extra) runs it on a Dask
cluster (:doc:`../sweeps`).
"""

import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from matsense.sweep import load, run_sweep

TINY = os.environ.get("MATSENSE_GALLERY_TINY") == "1"  # the test suite's sizes
n, iters = (10, 600) if TINY else (16, 4000)

spec = {
    "sweep": {"rate_window": [1e-4, 1e-10]},
    "base": {"n1": n, "r": 2, "m": 3 * n * n // 2, "singular_values": [1.0, 0.5], "seed": 0,
             "method": "gd", "step_size": 0.3, "iters": iters, "tol": 1e-10, "record_every": 10},
    "grid": {"k": [3, 4], "alpha": [0.16, 0.08, 0.04], "init_seed": [0, 1]},
}
store = tempfile.mkdtemp()
print(run_sweep(spec, store, workers=0))      # workers=0: in this process

runs, history = load(store)
print(runs.sort_values(["k", "alpha", "init_seed"])[["k", "alpha", "init_seed", "status",
                                                    "iterations", "rate"]])

# %%
# The median rate over the seeds against α, one line per k: slopes ≈ 2 on log-log axes.
fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
for k, group in runs.groupby("k"):
    med = group.groupby("alpha")["rate"].median()
    slope = np.polyfit(np.log(med.index), np.log(med.to_numpy()), 1)[0]
    ax.loglog(med.index, med.to_numpy(), "o-", label=f"k = {k}: slope {slope:.2f}")
ax.set(xlabel="α", ylabel="linear rate (median of the seeds)", title="C4 as a sweep")
ax.legend()
