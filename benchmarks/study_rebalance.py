"""Design study of the one-step rebalancing transform (PAPER.md §3 and claim C7).

Question: which transform, applied once to (F, G) when GD on F Gᵀ with k > r
is close to the solution, makes the rest of the run converge at the rate of
GD with k = r (the exact parameterization), independently of α?
Findings and the recommendation: docs/rebalance_study.md.

Every candidate is computed from the k×k cores of F and G (never an n1×n2
SVD): F = Q₁R₁, G = Q₂R₂, R₁R₂ᵀ = U_c Σ V_cᵀ, so F Gᵀ = U Σ Vᵀ with
U = Q₁U_c, V = Q₂V_c, and the candidates set F ← U D, G ← V Σ D⁻¹ (F Gᵀ
unchanged) for a diagonal D chosen by

* a rank rule r̂ (how many directions are "signal"): ``given`` (the true r),
  ``gap`` (largest gap of log σ_i), ``resid`` (σ_i > c·‖𝒜(FGᵀ) − y‖: the extra
  directions of P are part of the error, so they lie near or below it), ``pull``
  (``resid`` with c = 4, or σ_i > ‖r‖/2 while GD is not shrinking direction i:
  u_iᵀ S v_i / σ_i < 0.03), ``rel`` (σ_i > c·σ_1), ``all`` (r̂ = k);
* a level L = D_ii² for the k − r̂ extra directions: σ_r̂ (``floor``), c·σ_1
  (``lift``), max(σ_1, c/η) (``eta``: ηL = c), max(σ_1, (γ − ησ_1)/η) (``fill``),
  or σ_i (``all``, i.e. plain balancing); ``zero`` (a diagnostic that changes
  F Gᵀ) drops them; on the signal directions D_ii² = σ_i (balanced).

``paper`` is the current transform (PAPER.md §3, F ← β U_F V_Fᵀ). Each
candidate also has its own trigger threshold τ on ‖𝒜(FGᵀ) − y‖/‖y‖.

For each setting, problem seed and α this measures: the linear rate of GD
with k = r from the first r columns of the same (F₀, G₀) and of the same
balanced once at its τ = 1e-2 crossing, of plain GD with k > r, and of every
candidate after its switch (rates.linear_rate on the records after the
switch, window (1e-2, 1e-10) of the error at the switch), and the ratios to
the two k = r rates. All candidates and plain GD run as one batch per
(setting, seed) through ``ms.run``.

    PYTHONPATH=src python benchmarks/study_rebalance.py --quick
    PYTHONPATH=src python benchmarks/study_rebalance.py --out results/rebalance.json
    PYTHONPATH=src python benchmarks/study_rebalance.py --only everything --out r.json
    PYTHONPATH=src python benchmarks/study_rebalance.py --report r.json

Groups (``--only``): kappa, other (the default "all"), and trigger, mscan, keqr,
stability. Prints Markdown tables; ``--out`` writes every number as JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

import matsense as ms
from matsense import backend
from matsense.methods.base import AsymState, product, residual_norm
from matsense.methods.gd import gd_step
from matsense.methods.rebalance import rebalance
from matsense.operators import single_threaded

WINDOW = (1e-2, 1e-10)  # fit window, relative to the error at the switch
PULL_LO, PULL_EPS = 0.5, 0.03  # rank rule "pull": σ_i > PULL_LO·‖r‖ and pull_i < PULL_EPS


# ----------------------------------------------------------------- transforms
@dataclass(frozen=True)
class Transform:
    """One candidate: rank rule, level of the extra directions, trigger τ."""

    name: str
    kind: str = "balance"      # "balance" (F ← U D, G ← V Σ D⁻¹) or "paper" (PAPER.md §3)
    rank: str = "gap"          # "given" | "gap" | "resid" | "rel" | "pull" | "all"
    rank_param: float = 1.0    # gap: minimum ratio σ_r̂/σ_r̂+1 (else r̂ = k); resid, rel, pull: c
    ext: str = "lift"          # "floor" | "lift" | "eta" | "all"
    ext_param: float = 1.0     # lift: c in c·σ_1; eta: c in c/η; fill: γ
    tau: float = 1e-2
    side: str = "F"            # factor whose extra columns are lifted: "F", "G", "auto" (more rows)
    repeat: str = "none"       # "none" | "rank": re-apply when r̂ grows | "decade": at τ/10, τ/100
    check_every: int = 10      # "rank": iterations between r̂ checks


def core_svd(F, G):
    """F Gᵀ = U diag(s) Vᵀ (batched, rank ≤ k) from the k×k cores of F and G."""
    xp = backend.namespace(F, G)
    Q1, R1 = xp.linalg.qr(F)
    Q2, R2 = xp.linalg.qr(G)
    Uc, s, Vch = xp.linalg.svd(R1 @ R2.mT)
    return Q1 @ Uc, s, Q2 @ Vch.mT


def numerical_rank(s, rule, param, rnorm, r_true, pull=None):
    """r̂ per trajectory (1 ≤ r̂ ≤ k) from the singular values s (B, k), descending.

    ``pull`` (B, k) is uᵢᵀ S vᵢ / σᵢ with S = 𝒜*(𝒜(FGᵀ) − y): the relative speed at which GD
    is shrinking direction i (≈ 1 for an extra direction in the isotropic limit, ≈ its
    relative error, ≤ 0 while still growing, for a signal direction)."""
    B, k = s.shape
    s1 = s[:, :1]
    floor = np.finfo(s.dtype).eps * s1 + np.finfo(s.dtype).tiny
    sc = np.maximum(s, floor)
    if rule == "given":
        return np.full(B, min(r_true, k))
    if rule == "all" or k == 1:
        return np.full(B, k)
    if rule == "gap":
        gaps = np.log(sc[:, :-1]) - np.log(sc[:, 1:])
        rhat = np.argmax(gaps, axis=1) + 1
        return np.where(gaps.max(axis=1) >= math.log(param), rhat, k)
    if rule == "resid":
        return np.maximum(1, np.sum(s > param * rnorm[:, None], axis=1))
    if rule == "rel":
        return np.maximum(1, np.sum(s > param * s1, axis=1))
    if rule == "pull":
        # signal: far above the residual, or above half of it and not being shrunk by GD
        sig = (s > param * rnorm[:, None]) | ((s > PULL_LO * rnorm[:, None]) & (pull < PULL_EPS))
        last = np.where(sig, np.arange(1, k + 1)[None, :], 0).max(axis=1)
        return np.maximum(1, last)
    raise ValueError(f"unknown rank rule {rule!r}")


def balance_transform(F, G, tr: Transform, eta, rnorm, r_true, S=None):
    """F ← U D, G ← V Σ D⁻¹ with D from ``tr``; returns (F, G, r̂). NumPy, batched."""
    U, s, V = core_svd(F, G)
    B, k = s.shape
    pull = None
    if S is not None:
        with np.errstate(all="ignore"):
            pull = np.einsum("bik,bij,bjk->bk", U, S, V) / s
        pull = np.where(s > 0, pull, np.inf)
    rhat = numerical_rank(s, tr.rank, tr.rank_param, rnorm, r_true, pull)
    s1 = s[:, 0]
    s_rhat = np.take_along_axis(s, (rhat - 1)[:, None], axis=1)[:, 0]
    if tr.ext == "floor":
        level = s_rhat
    elif tr.ext == "lift":
        level = np.maximum(tr.ext_param * s1, s_rhat)
    elif tr.ext == "eta":
        # η L = max(c, η σ₁): the extra block contracts by ≈ 1 − c·λ(𝒜*𝒜) per step
        level = np.maximum(np.full(B, tr.ext_param / eta), s1)
    elif tr.ext == "fill":
        # As large as the step allows: η(L + σ₁) = γ (the GD curvature along an extra
        # direction is ≈ λ(𝒜*𝒜)·(‖F‖² + ‖G‖²) = λ·(L + σ₁)), and never below σ₁.
        level = np.maximum(s1, (tr.ext_param - eta * s1) / eta)
    elif tr.ext in ("all", "zero"):
        level = np.zeros(B)
    else:
        raise ValueError(f"unknown extra-direction rule {tr.ext!r}")
    signal = np.arange(k)[None, :] < rhat[:, None]
    d2 = np.where(signal, s, level[:, None])
    # D must be positive: a zero singular value (rank-deficient F or G) on a signal
    # direction, or P = 0, would divide by zero. eps·σ₁ keeps G = V Σ D⁻¹ finite and leaves
    # F Gᵀ exact; where σ₁ = 0 the factors are returned unchanged.
    d2 = np.maximum(d2, np.finfo(s.dtype).eps * s1[:, None] + np.finfo(s.dtype).tiny)
    d = np.sqrt(d2)
    Fn = U * d[:, None, :]
    Gn = V * (s / d)[:, None, :]
    if tr.ext == "zero":
        # Diagnostic only: drop the extra directions (changes F Gᵀ by their part, and zero
        # columns stay zero under GD): the run becomes k = r̂ GD from the balanced signal.
        Fn = np.where(signal[:, None, :], Fn, 0.0)
        Gn = np.where(signal[:, None, :], Gn, 0.0)
    keep = (s1 > 0)[:, None, None]
    return np.where(keep, Fn, F), np.where(keep, Gn, G), rhat


def apply_transform(tr: Transform, F, G, eta, rnorm, r_true, S=None):
    if tr.kind == "paper":
        beta = np.sqrt(np.linalg.svd(F @ G.mT, compute_uv=False)[:, 0])
        Fn, Gn = rebalance(F, G, beta)
        return Fn, Gn, np.full(F.shape[0], -1)
    lift_G = tr.side == "G" or (tr.side == "auto" and G.shape[-2] > F.shape[-2])
    if lift_G:  # the same with the roles swapped: G Fᵀ = (F Gᵀ)ᵀ
        Gn, Fn, rhat = balance_transform(G, F, tr, eta, rnorm, r_true,
                                         None if S is None else S.mT)
        return Fn, Gn, rhat
    return balance_transform(F, G, tr, eta, rnorm, r_true, S)


# ------------------------------------------------------------- study method
class StudyState(NamedTuple):
    F: object
    G: object
    count: object        # (B,) iterations taken
    switched_at: object  # (B,) iteration of the switch, -1 before (and always for plain GD)
    tid: object          # (B,) index into the method's transforms, -1 = plain GD
    tau: object          # (B,) trigger threshold of the row
    rhat: object         # (B,) r̂ chosen at the switch
    etaF2: object        # (B,) η‖F‖²_op right after the switch
    etaG2: object        # (B,) η‖G‖²_op right after the switch
    prod_err: object     # (B,) ‖F'G'ᵀ − FGᵀ‖_F / ‖FGᵀ‖_F of the transform
    err_switch: object   # (B,) ‖FGᵀ − M*‖_F at the switch
    sv_switch: object    # (B, k) singular values of F Gᵀ at the switch
    rn_switch: object    # (B,) ‖𝒜(FGᵀ) − y‖ at the switch
    n_applied: object    # (B,) how many times the transform was applied
    last_applied: object  # (B,) iteration of the last application
    next_tau: object     # (B,) threshold of the next application ("decade"), else 0


@dataclass(frozen=True)
class MultiRebalancedGD:
    """RebalancedGD with a transform per batch row (``tid``), so candidates share one batch.

    Structure as ``ms.RebalancedGD``: one pass per iteration; at the first
    iteration whose relative residual is ≤ the row's τ the row's transform is
    applied (F Gᵀ unchanged, so S still belongs to the new factors) and plain
    GD with the same η continues. Rows with ``tid = -1`` never switch.
    """

    transforms: tuple
    tids: tuple
    step_size: float = 0.3
    rank: int = 1
    name: str = "study_rebalanced_gd"

    def init(self, problem, factors):
        F, G = factors
        B, k = F.shape[0], F.shape[-1]
        tid = np.asarray(self.tids, dtype=np.int64)
        if tid.shape != (B,):
            raise ValueError(f"tids must have one entry per batch row ({B}), got {tid.shape}")
        tau = np.array([self.transforms[t].tau if t >= 0 else 0.0 for t in tid])
        nan = np.full(B, np.nan)
        return StudyState(F, G, np.zeros(B, dtype=np.int64), np.full(B, -1), tid, tau,
                          np.full(B, -1), nan, nan, nan, nan, np.full((B, k), np.nan), nan,
                          np.zeros(B, dtype=np.int64), np.full(B, -1), tau.copy())

    def step(self, problem, state):
        F, G = state.F, state.G
        P = product((F, G))
        r, S = problem.residual_and_adjoint(P)
        rnorm = residual_norm(r)
        first = (state.tid >= 0) & (state.switched_at < 0) & (rnorm <= state.tau * problem.y_norm)
        again = self._again(problem, state, rnorm)
        due = first | again
        st = state
        if due.any():
            Fn, Gn = F.copy(), G.copy()
            rhat = st.rhat.copy()
            for t in np.unique(st.tid[due]):
                rows = due & (st.tid == t)
                Ft, Gt, rh = apply_transform(self.transforms[t], F[rows], G[rows], self.step_size,
                                             rnorm[rows], self.rank, S[rows])
                Fn[rows], Gn[rows], rhat[rows] = Ft, Gt, rh
            Pn = Fn[due] @ Gn[due].mT
            fro = np.linalg.norm(P[due], axis=(1, 2))
            prod_err = st.prod_err.copy()
            prod_err[due] = np.linalg.norm(Pn - P[due], axis=(1, 2)) / np.where(fro > 0, fro, 1)
            etaF2, etaG2 = st.etaF2.copy(), st.etaG2.copy()
            etaF2[due] = self.step_size * np.linalg.norm(Fn[due], ord=2, axis=(1, 2)) ** 2
            etaG2[due] = self.step_size * np.linalg.norm(Gn[due], ord=2, axis=(1, 2)) ** 2
            err_sw = st.err_switch.copy()
            err_sw[first] = np.linalg.norm(P[first] - problem.M_star, axis=(1, 2))
            sv = st.sv_switch.copy()
            sv[first] = core_svd(F[first], G[first])[1]
            rn_sw = np.where(first, rnorm, st.rn_switch)
            switched = np.where(first, st.count, st.switched_at)
            decade = np.array([t >= 0 and self.transforms[t].repeat == "decade" for t in st.tid])
            next_tau = np.where(due & decade, st.next_tau / 10, st.next_tau)
            st = st._replace(switched_at=switched, rhat=rhat, etaF2=etaF2, etaG2=etaG2,
                             prod_err=prod_err, err_switch=err_sw, sv_switch=sv,
                             rn_switch=rn_sw,
                             n_applied=st.n_applied + due, last_applied=np.where(due, st.count,
                                                                                 st.last_applied),
                             next_tau=next_tau)
            F, G = Fn, Gn
        F, G = gd_step(AsymState(F, G), S @ G, S.mT @ F, self.step_size)  # GD's F Gᵀ step
        return st._replace(F=F, G=G, count=st.count + 1), rnorm

    def _again(self, problem, state, rnorm):
        """Rows whose transform is re-applied now (after the first switch)."""
        B = state.tid.shape[0]
        again = np.zeros(B, dtype=bool)
        for t in np.unique(state.tid[state.switched_at >= 0]):
            tr = self.transforms[t]
            rows = (state.tid == t) & (state.switched_at >= 0)
            if tr.repeat == "decade":
                # at τ/10 and τ/100, at most two more times
                again |= rows & (rnorm <= state.next_tau * problem.y_norm) & (state.n_applied < 3)
            elif tr.repeat == "rank":
                rows &= (state.count - state.last_applied) % tr.check_every == 0
                if rows.any():
                    s = core_svd(state.F[rows], state.G[rows])[1]
                    rh = numerical_rank(s, tr.rank, tr.rank_param, rnorm[rows], self.rank)
                    again[rows] = rh > state.rhat[rows]
        return again

    def factors(self, state) -> tuple:
        return (state.F, state.G)

    def extras(self, state) -> dict:
        return {"n_applied": state.n_applied, "last_applied": state.last_applied,
                "switch_iteration": state.switched_at, "rhat": state.rhat,
                "etaF2": state.etaF2, "etaG2": state.etaG2, "prod_err": state.prod_err,
                "err_switch": state.err_switch, "sv_switch": state.sv_switch,
                "rn_switch": state.rn_switch}


# -------------------------------------------------------------- candidates
REC = dict(rank="pull", rank_param=4.0, ext="eta", ext_param=0.75)  # the recommendation
REC_NAME = "lift ηL=0.75, r̂ pull(4)  ← recommended"


def candidates(quick: bool) -> list[Transform]:
    """The κ-table candidates (the anchors of the brief, then the variants studied)."""
    T = Transform
    full = [
        T("paper (PAPER §3)", kind="paper"),
        T("balance all (r̂ = k)", rank="all", ext="all"),
        T("floor √σ_r̂, r̂ gap", rank="gap", ext="floor"),
        T("lift √σ₁, r̂ gap", rank="gap", ext="lift"),
        T("floor √σ_r̂, r̂ given", rank="given", ext="floor"),
        T("lift √σ₁, r̂ given", rank="given", ext="lift"),
        T("lift √σ₁, r̂ resid(2)", rank="resid", rank_param=2.0, ext="lift"),
        T("fill γ=1, r̂ resid(2)", rank="resid", rank_param=2.0, ext="fill", ext_param=1.0),
        T("lift ηL=0.75, r̂ given", rank="given", ext="eta", ext_param=0.75),
        T("lift ηL=0.75, r̂ resid(2)", rank="resid", rank_param=2.0, ext="eta", ext_param=0.75),
        T(REC_NAME, **REC),
        T("lift ηL=0.75, r̂ pull(4), τ=3e-3", **REC, tau=3e-3),
        T("zero extra (diagnostic; changes FGᵀ), r̂ given", rank="given", ext="zero"),
    ]
    if quick:
        keep = {0, 3, 6, 10, 11, 12}
        return [t for i, t in enumerate(full) if i in keep]
    return full


def other_candidates(quick: bool) -> list[Transform]:
    """Fewer candidates for the other settings: the recommendation and its references."""
    T = Transform
    out = [
        T("paper (PAPER §3)", kind="paper"),
        T("floor √σ_r̂, r̂ gap", rank="gap", ext="floor"),
        T("lift √σ₁, r̂ resid(2)", rank="resid", rank_param=2.0, ext="lift"),
        T(REC_NAME, **REC),
        T("zero extra (diagnostic; changes FGᵀ), r̂ given", rank="given", ext="zero"),
    ]
    return out[2:] if quick else out


# ---------------------------------------------------------------- settings
@dataclass
class Setting:
    label: str
    n1: int
    n2: int
    r: int
    m: int
    sigma: tuple
    k: int
    eta: float = 0.3
    alphas: tuple = (0.08, 0.04, 0.02)
    seeds: tuple = (0, 1, 2)
    group: str = "kappa"
    extra: dict = field(default_factory=dict)
    budget: float = 1.0

    def iters(self, cap):
        """Budget from the predicted rates: k = r GD contracts at ≈ η σ_r per iteration,
        so 8 decades after the switch take ≈ 18/(η σ_r); the learning phase takes
        ≈ log(σ_r/α²)/(η σ_r). 60/(η σ_r) covers both with a factor ~2 margin
        (times ``budget`` where the rates are known to be lower, e.g. small m)."""
        return int(min(cap, self.budget * (200 + 60 / (self.eta * min(self.sigma)))))


def kappa_settings(quick, kappas=(1, 2, 4, 10, 100)):
    seeds = (0,) if quick else (0, 1, 2)
    alphas = (0.08, 0.02) if quick else (0.08, 0.04, 0.02)
    out = []
    for kappa in kappas:
        sigma = tuple(np.geomspace(1, 1 / kappa, 2).tolist())
        out.append(Setting(f"κ={kappa}", 30, 30, 2, 900, sigma, 4, alphas=alphas, seeds=seeds,
                           extra={"kappa": kappa}))
    return out


def other_settings(quick):
    seeds = (0,) if quick else (0, 1, 2)
    alphas = (0.08, 0.02) if quick else (0.08, 0.04, 0.02)
    s10 = tuple(np.geomspace(1, 0.1, 2).tolist())
    s4 = tuple(np.geomspace(1, 0.25, 2).tolist())
    return [
        Setting("50×50, r=3, σ=(1,.75,.5), k=5, m=1500", 50, 50, 3, 1500, (1.0, 0.75, 0.5), 5,
                alphas=alphas, seeds=seeds, group="other"),
        Setting("40×25, r=2, κ=4, k=4, m=1000", 40, 25, 2, 1000, s4, 4,
                alphas=alphas, seeds=seeds, group="other"),
        Setting("30×30, κ=10, k=6", 30, 30, 2, 900, s10, 6, alphas=alphas, seeds=seeds,
                group="other"),
        Setting("30×30, κ=4, η=0.1", 30, 30, 2, 900, s4, 4, eta=0.1, alphas=alphas, seeds=seeds,
                group="other"),
        Setting("30×30, κ=4, η=0.5", 30, 30, 2, 900, s4, 4, eta=0.5, alphas=alphas, seeds=seeds,
                group="other"),
        Setting("30×30, κ=10, η=0.5", 30, 30, 2, 900, s10, 4, eta=0.5, alphas=alphas,
                seeds=seeds, group="other"),
    ]


def mscan_settings(quick):
    """Over-parameterization penalty vs the number of measurements (κ = 1, 2)."""
    seeds = (0,) if quick else (0, 1, 2)
    out = []
    for kappa in (1, 2):
        sigma = tuple(np.geomspace(1, 1 / kappa, 2).tolist())
        for m in (300, 600, 900, 1800, 3600):
            if quick and m in (600, 3600):
                continue
            out.append(Setting(f"κ={kappa}, m={m}", 30, 30, 2, m, sigma, 4, alphas=(0.08, 0.02),
                               seeds=seeds, group="mscan", budget=4.0 if m == 300 else 1.5))
    return out


def trigger_settings(quick):
    """When τ = 1e-2 fires before σ_r is learned: κ = 30 and 100, α down to 0.005."""
    seeds = (0,) if quick else (0, 1, 2)
    return [Setting(f"κ={kappa}", 30, 30, 2, 900, (1.0, 1 / kappa), 4,
                    alphas=(0.08, 0.02, 0.005), seeds=seeds, group="trigger",
                    extra={"kappa": kappa}) for kappa in (30, 100)]


def keqr_settings(quick):
    """k = r (no extra directions): the rank rule must not split the signal."""
    seeds = (0,) if quick else (0, 1, 2)
    return [Setting(f"k=r=2, κ={kappa}", 30, 30, 2, 900, (1.0, 1 / kappa), 2,
                    alphas=(0.08, 0.02), seeds=seeds, group="keqr") for kappa in (2, 10)]


def stability_settings(quick):
    """How far the extra directions can be lifted: κ = 1, η ∈ {0.1, 0.3, 0.5}, m ∈ {300, 900}."""
    seeds = (0,) if quick else (0, 1, 2)
    return [Setting(f"η={eta}, m={m}", 30, 30, 2, m, (1.0, 1.0), 4, eta=eta,
                    alphas=(0.08, 0.02), seeds=seeds, group="stability",
                    budget=4.0 if m == 300 else 1.5)
            for m in (300, 900) for eta in (0.1, 0.3, 0.5)]


def stability_candidates(quick):
    T = Transform
    return [T(f"lift ηL={c}, r̂ given", rank="given", ext="eta", ext_param=c)
            for c in (0.5, 0.75, 0.9, 1.2, 1.5)]


def mscan_candidates(quick):
    T = Transform
    return [T("lift √σ₁, r̂ given", rank="given", ext="lift"),
            T("lift ηL=0.75, r̂ given", rank="given", ext="eta", ext_param=0.75),
            T("lift ηL=0.75, r̂ resid(2)", rank="resid", rank_param=2.0, ext="eta", ext_param=0.75),
            T(REC_NAME, **REC),
            T("zero extra (diagnostic; changes FGᵀ), r̂ given", rank="given", ext="zero")]


def trigger_candidates(quick):
    T = Transform
    return [T("paper (PAPER §3)", kind="paper"),
            T("balance all (r̂ = k)", rank="all", ext="all"),
            T("lift ηL=0.75, r̂ given", rank="given", ext="eta", ext_param=0.75),
            T("lift ηL=0.75, r̂ resid(4)", rank="resid", rank_param=4.0, ext="eta", ext_param=0.75),
            T(REC_NAME, **REC),
            T("lift ηL=0.75, r̂ pull(4), τ=3e-3", **REC, tau=3e-3),
            T("lift ηL=0.75, r̂ pull(4), τ=1e-3", **REC, tau=1e-3)]


def keqr_candidates(quick):
    T = Transform
    return [T("paper (PAPER §3)", kind="paper"),
            T("lift √σ₁, r̂ gap", rank="gap", ext="lift"),
            T("lift ηL=0.75, r̂ gap(min ratio 10)", rank="gap", rank_param=10.0, ext="eta",
              ext_param=0.75),
            T("lift ηL=0.75, r̂ resid(2)", rank="resid", rank_param=2.0, ext="eta", ext_param=0.75),
            T(REC_NAME, **REC)]


# ------------------------------------------------------------------ fitting
def post_switch_rate(hist, b, t_switch, err_switch):
    """Linear rate on the records from the switch on (window relative to the switch error).

    Returns (fit dict, how): how = "window" for the (1e-2, 1e-10) window, "all" when the
    error never fell to 1e-2 of the switch error within the budget (fit on everything after
    the switch), "none" when there was no switch."""
    if t_switch < 0 or not np.isfinite(err_switch):
        return {"value": float("nan"), "reason": "no switch"}, "none"
    it = hist["iteration"]
    err = hist["error"][:, b]
    sel = (it > t_switch) & np.isfinite(err)
    t = np.concatenate([[t_switch], it[sel]])
    e = np.concatenate([[err_switch], err[sel]])
    fit = ms.rates.linear_rate(t, e, window=WINDOW)
    if fit.ok:
        return fit.as_dict(), "window"
    fit2 = ms.rates.linear_rate(t, e, window=(1.0, WINDOW[1]))
    d = fit2.as_dict()
    d["reason"] = f"window not reached ({fit.reason}); fit on all records after the switch"
    return d, "all"


def first_crossing(hist, b, tau, y_norm):
    """First record with relative residual ≤ τ and its error (plain GD and k = r GD)."""
    rn = hist["residual_norm"][:, b]
    idx = np.flatnonzero(np.isfinite(rn) & (rn <= tau * y_norm))
    if idx.size == 0:
        return -1, float("nan")
    i = idx[0]
    return int(hist["iteration"][i]), float(hist["error"][i, b])


# -------------------------------------------------------------------- study
EXACT_BALANCED = Transform("k = r balanced", rank="all", ext="all")
REF_BAL = "k = r GD, balanced at its τ-crossing"


def last_finite(v):
    v = np.asarray(v, float)
    return float(v[np.isfinite(v)][-1])


def run_setting(st: Setting, transforms, cap, record_every, log):
    iters = st.iters(cap)
    nA = len(st.alphas)
    rows = []
    for seed in st.seeds:
        problem = ms.Problem.gaussian(st.n1, st.n2, r=st.r, m=st.m, singular_values=list(st.sigma),
                                      seed=seed)
        F0, G0 = ms.init.small_random(problem, st.k, list(st.alphas), seed=[seed] * nA)
        t0 = time.perf_counter()
        # k = r GD from the first r columns of the same start (rows 0..nA-1), and the same
        # balanced once at its τ = 1e-2 crossing (rows nA..2nA-1): k = r GD keeps the
        # imbalance Δ₀ ≈ α²n(1 − ratio²) of the start, which at σ_r ≲ Δ₀ slows it down.
        Fr, Gr = F0[:, :, :st.r], G0[:, :, :st.r]
        ref = MultiRebalancedGD((EXACT_BALANCED,), tuple([-1] * nA + [0] * nA), st.eta, st.r)
        exact = ms.run(problem, ref, (np.concatenate([Fr, Fr]), np.concatenate([Gr, Gr])),
                       iters=iters, tol=3e-13, record_every=record_every)
        # plain GD (tid -1) and every candidate, all α, as one batch.
        tids = [-1] * nA + [t for t in range(len(transforms)) for _ in range(nA)]
        nrep = 1 + len(transforms)
        F = np.concatenate([F0] * nrep)
        G = np.concatenate([G0] * nrep)
        method = MultiRebalancedGD(tuple(transforms), tuple(tids), st.eta, st.r)
        multi = ms.run(problem, method, (F, G), iters=iters, tol=3e-13, record_every=record_every)
        wall = time.perf_counter() - t0
        ex = multi.extras
        for ai, alpha in enumerate(st.alphas):
            base = {"setting": st.label, "group": st.group, **st.extra, "seed": seed,
                    "alpha": alpha, "eta": st.eta, "k": st.k, "r": st.r, "iters": iters}
            t_sw, e_sw = first_crossing(exact.history, ai, 1e-2, problem.y_norm)
            fit_exact, how = post_switch_rate(exact.history, ai, t_sw, e_sw)
            r_exact = fit_exact["value"]
            rows.append({**base, "row": "k = r GD", "rate": r_exact, "fit": fit_exact,
                         "fit_how": how, "switch": t_sw, "status": str(exact.status[ai]),
                         "final_rel_error": last_finite(exact.history["rel_error"][:, ai])})
            jb = nA + ai
            t_sw = int(exact.extras["switch_iteration"][jb])
            e_sw = float(exact.extras["err_switch"][jb])
            fit_b, how = post_switch_rate(exact.history, jb, t_sw, e_sw)
            r_bal = fit_b["value"]
            rows[-1]["ratio_bal"] = r_exact / r_bal
            rows.append({**base, "row": REF_BAL, "rate": r_bal, "fit": fit_b,
                         "fit_how": how, "ratio": r_bal / r_exact, "ratio_bal": 1.0,
                         "switch": t_sw, "status": str(exact.status[jb]),
                         "final_rel_error": last_finite(exact.history["rel_error"][:, jb])})
            for j, tid in enumerate(tids):
                if j % nA != ai:
                    continue
                name = "plain k > r GD" if tid < 0 else transforms[tid].name
                if tid < 0:
                    t_sw, e_sw = first_crossing(multi.history, j, 1e-2, problem.y_norm)
                else:
                    t_sw, e_sw = int(ex["switch_iteration"][j]), float(ex["err_switch"][j])
                fit, how = post_switch_rate(multi.history, j, t_sw, e_sw)
                rel = multi.history["rel_error"][:, j]
                rows.append({**base, "row": name, "rate": fit["value"], "fit": fit,
                             "fit_how": how, "ratio": fit["value"] / r_exact,
                             "ratio_bal": fit["value"] / r_bal, "switch": t_sw,
                             "err_switch_rel": e_sw / problem.M_star_norm,
                             "rhat": int(ex["rhat"][j]), "etaF2": float(ex["etaF2"][j]),
                             "etaG2": float(ex["etaG2"][j]), "prod_err": float(ex["prod_err"][j]),
                             "sv_switch": [float(v) for v in ex["sv_switch"][j]],
                             "rn_switch": float(ex["rn_switch"][j]),
                             "n_applied": int(ex["n_applied"][j]),
                             "last_applied": int(ex["last_applied"][j]),
                             "status": str(multi.status[j]),
                             "iterations": int(multi.iterations[j]),
                             "final_rel_error": last_finite(rel)})
        log(f"  {st.label} seed {seed}: {iters} its budget, {wall:.1f} s")
    return rows


# ---------------------------------------------------------------- checks
# The recommendation, as ported into the library (this study chose it; the library owns it).
from matsense.methods.rebalance import rebalance_balanced  # noqa: E402


CHECK_CASES = ("ill-conditioned F (σ(F) 1 … 1e-6)", "rank-deficient F (2 zero columns)",
               "repeated column of F", "rank-1 G (σ₂ = σ₃ = σ₄ = 0 exactly)", "F = 0 (P = 0)",
               "F·1e-150 (tiny scale)", "F·1e+100 (huge scale)")


def transform_checks(transforms):
    """F Gᵀ preserved (batched), finite for rank-deficient F, σ = 0, P = 0, extreme scales."""
    rng = np.random.default_rng(0)
    B, n1, n2, k = len(CHECK_CASES), 30, 25, 4
    F = rng.standard_normal((B, n1, k)) * np.geomspace(1, 1e-6, k)
    G = rng.standard_normal((B, n2, k)) * 0.3
    F[1:] = rng.standard_normal((B - 1, n1, k))
    F[1, :, 2:] = 0.0
    F[2, :, 3] = F[2, :, 0]
    G[3, :, 1:] = 0.0
    F[4] = 0.0
    F[5] *= 1e-150
    F[6] *= 1e100
    rnorm = 1e-2 * np.linalg.norm(F @ G.mT, axis=(1, 2))
    # a gradient-like S: a random matrix of the residual's size
    S = rng.standard_normal((B, n1, n2)) * rnorm[:, None, None] / math.sqrt(n1 * n2)
    P = F @ G.mT
    fro = np.linalg.norm(P, axis=(1, 2))

    def rel_change(Fn, Gn):
        return np.linalg.norm(Fn @ Gn.mT - P, axis=(1, 2)) / np.where(fro > 0, fro, 1)

    out = {}
    for tr in transforms:
        with np.errstate(all="ignore"):
            Fn, Gn, _ = apply_transform(tr, F, G, 0.3, rnorm, 2, S)
            rel = rel_change(Fn, Gn)
        finite = np.isfinite(Fn).all(axis=(1, 2)) & np.isfinite(Gn).all(axis=(1, 2))
        out[tr.name] = {"max_rel_product_change": float(np.nanmax(np.where(finite, rel, np.nan)))
                        if finite.any() else float("nan"),
                        "finite": bool(finite.all()),
                        "per_case": {c: {"rel_change": float(r), "finite": bool(f)}
                                     for c, r, f in zip(CHECK_CASES, rel, finite)}}
    # The backend-generic reference: same numbers as the study's candidate, and on torch.
    Fr, Gr, rh = rebalance_balanced(F, G, S, rnorm, 0.3)
    Fs, Gs, rs = apply_transform(Transform("rec", **REC), F, G, 0.3, rnorm, 2, S)
    entry = {"max_rel_product_change": float(np.max(rel_change(Fr, Gr))),
             "finite": bool(np.isfinite(Fr).all() and np.isfinite(Gr).all()),
             "same_as_study_candidate": bool(np.allclose(Fr, Fs, rtol=1e-12, atol=0)
                                             and np.allclose(Gr, Gs, rtol=1e-12, atol=0)
                                             and (np.asarray(rh) == rs).all())}
    try:
        import torch

        Ft, Gt, _ = rebalance_balanced(*(torch.from_numpy(a) for a in (F, G, S, rnorm)), 0.3)
        entry["torch_max_abs_diff"] = float(max(
            np.max(np.abs(Ft.numpy() - Fr)) / np.max(np.abs(Fr)),
            np.max(np.abs(Gt.numpy() - Gr)) / np.max(np.abs(Gr))))
    except ImportError:
        entry["torch_max_abs_diff"] = None
    out["rebalance_balanced (reference implementation)"] = entry
    return out


# ------------------------------------------------------------------ tables
def fmt_cell(rates, ratios):
    rates = np.asarray(rates, float)
    if not np.isfinite(rates).any():
        return "—"
    med = np.nanmedian(rates)
    if ratios is None:
        return f"{med:.4f}"
    q = np.asarray(ratios, float)
    return f"{med:.4f} · {np.nanmedian(q):.2f}× [{np.nanmin(q):.2f}, {np.nanmax(q):.2f}]"


def alpha_spread(rows):
    """Worst over seeds of (max − min)/median of the rate across α."""
    worst = 0.0
    for seed in {r["seed"] for r in rows}:
        v = np.array([r["rate"] for r in rows if r["seed"] == seed], float)
        if not np.isfinite(v).all() or v.size < 2:
            return float("nan")
        worst = max(worst, (v.max() - v.min()) / np.median(v))
    return worst


def table(rows, cols, col_key, names, ratio_key="ratio"):
    """Cells: median rate · median ratio [min, max] over seeds × α, α-spread, (†) fallback fits."""
    head = "| | " + " | ".join(str(c) for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for name in names:
        cells = []
        for c in cols:
            sel = [r for r in rows if r["row"] == name and r[col_key] == c]
            if not sel:
                cells.append("")
                continue
            ratios = None if ratio_key not in sel[0] else [r[ratio_key] for r in sel]
            cell = fmt_cell([r["rate"] for r in sel], ratios)
            if name != "k = r GD":
                sp = alpha_spread(sel)
                cell += f" α±{100 * sp:.0f}%" if np.isfinite(sp) else " α: n/a"
                if any(r["fit_how"] == "all" for r in sel):
                    cell += " (†)"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def diag_table(rows, cols, col_key, names):
    lines = ["| | " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for name in names:
        cells = []
        for c in cols:
            sel = [r for r in rows if r["row"] == name and r[col_key] == c and r["switch"] >= 0]
            if not sel:
                cells.append("")
                continue
            rh = sorted({r["rhat"] for r in sel})
            sw = [r["switch"] for r in sel]
            f2 = max(r["etaF2"] for r in sel)
            g2 = max(r["etaG2"] for r in sel)
            pe = max(r["prod_err"] for r in sel)
            its = [r["iterations"] for r in sel if r["status"] == "converged"]
            conv = (f"conv {len(its)}/{len(sel)} at {int(np.median(its))}" if its
                    else f"conv 0/{len(sel)}")
            cells.append(f"r̂∈{rh} t_sw {min(sw)}–{max(sw)} ηF² {f2:.2f} ηG² {g2:.2f} "
                         f"ΔP {pe:.0e} {conv}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: Path, obj) -> None:
    """JSON to ``path``, gzip-compressed when it ends in .gz."""
    text = json.dumps(obj, default=float)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        path.write_text(text)


def read_json(path: Path):
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def rounded(obj, digits=6):
    """``obj`` with every float rounded to ``digits`` significant digits (compact JSON)."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    if isinstance(obj, np.floating):
        return rounded(float(obj), digits)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


