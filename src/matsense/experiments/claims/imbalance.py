"""C8: GD changes Δ = FᵀF − GᵀG only by O(η²) per step (so O(η) over a fixed time ηt).

First order in η means drift(η) = c·η + O(η²) over a fixed time, so the ratio
drift(η)/drift(η/2) is 2 + O(η): the claim is about its limit. The runs at η,
η/2 and η/4 give two ratios; the verdict reads the one at the smaller pair
(η/2, η/4), where the O(η) correction is half as large, and also requires that
halving η does not move the ratio away from 2 (an O(η²) drift would send it
towards 4, an O(1) one towards 1). The (η, η/2) ratio is reported beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import init as _init
from ... import plots
from ..declare import Param, RunSpec, positive_int, positive_number, positive_values
from ..drift import run_checkpoints
from ..predict import round_budget, sigma_r
from ..results import fmt_num, fmt_spread, spread
from ..runs import batch
from .base import Claim, Measurement, Verdict, alpha_label, alpha_sweep

#: C8's parameters: the drift is read over the same time η·t = ``c8_time``/σ_r at η, η/2, η/4.
PARAMS = (
    Param(
        "c8_alphas",
        None,
        "tuple | None",
        "the α of the drift runs (None: the α grid, quick_alphas of it)",
        derive=alpha_sweep,
        check=positive_values,
    ),
    Param(
        "c8_iters",
        None,
        "int | None",
        "iterations at η (None: c8_time / (η σ_r))",
        derive=lambda s: round_budget(s.c8_time / (s.eta * sigma_r(s))),
        check=positive_int,
    ),
    Param(
        "c8_time",
        150.0,
        "float",
        "the horizon in units of 1/σ_r",
        quick=45.0,
        check=positive_number,
    ),
    Param(
        "c8_checkpoints",
        24,
        "int",
        "checkpoints at which the drift is read",
        quick=16,
        check=positive_int,
    ),
)


def drift_checkpoints(iters: int, n: int) -> np.ndarray:
    """About ``n`` iterations from 1 to ``iters``, geometrically spaced (the drift builds up early)."""
    return np.unique(np.round(np.geomspace(1, iters, n)).astype(int))


def _drift(sr):
    s = sr.settings
    p = sr.problem(False)
    alphas, seeds = batch(s.c8_alphas, sr.init_seed("asymmetric"))
    init = _init.small_random(p, s.k, alphas, ratio=s.ratio, seed=seeds)
    ck = drift_checkpoints(s.c8_iters, s.c8_checkpoints)
    full = run_checkpoints(p, init, s.eta, ck, divergence_factor=s.divergence_factor)
    half = run_checkpoints(p, init, s.eta / 2, 2 * ck, divergence_factor=s.divergence_factor)
    quarter = run_checkpoints(p, init, s.eta / 4, 4 * ck, divergence_factor=s.divergence_factor)
    return {"eta": full, "half": half, "quarter": quarter, "labels": tuple(alphas)}


DRIFT = RunSpec("drift", _drift, "c8_iters", "DriftBoundGD at η, η/2, η/4, every α of c8_alphas")


@dataclass(frozen=True)
class ImbalanceCriteria:
    """The drift stays under its bound η²Σ(‖∇_F f‖² + ‖∇_G f‖²); it is first order in η over a
    fixed time ηt: drift(η/2)/drift(η/4) in [``eta_ratio_low``, ``eta_ratio_high``], and no
    farther from 2 than drift(η)/drift(η/2) is (plus ``order_slack``, the noise of a ratio
    that is already ≈ 2); and it is at most ``max_relative_drift`` of how far FᵀF itself
    moves."""

    eta_ratio_low: float = 1.6
    eta_ratio_high: float = 2.4
    order_slack: float = 0.05
    max_relative_drift: float = 0.1


def _max(values) -> float:
    """The largest finite value, NaN when there is none (a run that diverged at once)."""
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else math.nan


class ImbalanceClaim(Claim):
    id = "C8"
    title = "GD nearly conserves the imbalance Δ = FᵀF − GᵀG"
    caption = (
        "Left: imbalance drift ‖Δ_t − Δ₀‖_F at checkpoints and the bound "
        "η²Σ(‖∇_F f‖² + ‖∇_G f‖²) (dotted). Right: drift against time η·t at η, η/2 and "
        "η/4: halving η halves the drift."
    )
    runs = (DRIFT,)
    parameters = PARAMS
    stem = "c8_imbalance_drift"
    criteria = ImbalanceCriteria()

    def measure(self, runs, settings) -> Measurement:
        s = settings
        records = []
        for sr in runs:
            d = sr.get("drift")
            full, half, quarter = d["eta"], d["half"], d["quarter"]
            for b, a in enumerate(d["labels"]):
                records.append(_drift_record(sr.seed, a, b, full, half, quarter))
        c = self.criteria
        ratio = spread([r["eta_ratio"] for r in records])
        fine = spread([r["eta_ratio_fine"] for r in records])
        rel = spread([r["drift_over_gram_change"] for r in records])
        rel0 = spread([r["drift_over_delta0"] for r in records])
        drift = spread([r["max_drift"] for r in records])
        n_bound = sum(bool(r["bound_holds"]) for r in records)
        measured = (
            f"max drift {fmt_spread(drift, '{:.2g}')} = {fmt_spread(rel, '{:.1%}')} of "
            f"‖FᵀF − F₀ᵀF₀‖ ({fmt_spread(rel0, '{:.0%}')} of ‖Δ₀‖); drift(η/2)/drift(η/4) "
            f"{fmt_spread(fine)} (η/(η/2): {fmt_spread(ratio)}); bound held {n_bound}/{len(records)}"
        )
        expected = (
            f"drift ≤ η²Σ‖∇f‖²; O(η): (η/2)/(η/4) ratio in [{c.eta_ratio_low:g}, "
            f"{c.eta_ratio_high:g}], not farther from 2 than the (η, η/2) one; "
            f"≤ {c.max_relative_drift:.0%} of ‖FᵀF − F₀ᵀF₀‖"
        )
        details = {
            "max_drift": drift,
            "eta_ratio": ratio,
            "eta_ratio_fine": fine,
            "drift_over_gram_change": rel,
            "drift_over_delta0": rel0,
            "bound_holds": n_bound,
            "n": len(records),
            "iterations_eta": s.c8_iters,
            "iterations_half_eta": 2 * s.c8_iters,
            "iterations_quarter_eta": 4 * s.c8_iters,
            "alphas": list(s.c8_alphas),
            "records": records,
        }
        return Measurement(records, measured, expected, details)

    def judge(self, m, settings) -> Verdict:
        c = self.criteria
        v = Verdict()
        lo, hi = c.eta_ratio_low, c.eta_ratio_high
        for rec, where in v.converging(m.records):
            v.require(rec["bound_holds"], f"{where}: drift exceeds η²Σ(‖∇_F f‖² + ‖∇_G f‖²)")
            ratio, fine = rec["eta_ratio"], rec["eta_ratio_fine"]
            rel = rec["drift_over_gram_change"]
            v.require(
                np.isfinite(fine) and lo <= fine <= hi,
                f"{where}: drift(η/2)/drift(η/4) = {fmt_num(fine)} outside [{lo:g}, {hi:g}]",
            )
            v.require(
                np.isfinite(ratio) and abs(fine - 2) <= abs(ratio - 2) + c.order_slack,
                f"{where}: halving η moved the drift ratio away from 2 "
                f"({fmt_num(ratio)} → {fmt_num(fine)}): not first order in η",
            )
            v.require(
                np.isfinite(rel) and rel <= c.max_relative_drift,
                f"{where}: drift/‖FᵀF − F₀ᵀF₀‖ = {fmt_num(rel)} > {c.max_relative_drift:g}",
            )
        return v

    def panels(self, m, runs, settings) -> list:
        s = settings
        sr0 = runs[0]
        d0 = sr0.get("drift")
        f, h, q = d0["eta"], d0["half"], d0["quarter"]
        c1, c2 = [], []
        for i, a in enumerate(d0["labels"]):
            c1 += _bound_curves(f, i, a)
            c2 += _eta_curves(s, (f, h, q), i, a)
        p1 = plots.Panel(
            f"seed {sr0.seed}: drift and its bound, η = {s.eta:g}",
            "iteration t (log)",
            "‖Δ_t − Δ₀‖_F",
            curves=c1,
            xscale="log",
            legend_loc="lower right",
        )
        p2 = plots.Panel(
            "halving η halves the drift (same time ηt)",
            "time η·t (log)",
            "‖Δ_t − Δ₀‖_F",
            curves=c2,
            xscale="log",
            legend_loc="lower right",
            note=f"median drift ratios: η/(η/2) "
            f"{fmt_num(m.details['eta_ratio']['median'])}, (η/2)/(η/4) "
            f"{fmt_num(m.details['eta_ratio_fine']['median'])}",
        )
        return [p1, p2]


def _drift_record(seed, a, b, full, half, quarter) -> dict:
    """The record of trajectory ``b`` (α = ``a``): its largest drift at η, η/2 and η/4, their
    ratios, whether the bound held, and the drift relative to ‖Δ₀‖ and to the Gram change."""
    with np.errstate(all="ignore"):
        max_f, max_h, max_q = (_max(c.drift[:, b]) for c in (full, half, quarter))
        growth = _max(full.growth[:, b])
        bound_ok = all(
            bool(np.all(c.drift[:, b] <= c.bound[:, b] + 1e-9 * c.bound[:, b] + 1e-14))
            for c in (full, half, quarter)
        )
        eta_ratio = max_f / max_h if max_h > 0 else math.nan
        ratio_fine = max_h / max_q if max_q > 0 else math.nan
        rel_growth = max_f / growth if growth > 0 else math.nan
    statuses = (full.status[b], half.status[b], quarter.status[b])
    status = "diverged" if "diverged" in statuses else "ok"
    return {
        "seed": seed,
        "alpha": a,
        "status": status,
        "max_drift": max_f,
        "max_drift_half_eta": max_h,
        "max_drift_quarter_eta": max_q,
        "eta_ratio": eta_ratio,
        "eta_ratio_fine": ratio_fine,
        "final_bound": float(full.bound[-1, b]),
        "bound_holds": bound_ok,
        "delta0_norm": float(full.delta0_norm[b]),
        "drift_over_delta0": max_f / float(full.delta0_norm[b]),
        "max_gram_change": growth,
        "drift_over_gram_change": rel_growth,
        "final_rel_error": float(full.rel_error[-1, b]),
    }


def _bound_curves(f, i, a) -> list:
    """Trajectory ``i``'s drift at η and its bound against the iteration."""
    col = plots.color(i)
    return [
        plots.Curve(
            f.iterations,
            f.drift[:, i],
            label=f"‖Δ_t − Δ₀‖_F, {alpha_label(a)}",
            color=col,
            marker="o",
            markersize=3,
        ),
        plots.Curve(
            f.iterations,
            f.bound[:, i],
            label=f"bound η²Σ‖∇f‖², {alpha_label(a)}",
            color=col,
            linestyle=":",
            linewidth=1.2,
        ),
    ]


def _eta_curves(s, fhq, i, a) -> list:
    """Trajectory ``i``'s drift at η, η/2 and η/4 (``fhq``) against the time η·t."""
    f, h, q = fhq
    col = plots.color(i)
    return [
        plots.Curve(
            s.eta * f.iterations,
            f.drift[:, i],
            label=f"η = {s.eta:g}, {alpha_label(a)}",
            color=col,
            marker="o",
            markersize=3,
        ),
        plots.Curve(
            s.eta / 2 * h.iterations,
            h.drift[:, i],
            label=f"η = {s.eta / 2:g}, {alpha_label(a)}",
            color=col,
            linestyle="--",
            marker="^",
            markersize=3,
        ),
        plots.Curve(
            s.eta / 4 * q.iterations,
            q.drift[:, i],
            label=f"η = {s.eta / 4:g}, {alpha_label(a)}",
            color=col,
            linestyle=":",
            marker="v",
            markersize=3,
        ),
    ]


C8 = ImbalanceClaim()
