"""C1 and C3: with exact parameterization (k = r) GD converges linearly, on X Xᵀ and on F Gᵀ."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import init as _init
from ... import plots
from ...rates import linear_rate
from .. import predict
from ..declare import Param, RunSpec, fit_window, positive_int, positive_number
from ..results import fmt_num, fmt_spread, spread
from ..runs import LabeledRun, batch, symmetric_gd
from .base import MIN_R2, Claim, Measurement, Verdict, alpha_label, fit_dict, seed_curves

#: The parameters of the exact parameterization k = r (C1, C3; read by C5–C7 for their k = r
#: fits and references).
EXACT_PARAMS = (
    Param(
        "exact_iters",
        None,
        "int | None",
        "iterations of the k = r runs (None: the budget rule)",
        derive=predict.exact_budget,
        check=positive_int,
    ),
    Param(
        "exact_window",
        (1e-4, 1e-12),
        "tuple",
        "linear-fit window of k = r runs (relative error)",
        check=fit_window,
    ),
    Param(
        "exact_tol",
        1e-13,
        "float",
        "k = r runs stop at this relative residual",
        check=positive_number,
    ),
)


def _sym_exact(sr):
    s = sr.settings
    return symmetric_gd(sr, s.r, s.alphas, s.exact_iters, tol=s.exact_tol)


def _asym_exact(sr):
    s = sr.settings
    p = sr.problem(False)
    alphas, seeds = batch(s.alphas, sr.init_seed("asymmetric"))
    traj = sr.gd(
        p,
        _init.small_random(p, s.r, alphas, ratio=s.ratio, seed=seeds),
        s.exact_iters,
        tol=s.exact_tol,
    )
    return LabeledRun(traj, alphas)


SYM_EXACT = RunSpec("sym_exact", _sym_exact, "exact_iters", "GD on X Xᵀ, k = r, every α")
ASYM_EXACT = RunSpec("asym_exact", _asym_exact, "exact_iters", "GD on F Gᵀ, k = r, every α")


@dataclass(frozen=True)
class ExactCriteria:
    """Every fit linear (r² ≥ ``min_r2``) and every final relative error ≤ ``max_final_rel_error``
    (the claim says "~1e-14"; the float64 floor here is ~5e-16)."""

    min_r2: float = MIN_R2
    max_final_rel_error: float = 1e-12


class ExactClaim(Claim):
    """GD with k = r from small random factors: linear convergence to machine precision."""

    criteria = ExactCriteria()
    parameters = EXACT_PARAMS

    def __init__(self, cid, title, caption, run, model, stem):
        self.id, self.title, self.caption = cid, title, caption
        self.runs = (run,)
        self.run_name, self.model, self.stem = run.name, model, stem

    def measure(self, runs, settings) -> Measurement:
        window = settings.exact_window
        records = []
        for sr in runs:
            run = sr.get(self.run_name)
            for a in settings.alphas:
                t, err = run.curve(a)
                _, rel = run.curve(a, "rel_error")
                fit = linear_rate(t, err, window=window)
                final_rel = float(rel[-1]) if rel.size else math.nan
                records.append(
                    {
                        "seed": sr.seed,
                        "alpha": a,
                        "status": run.status(a),
                        "rate": fit.value,
                        "fit": fit_dict(fit),
                        "final_rel_error": final_rel,
                        "final_iteration": float(t[-1]) if t.size else math.nan,
                    }
                )
        c = self.criteria
        rate = spread([r["rate"] for r in records])
        final = spread([r["final_rel_error"] for r in records])
        measured = f"rate {fmt_spread(rate)} /iter; final rel. error {fmt_spread(final, '{:.1e}')}"
        expected = f"linear (r² ≥ {c.min_r2}); rel. error ~1e-14, ≤ {c.max_final_rel_error:g}"
        details = {
            "rate": rate,
            "final_rel_error": final,
            "window": list(window),
            "iterations": settings.exact_iters,
            "k": settings.r,
            "records": records,
        }
        return Measurement(records, measured, expected, details)

    def judge(self, m, settings) -> Verdict:
        c = self.criteria
        v = Verdict(c.min_r2)
        for rec, where in v.converging(m.records):
            v.fit(rec["fit"], where, "linear fit")
            final = rec["final_rel_error"]
            v.require(
                np.isfinite(final) and final <= c.max_final_rel_error,
                f"{where}: final rel. error {fmt_num(final, '{:.2e}')} > {c.max_final_rel_error:g}",
            )
        return v

    def panels(self, m, runs, settings) -> list:
        s = settings
        curves = [
            c
            for i, a in enumerate(s.alphas)
            for c in plots.seeded_curves(
                *seed_curves(runs, self.run_name, a, "rel_error"),
                label=alpha_label(a),
                color=plots.color(i),
            )
        ]
        return [
            plots.Panel(
                f"{self.model}, k = r = {s.r}, η = {s.eta:g}",
                "iteration t",
                "relative error ‖P_t − M*‖_F / ‖M*‖_F",
                curves=curves,
                note=f"linear rate (median) {fmt_num(m.details['rate']['median'])} per iteration",
            )
        ]


C1 = ExactClaim(
    "C1",
    "symmetric X Xᵀ, k = r: linear convergence",
    "GD on X Xᵀ with k = r from small random X₀: relative error vs iteration (log scale), "
    "one colour per α; the first seed bold, the others faint. A straight line is linear convergence.",
    SYM_EXACT,
    "X Xᵀ",
    "c1_symmetric_exact",
)

C3 = ExactClaim(
    "C3",
    "asymmetric F Gᵀ, k = r: linear convergence",
    "GD on F Gᵀ with k = r from small random (F₀, G₀): relative error vs iteration (log scale).",
    ASYM_EXACT,
    "F Gᵀ",
    "c3_asymmetric_exact",
)