# ------------------------------------------------------------ scale group
# The shipped transforms (``RebalancedGD(transform=...)``, not the study's own candidates) on
# every ensemble and at the sizes where researchers run over-parameterized models (issue #19):
# gaussian κ ∈ {1, 2, 4, 10} (n = 30), completion n ∈ {10³, 10⁴, 10⁵} (m = 100n, r = 5, k = 10),
# rank-one n = 2000 (m = 10⁵). Runs go through ``ms.run``; each row has the post-switch rate, its
# ratio to k = r GD from the first r columns of the same start and to the same balanced at its
# τ-crossing, and the switch report of the trajectory's extras (r̂, ‖ΔFGᵀ‖/‖FGᵀ‖, η·λ_max of the
# Gauss–Newton blocks before and after).
SCALE_TRANSFORMS = ("truncated", "balanced", "paper")
SCALE_WINDOW = (1e-2, 1e-6)  # large sizes: 4 decades after the switch (tol 1e-10 relative)


@dataclass(frozen=True)
class ScaleSetting:
    label: str
    ensemble: str
    n: int
    m: int
    r: int
    k: int
    eta: float
    alphas: tuple
    seeds: tuple
    iters: int
    normalization: str = "sqrt_n"
    kappa: float = 1.0
    transforms: tuple = SCALE_TRANSFORMS
    plain: bool = True

    def problem(self, seed):
        if self.ensemble == "gaussian":
            sigma = list(np.geomspace(1, 1 / self.kappa, self.r))
            return ms.Problem.gaussian(self.n, r=self.r, m=self.m, singular_values=sigma,
                                       seed=seed)
        build = {"completion": ms.Problem.completion, "rank-one": ms.Problem.rank_one}
        return build[self.ensemble](self.n, r=self.r, m=self.m, kappa=self.kappa, seed=seed)


