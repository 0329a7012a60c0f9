"""C2: with symmetric over-parameterization (X Xᵀ, k > r) GD is sublinear, ‖X_tX_tᵀ − M*‖_F ∝ 1/t."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import plots
from ...rates import power_law
from ..declare import Param, RunSpec, positive_int, positive_number, positive_values
from ..predict import NATS_TO_FLOOR, escape_iters, imbalance_rate, round_budget
from ..results import fmt_num, fmt_spread, spread
from ..runs import long_record_every, symmetric_gd
from .base import (
    MIN_R2,
    Claim,
    Measurement,
    Verdict,
    alpha_label,
    fit_dict,
    seed_curves,
    within,
    within_factor,
)


def _c2_budget(s) -> int:
    """The X Xᵀ run is also C5/C6's X Xᵀ curve: it must enter its 1/t tail well before the end,
    and last as long as F Gᵀ on the n1 × n1 PSD problem needs to converge from ``c5_alpha``
    (the predicted rate is already a lower estimate: no extra factor)."""
    a5 = s.c5_alpha
    psd_fgt = escape_iters(s, a5) + NATS_TO_FLOOR / imbalance_rate(s, a5, s.n1, s.n1)
    return round_budget(max(s.c2_min_iters, 100 * escape_iters(s, max(s.c2_alphas)), psd_fgt))


#: C2's parameters (the X Xᵀ run with k > r, also the X Xᵀ curve of C5 and C6).
PARAMS = (
    Param(
        "c2_alphas",
        None,
        "tuple | None",
        "α of the X Xᵀ, k > r run (None: the largest α)",
        derive=lambda s: (s.alphas[0],),
        check=positive_values,
    ),
    Param(
        "c2_iters",
        None,
        "int | None",
        "iterations of the X Xᵀ, k > r run (None: the budget rule)",
        derive=_c2_budget,
        check=positive_int,
    ),
    Param(
        "c2_min_iters",
        10000,
        "int",
        "the least c2_iters the budget rule gives",
        quick=3000,
        check=positive_int,
    ),
    Param(
        "c2_tail",
        0.5,
        "float",
        "the power law is fitted on t ≥ c2_tail × the last iteration",
        check=positive_number,
    ),
)


def _sym_over(sr):
    s = sr.settings
    return symmetric_gd(
        sr, s.k, s.c2_alphas, s.c2_iters, record_every=long_record_every(s, s.c2_iters)
    )


SYM_OVER = RunSpec("sym_over", _sym_over, "c2_iters", "GD on X Xᵀ, k > r, every α of c2_alphas")


def isotropic_prediction(t, k: int, r: int, eta: float):
    """Our isotropic-limit prediction ‖X_tX_tᵀ − M*‖_F ≈ √(k − r)/(2ηt) (a derivation of ours,
    not a formula of the paper; see docs/claims.md)."""
    return math.sqrt(k - r) / (2 * eta * np.asarray(t, dtype=float))


@dataclass(frozen=True)
class SublinearCriteria:
    """Every tail exponent in ``slope`` ± ``slope_tol`` and every error within a factor
    ``prediction_factor`` of :func:`isotropic_prediction` at the last iterate."""

    min_r2: float = MIN_R2
    slope: float = -1.0
    slope_tol: float = 0.15
    prediction_factor: float = 2.0


class SublinearClaim(Claim):
    id = "C2"
    title = "symmetric X Xᵀ, k > r: sublinear, error ∝ 1/t"
    caption = (
        "GD on X Xᵀ with k > r: error vs iteration on log-log axes. The tail follows a line "
        "of slope −1 (1/t), next to our isotropic-limit prediction √(k−r)/(2ηt) (dashed; a "
        "derivation of ours, not a formula of the paper)."
    )
    runs = (SYM_OVER,)
    parameters = PARAMS
    stem = "c2_symmetric_over"
    criteria = SublinearCriteria()

    def measure(self, runs, settings) -> Measurement:
        s = settings
        records = []
        for sr in runs:
            run = sr.get("sym_over")
            for a in s.c2_alphas:
                t, err = run.curve(a)
                fit = power_law(t, err, tail=s.c2_tail)
                T = float(t[-1]) if t.size else math.nan
                pred = float(isotropic_prediction(T, s.k, s.r, s.eta)) if T > 0 else math.nan
                ratio_T = float(err[-1]) / pred if T > 0 else math.nan
                records.append(
                    {
                        "seed": sr.seed,
                        "alpha": a,
                        "status": run.status(a),
                        "slope": fit.value,
                        "fit": fit_dict(fit),
                        "T": T,
                        "error_T": float(err[-1]) if t.size else math.nan,
                        "prediction_T": pred,
                        "ratio_to_prediction": ratio_T,
                    }
                )
        c = self.criteria
        slope = spread([r["slope"] for r in records])
        ratio = spread([r["ratio_to_prediction"] for r in records])
        tail_start = s.c2_tail * s.c2_iters
        measured = (
            f"slope {fmt_spread(slope)} on t ∈ [{tail_start:g}, {s.c2_iters}]; "
            f"error/prediction {fmt_spread(ratio)} at t = {s.c2_iters}"
        )
        expected = (
            f"slope {c.slope:g} ± {c.slope_tol:g}; error ≈ √(k−r)/(2ηt) within "
            f"×{c.prediction_factor:g}"
        )
        details = {
            "slope": slope,
            "ratio_to_prediction": ratio,
            "tail": s.c2_tail,
            "iterations": s.c2_iters,
            "k": s.k,
            "records": records,
        }
        return Measurement(records, measured, expected, details)

    def judge(self, m, settings) -> Verdict:
        c = self.criteria
        v = Verdict(c.min_r2)
        for rec, where in v.converging(m.records):
            if v.fit(rec["fit"], where, "power-law fit"):
                v.require(
                    within(rec["slope"], c.slope, c.slope_tol),
                    f"{where}: slope {rec['slope']:.3f} outside {c.slope:g} ± {c.slope_tol:g}",
                )
            fac = c.prediction_factor
            v.require(
                within_factor(rec["ratio_to_prediction"], fac),
                f"{where}: error/prediction {fmt_num(rec['ratio_to_prediction'])} outside "
                f"[1/{fac:g}, {fac:g}]",
            )
        return v

    def panels(self, m, runs, settings) -> list:
        s = settings
        curves = [
            c
            for i, a in enumerate(s.c2_alphas)
            for c in plots.seeded_curves(
                *seed_curves(runs, "sym_over", a),
                label=f"X Xᵀ, {alpha_label(a)}",
                color=plots.color(i),
            )
        ]
        tt = np.geomspace(10, s.c2_iters, 50)
        curves.append(
            plots.Curve(
                tt,
                isotropic_prediction(tt, s.k, s.r, s.eta),
                label="prediction √(k−r)/(2ηt)",
                color="k",
                linestyle="--",
                linewidth=1.2,
            )
        )
        t0, e0 = runs[0].get("sym_over").curve(s.c2_alphas[0])
        if t0.size:
            curves.append(
                plots.Curve(
                    tt,
                    e0[-1] * t0[-1] / tt,
                    label="∝ 1/t through the last iterate",
                    color="0.5",
                    linestyle=":",
                    linewidth=1.2,
                )
            )
        return [
            plots.Panel(
                f"X Xᵀ, k = {s.k} > r = {s.r}, η = {s.eta:g}",
                "iteration t (log)",
                "error ‖X_tX_tᵀ − M*‖_F",
                curves=curves,
                xscale="log",
                note=f"tail slope (median) {fmt_num(m.details['slope']['median'])}",
            )
        ]


C2 = SublinearClaim()
