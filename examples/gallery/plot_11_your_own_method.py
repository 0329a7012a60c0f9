"""
Your own method
===============

A method is a frozen dataclass of hyper-parameters with ``init`` and ``step``; the driver
``ms.run`` owns stopping, recording and divergence, so a new method is one class and needs no
registration. Here gradient descent with heavy-ball momentum on F Gᵀ, against plain GD
(the protocol: :class:`matsense.methods.Method`).
"""

import os
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt

import matsense as ms
from matsense.methods import Method, param
from matsense.methods.base import positive, product, residual_norm

TINY = os.environ.get("MATSENSE_GALLERY_TINY") == "1"  # the test suite's sizes
n, iters = (12, 300) if TINY else (20, 1500)


class HeavyBallState(NamedTuple):
    F: object
    G: object
    VF: object
    VG: object


@dataclass(frozen=True)
class HeavyBallGD(Method):
    """F Gᵀ with momentum: V ← μ V − η ∇f, F ← F + V_F, G ← G + V_G."""

    name = "heavy_ball_gd"
    parameterizations = ("asymmetric",)
    step_size: float = param(0.3, positive, "step size η")
    momentum: float = param(0.5, positive, "momentum μ")

    def init(self, problem, factors):
        self.check_factors(factors)
        F, G = factors
        return HeavyBallState(F, G, 0 * F, 0 * G)

    def step(self, problem, state):
        r, S = problem.residual_and_adjoint(product((state.F, state.G)))
        VF = self.momentum * state.VF - self.step_size * (S @ state.G)
        VG = self.momentum * state.VG - self.step_size * (S.mT @ state.F)
        return HeavyBallState(state.F + VF, state.G + VG, VF, VG), residual_norm(r)

    def factors(self, state):
        return (state.F, state.G)


problem = ms.Problem.gaussian(n, r=2, m=3 * n * n // 2, singular_values=[1, 0.5], seed=0)
init = ms.init.small_random(problem, k=2, alpha=0.05, seed=1)
fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
for method in (ms.GD(step_size=0.3), HeavyBallGD(step_size=0.3, momentum=0.5)):
    traj = ms.run(problem, method, init, iters=iters, tol=1e-10)
    print(f"{method.name:14s} {traj.status} after {traj.iterations} iterations")
    h = traj.history
    ax.semilogy(h["iteration"], h["rel_error"], label=method.name)
ax.set(xlabel="iteration t", ylabel="‖P − M*‖_F / ‖M*‖_F", title="k = r = 2")
ax.legend()