def scale_settings(quick, sizes=None):
    seeds3 = (0,) if quick else (0, 1, 2)
    out = [ScaleSetting(f"gaussian κ={kappa}", "gaussian", 30, 900, 2, 4, 0.3,
                        (0.08, 0.02) if quick else (0.08, 0.04, 0.02), seeds3,
                        int(200 + 60 / (0.3 / kappa)), normalization="entry", kappa=kappa)
           for kappa in (1, 2, 4, 10)]
    sizes = sizes or ((1000, 10_000) if quick else (1000, 10_000, 100_000))
    for n in sizes:
        big = n >= 100_000
        out.append(ScaleSetting(
            f"completion n={n:.0e}".replace("e+0", "e"), "completion", n, 100 * n, 5, 10, 0.5,
            (1e-3, 1e-4), (0,) if (quick or big) else seeds3, 300,
            # at 10⁵ 'paper' stalls for the whole budget and plain GD plateaus (both measured
            # at 10⁴): left out there to keep the group near 10 minutes
            transforms=("truncated", "balanced") if big else SCALE_TRANSFORMS, plain=not big))
    if not quick:
        out.append(ScaleSetting("rank-one n=2000", "rank-one", 2000, 100_000, 5, 10, 0.5,
                                (1e-3,), (0,), 220, transforms=("truncated", "balanced"),
                                plain=False))
    return out


