"""The imbalance drift of GD on F Gᵀ and its bound (claim C8).

One GD step changes the imbalance Δ = FᵀF − GᵀG by (docs/conventions.md)

    Δ_{t+1} − Δ_t = η² (G_tᵀ S_tᵀ S_t G_t − F_tᵀ S_t S_tᵀ F_t) = η² (∇_G fᵀ∇_G f − ∇_F fᵀ∇_F f),

with ∇_F f = S G and ∇_G f = Sᵀ F. Since ‖AᵀA‖_F ≤ ‖A‖_F², summing gives the
bound used by C8:

    ‖Δ_t − Δ_0‖_F ≤ η² Σ_{s<t} (‖∇_F f(s)‖_F² + ‖∇_G f(s)‖_F²).

:class:`DriftBoundGD` is plain asymmetric GD (the same update function as
:class:`matsense.GD`) whose state also accumulates the right-hand side, so
the driver :func:`matsense.run` runs it like any method; :func:`run_checkpoints`
reads the drift and the bound at a list of iterations through the run's callback.
Symbols follow the paper (F, G, S, eta).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import backend, diagnostics
from ..methods.base import Method, param, positive, residual_norm
from ..run import run


class DriftBoundState(NamedTuple):
    F: object
    G: object
    bound: object  # (B,) η² Σ_s (‖∇_F f‖² + ‖∇_G f‖²) so far


@dataclass(frozen=True)
class DriftBoundGD(Method):
    """Asymmetric GD that also accumulates η² Σ_s (‖∇_F f‖² + ‖∇_G f‖²) (extras 'drift_bound')."""

    name = "gd_drift_bound"
    parameterizations = ("asymmetric",)
    step_size: float = param(0.3, positive, "step size η")

    def init(self, problem, factors):
        self.check_factors(factors)
        F, G = factors
        xp = backend.namespace(F)
        return DriftBoundState(
            F, G, xp.zeros(F.shape[0], dtype=F.dtype, device=backend.device_of(F))
        )

    def step(self, problem, state):
        F, G = state.F, state.G
        r, SG, StF = problem.residual_and_grads(F, G)
        xp = backend.namespace(F)
        grads = xp.linalg.matrix_norm(SG) ** 2 + xp.linalg.matrix_norm(StF) ** 2
        bound = state.bound + self.step_size**2 * grads
        F_new, G_new = F - self.step_size * SG, G - self.step_size * StF
        return DriftBoundState(F_new, G_new, bound), residual_norm(r)

    def factors(self, state) -> tuple:
        return (state.F, state.G)

    def extras(self, state) -> dict:
        return {"drift_bound": state.bound}


@dataclass
class DriftCheckpoints:
    """Drift, bound and growth of FᵀF at checkpoints, each array of shape (n_checkpoints, B)."""

    iterations: np.ndarray  # (n_checkpoints,)
    drift: np.ndarray  # ‖Δ_t − Δ_0‖_F
    bound: np.ndarray  # η² Σ_{s<t} (‖∇_F f‖² + ‖∇_G f‖²)
    growth: np.ndarray  # ‖F_tᵀF_t − F_0ᵀF_0‖_F: how much FᵀF itself moved
    rel_error: np.ndarray  # ‖F_tG_tᵀ − M*‖_F / ‖M*‖_F
    status: np.ndarray  # (B,) 'max_iters' or 'diverged'
    delta0_norm: np.ndarray  # (B,) ‖Δ_0‖_F
    seconds: float


def run_checkpoints(problem, init, eta: float, checkpoints, *, divergence_factor: float = 1e6):
    """Run :class:`DriftBoundGD` from batched ``init = (F0, G0)`` and read it at ``checkpoints``.

    One run; a callback reads the factors and the accumulated bound at each
    checkpoint. A trajectory that diverges keeps status 'diverged' and NaN at
    the checkpoints after it stopped.
    """
    checkpoints = np.unique(np.asarray(checkpoints, dtype=int))
    if checkpoints.size == 0 or checkpoints[0] < 1:
        raise ValueError(f"checkpoints must be positive iterations, got {checkpoints.tolist()}")
    F0, G0 = (np.asarray(a, dtype=float) for a in init)
    B = F0.shape[0]
    Delta0 = diagnostics.imbalance(F0, G0)
    FtF0 = F0.mT @ F0
    # M* as factors where the problem keeps it so (large n): never an n1 × n2 product
    truth, M_norm = diagnostics.Truth.of(problem, F0), problem.M_star_norm
    where = {int(t): i for i, t in enumerate(checkpoints)}
    rows = {
        key: np.full((checkpoints.size, B), np.nan)
        for key in ("drift", "bound", "growth", "rel_error")
    }

    def read(t, info):
        if t in where:
            live = info["active"][info["rows"]]
            idx = info["rows"][live]
            F, G = (backend.to_numpy(f)[live] for f in info["factors"])
            bound = backend.to_numpy(info["extras"]["drift_bound"])[live]
            i = where[t]
            with np.errstate(all="ignore"):
                rows["drift"][i, idx] = np.linalg.norm(
                    diagnostics.imbalance(F, G) - Delta0[idx], axis=(1, 2)
                )
                rows["bound"][i, idx] = bound
                rows["growth"][i, idx] = np.linalg.norm(F.mT @ F - FtF0[idx], axis=(1, 2))
                rows["rel_error"][i, idx] = backend.to_numpy(truth.error((F, G))) / M_norm
        return False

    tr = run(
        problem,
        DriftBoundGD(eta),
        (F0, G0),
        int(checkpoints[-1]),
        record_every=int(checkpoints[-1]),
        divergence_factor=divergence_factor,
        callback=read,
    )
    status = np.where(np.asarray(tr.status) == "diverged", "diverged", "max_iters")
    return DriftCheckpoints(
        checkpoints,
        rows["drift"],
        rows["bound"],
        rows["growth"],
        rows["rel_error"],
        status,
        np.linalg.norm(Delta0, axis=(1, 2)),
        tr.wall_time,
    )
