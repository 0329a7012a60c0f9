"""
Peers side by side
==================

GD against the methods built for ill-conditioned problems — ScaledGD, ScaledGD(λ), PrecGD,
alternating preconditioned GD — and singular value projection (SVP), on one problem with
condition number κ = 10 and k = 3 > r = 2. Every factor method starts from the same spectral
initialization, SVP from M₀ = 0. ``matsense compare`` runs the full grid of this comparison
(:doc:`../methods`).
"""

import os

import matplotlib.pyplot as plt

import matsense as ms

TINY = os.environ.get("MATSENSE_GALLERY_TINY") == "1"  # the test suite's sizes
n, iters = (12, 300) if TINY else (20, 1500)

problem = ms.Problem.gaussian(n, r=2, m=2 * n * n, kappa=10, seed=0)
spectral = ms.init.spectral(problem, k=3)
fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
for name in ("gd", "scaledgd", "scaledgd_lambda", "precgd", "apgd", "svp"):
    init = ms.init.zeros(problem, k=3) if name == "svp" else spectral
    traj = ms.run(problem, ms.get_method(name), init=init, iters=iters, tol=1e-10)
    print(f"{name:16s} {traj.status:10s} {traj.iterations:5d} iterations")
    h = traj.history
    ax.semilogy(h["iteration"], h["rel_error"], label=name)
ax.set(xlabel="iteration t", ylabel="‖P − M*‖_F / ‖M*‖_F", title="κ = 10, k = 3 > r = 2",
       xscale="symlog")
ax.legend()