def _rate_after(hist, b, t0, window):
    """Linear rate of the error from iteration t0 on (window relative to the error at t0)."""
    it, err = hist["iteration"], hist["error"][:, b]
    if t0 < 0:
        return {"value": float("nan"), "reason": "no switch"}, float("nan")
    at = np.flatnonzero(it == t0)
    if at.size == 0 or not np.isfinite(err[at[0]]):
        return {"value": float("nan"), "reason": "no record at the switch"}, float("nan")
    sel = (it >= t0) & np.isfinite(err)
    fit = ms.rates.linear_rate(it[sel], err[sel], window=window)
    return fit.as_dict(), float(err[at[0]])


def _batched(traj):
    """History with a trajectory axis even for a batch of one."""
    h = dict(traj.history)
    for key in ("error", "rel_error", "residual_norm"):
        if np.ndim(h[key]) == 1:
            h[key] = h[key][:, None]
    return h


def run_scale_setting(st: ScaleSetting, log):
    import warnings

    rows = []
    for seed in st.seeds:
        t0 = time.perf_counter()
        problem = st.problem(seed)
        nA = len(st.alphas)
        F0, G0 = ms.init.small_random(problem, st.k, list(st.alphas), seed=[seed + 1] * nA,
                                      normalization=st.normalization)
        Fr, Gr = F0[..., :st.r], G0[..., :st.r]
        kw = dict(iters=st.iters, tol=1e-10 if st.ensemble != "gaussian" else 3e-13)
        window = SCALE_WINDOW if st.ensemble != "gaussian" else WINDOW
        runs = {"k = r GD": ms.run(problem, ms.GD(st.eta), (Fr, Gr), **kw),
                REF_BAL: ms.run(problem, ms.RebalancedGD(st.eta, transform="balanced",
                                                         rank=st.r), (Fr, Gr), **kw)}
        if st.plain:
            runs["plain k > r GD"] = ms.run(problem, ms.GD(st.eta), (F0, G0), **kw)
        caught = {}
        for tr in st.transforms:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                runs[tr] = ms.run(problem, ms.RebalancedGD(st.eta, transform=tr), (F0, G0), **kw)
            caught[tr] = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
        wall = time.perf_counter() - t0
        hist = {name: _batched(t) for name, t in runs.items()}
        for ai, alpha in enumerate(st.alphas):
            base = {"setting": st.label, "group": "scale", "ensemble": st.ensemble, "n": st.n,
                    "m": st.m, "seed": seed, "alpha": alpha, "eta": st.eta, "k": st.k,
                    "r": st.r, "iters": st.iters, "window": list(window)}
            t_ex, _ = first_crossing(hist["k = r GD"], ai, 1e-2, problem.y_norm)
            fit_ex, _ = _rate_after(hist["k = r GD"], ai, t_ex, window)
            sw_bal = int(np.ravel(runs[REF_BAL].extras["switch_iteration"])[ai])
            fit_bal, _ = _rate_after(hist[REF_BAL], ai, sw_bal, window)
            r_ex, r_bal = fit_ex["value"], fit_bal["value"]
            for name, traj in runs.items():
                h = hist[name]
                status = np.ravel(np.asarray(traj.status, dtype=object))[ai]
                its = int(np.ravel(traj.iterations)[ai])
                ex = {key: np.ravel(v)[ai] for key, v in traj.extras.items()}
                if "switch_iteration" in ex and name != REF_BAL:
                    t_sw = int(ex["switch_iteration"])
                elif name == REF_BAL:
                    t_sw = sw_bal
                else:
                    t_sw, _ = first_crossing(h, ai, 1e-2, problem.y_norm)
                fit, e_sw = _rate_after(h, ai, t_sw, window)
                rel = h["rel_error"][:, ai]
                row = {**base, "row": name, "rate": fit["value"], "fit": fit,
                       "ratio": fit["value"] / r_ex, "ratio_bal": fit["value"] / r_bal,
                       "switch": t_sw, "status": str(status), "iterations": its,
                       "final_rel_error": last_finite(rel),
                       "max_rel_error_after_switch": float(np.nanmax(
                           np.where(h["iteration"] >= max(t_sw, 0), rel, np.nan))),
                       "err_switch_rel": e_sw / problem.M_star_norm}
                if name in st.transforms:
                    row.update({"rhat": int(ex["signal_rank"]),
                                "switch_change": float(ex["switch_change"]),
                                "curvature_before": float(ex["curvature_before"]),
                                "curvature_after": float(ex["curvature_after"]),
                                "warnings": caught[name]})
                rows.append(row)
        log(f"  {st.label} seed {seed}: {wall:.1f} s")
    return rows


def scale_report(rows):
    """Markdown: per setting and transform, ratios (median [min, max]), α-spread, switch report."""
    lines = ["| setting | run | rate | × k = r | × k = r balanced | α-spread | r̂ | ‖ΔP‖/‖P‖ "
             "| max error after / at switch | η·λ before → after | outcome |", "|" + "---|" * 11]
    for label in dict.fromkeys(r["setting"] for r in rows):
        for name in dict.fromkeys(r["row"] for r in rows if r["setting"] == label):
            sel = [r for r in rows if r["setting"] == label and r["row"] == name]
            q = np.array([r["ratio"] for r in sel], float)
            qb = np.array([r["ratio_bal"] for r in sel], float)
            rate = np.array([r["rate"] for r in sel], float)
            spread = alpha_spread(sel) if len(sel[0:]) > 1 else float("nan")

            def cell(v):
                if not np.isfinite(v).any():
                    return "—"
                return f"{np.nanmedian(v):.2f} [{np.nanmin(v):.2f}, {np.nanmax(v):.2f}]"

            sw = [r for r in sel if "rhat" in r]
            rh = ",".join(str(x) for x in sorted({r["rhat"] for r in sw})) if sw else ""
            dp = f"{max(r['switch_change'] for r in sw):.1e}" if sw else ""
            jump = [r["max_rel_error_after_switch"] / r["err_switch_rel"] for r in sw
                    if r["err_switch_rel"] > 0]
            jp = f"{max(jump):.2f}" if jump else ""
            cv = (f"{max(r['curvature_before'] for r in sw):.2f} → "
                  f"{max(r['curvature_after'] for r in sw):.2f}") if sw else ""
            statuses = [r["status"] for r in sel]
            conv = [r["iterations"] for r in sel if r["status"] == "converged"]
            out = (f"conv {len(conv)}/{len(sel)}" + (f" at {int(np.median(conv))}" if conv else "")
                   + (f", diverged {statuses.count('diverged')}" if "diverged" in statuses else ""))
            med = f"{np.nanmedian(rate):.4f}" if np.isfinite(rate).any() else "—"
            sp = f"{100 * spread:.0f}%" if np.isfinite(spread) else "—"
            lines.append(f"| {label} | {name} | {med} | {cell(q)} | {cell(qb)} | {sp} | {rh} "
                         f"| {dp} | {jp} | {cv} | {out} |")
    return "\n".join(lines)


GROUPS = {
    # name: (settings, candidates, table column key, title)
    "kappa": (kappa_settings, candidates, "kappa", "κ (n = 30, r = 2, k = 4, m = 900, η = 0.3)"),
    "other": (other_settings, other_candidates, "setting", "other settings"),
    "mscan": (mscan_settings, mscan_candidates, "setting",
              "measurements m (n = 30, r = 2, k = 4, η = 0.3)"),
    "trigger": (trigger_settings, trigger_candidates, "setting",
                "trigger at large κ (n = 30, r = 2, k = 4, m = 900, η = 0.3, "
                "α ∈ {0.08, 0.02, 0.005})"),
    "keqr": (keqr_settings, keqr_candidates, "setting", "k = r (no extra directions)"),
    "stability": (stability_settings, stability_candidates, "setting",
                  "stability of the lift (κ = 1, n = 30, r = 2, k = 4)"),
}
REFS = ["k = r GD", REF_BAL, "plain k > r GD"]


def print_report(payload):
    """Markdown tables of a results payload (as written to --out)."""
    rows = payload["runs"]
    print("\n## Transform checks (batched; rank-deficient F, σ = 0, P = 0, extreme scales)\n")
    for name, c in payload["checks"].items():
        line = f"* {name}: max ‖ΔP‖/‖P‖ = {c['max_rel_product_change']:.1e}, finite: {c['finite']}"
        bad = [case for case, v in c.get("per_case", {}).items() if not v["finite"]]
        if bad:
            line += f" (non-finite: {', '.join(bad)})"
        if "same_as_study_candidate" in c:
            diff = c["torch_max_abs_diff"]
            line += (f", equals the study's recommended candidate: {c['same_as_study_candidate']}"
                     + (f", torch vs NumPy rel. diff {diff:.1e}" if diff is not None else ""))
        print(line)
    legend = ("\nCells: median post-switch rate · median ratio [min, max] over seeds × α; "
              "α±: worst seed's (max − min)/median over α; (†) some runs did not reach 1e-2 of "
              "the switch error in the budget, rate fit on all records after the switch.\n")
    for group, names_c in payload["candidates"].items():
        sel = [r for r in rows if r["group"] == group]
        if not sel:
            continue
        _, _, col_key, title = GROUPS[group]
        names = REFS + names_c
        cols = list(dict.fromkeys(r[col_key] for r in sel))
        print(f"\n## {title}: ratio to k = r GD from the same start\n")
        print(table(sel, cols, col_key, names))
        print(f"\n## {title}: ratio to k = r GD balanced at its τ-crossing\n")
        print(table(sel, cols, col_key, names, ratio_key="ratio_bal"))
        print(legend)
        print(f"## {title}: at the switch (r̂, switch iterations, η‖F‖²_op and η‖G‖²_op after, "
              "‖ΔP‖/‖P‖, runs converged to 3e-13 and median iterations)\n")
        print(diag_table(sel, cols, col_key, names[3:]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 seed, α ∈ {0.08, 0.02}, fewer candidates, budgets capped at 8000")
    ap.add_argument("--out", type=Path, help="write all numbers as JSON here (.json.gz: gzipped)")
    ap.add_argument("--only", nargs="+", choices=tuple(GROUPS) + ("all", "everything", "scale"),
                    default=["all"], help="groups to run: all = kappa + other (default); "
                    "everything = all five")
    ap.add_argument("--record-every", type=int, default=5)
    ap.add_argument("--kappas", type=float, nargs="+", default=[1, 2, 4, 10, 100],
                    help="κ values of the kappa group")
    ap.add_argument("--report", type=Path, help="print the tables of a saved --out JSON and exit")
    ap.add_argument("--sizes", type=int, nargs="+",
                    help="scale group: completion sizes n (default 10³ 10⁴ 10⁵; quick 10³ 10⁴)")
    args = ap.parse_args(argv)
    if args.report:
        payload = read_json(args.report)
        if payload.get("group") == "scale":
            print(scale_report(payload["runs"]))
        else:
            print_report(payload)
        return
    if "scale" in args.only:
        return main_scale(args)
    if args.record_every < 5:
        raise SystemExit("study_rebalance: error: --record-every must be >= 5")
    groups = []
    for g in args.only:
        groups += {"all": ["kappa", "other"], "everything": list(GROUPS)}.get(g, [g])
    groups = list(dict.fromkeys(groups))
    cap = 8000 if args.quick else 30000
    kappas = [int(x) if x == int(x) else x for x in args.kappas]
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    payload = {"window": WINDOW, "quick": args.quick, "partial": True, "seconds": 0.0,
               "candidates": {}, "transforms": {}, "checks": {}, "runs": []}

    def save():
        payload["seconds"] = time.perf_counter() - t0
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            write_json(args.out, rounded(payload))

    with single_threaded():
        checked = {}
        for group in groups:
            settings_fn, cands_fn, _, _ = GROUPS[group]
            cands = cands_fn(args.quick)
            checked.update({t.name: t for t in cands})
            payload["candidates"][group] = [t.name for t in cands]
            payload["transforms"][group] = [asdict(t) for t in cands]
            settings = (settings_fn(args.quick, kappas) if group == "kappa"
                        else settings_fn(args.quick))
            for st in settings:
                payload["runs"] += run_setting(st, cands, cap, args.record_every, log)
                save()
        payload["checks"] = transform_checks(list(checked.values()))
    payload["partial"] = False
    save()
    print_report(payload)
    print(f"\ntotal {payload['seconds']:.0f} s")
    if args.out:
        print(f"wrote {args.out}")


def main_scale(args):
    """``--only scale``: the shipped transforms on every ensemble and size (see above)."""
    t0 = time.perf_counter()
    payload = {"group": "scale", "quick": args.quick, "partial": True, "runs": []}
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    for st in scale_settings(args.quick, tuple(args.sizes) if args.sizes else None):
        payload["runs"] += run_scale_setting(st, log)
        payload["seconds"] = time.perf_counter() - t0
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            write_json(args.out, rounded(payload))
    payload["partial"] = False
    if args.out:
        write_json(args.out, rounded(payload))
    print(scale_report(payload["runs"]))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
