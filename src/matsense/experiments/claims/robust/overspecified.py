"""R2 (Ding, Jiang, Chen, Qu & Zhu 2021): with k > r and diminishing steps SubGM converges
sublinearly; with k = r (geometric steps) linearly — the ℓ1 twin of C1/C2.

On the seed's PSD problem with outliers (p_s = ``robust_fraction``), SubGM on X Xᵀ from the
small start: k > r with η_t = η₀/(t + 1), k = r with η₀qᵗ. The Polyak step (f* = f₁(M*) is
known) on both widths is shown next to them, a schedule that imposes no rate of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .... import plots
from ....rates import linear_rate, power_law
from ...declare import Param, RunSpec, fit_window, positive_int, positive_number
from ...results import fmt_num, fmt_spread, spread
from ..base import MIN_R2, Claim, Measurement, Verdict, fit_dict
from . import common

PARAMS = (
    Param("r2_iters", 4000, "int", "iterations of R2's runs", quick=1500, check=positive_int),
    Param(
        "r2_step",
        3.0,
        "float",
        "η₀ of the diminishing steps η₀/(t + 1) (k > r)",
        check=positive_number,
    ),
    Param(
        "r2_tail",
        0.5,
        "float",
        "the power law is fitted on t ≥ r2_tail × the last iteration",
        check=positive_number,
    ),
    Param(
        "r2_window",
        (1e-2, 1e-8),
        "tuple",
        "linear-fit window of the k = r run (relative error)",
        check=fit_window,
    ),
)
#: (label, width, schedule) of the runs: the claim's pair, then the Polyak pair.
RUNS = (
    ("over", "k", "diminishing"),
    ("exact", "r", "geometric"),
    ("over_polyak", "k", "polyak"),
    ("exact_polyak", "r", "polyak"),
)


def _method(s, schedule):
    if schedule == "diminishing":
        return common.subgm("diminishing", step_size=s.r2_step)
    return common.geometric(s) if schedule == "geometric" else common.subgm("polyak")


def _build(sr):
    s = sr.settings
    p = common.outlier_problem(sr, True, s.robust_fraction)
    return {
        label: common.sym_run(
            sr, p, _method(s, schedule), getattr(s, width), [s.robust_alpha], s.r2_iters, tol=1e-14
        )
        for label, width, schedule in RUNS
    }


R2_RUNS = RunSpec(
    "r2_rates", _build, "r2_iters", "SubGM on X Xᵀ: k > r diminishing, k = r geometric, both Polyak"
)


@dataclass(frozen=True)
class OverspecifiedCriteria:
    """k > r: the tail is a power law (r² ≥ ``min_r2``) with exponent in [``slope_min``,
    ``slope_max``] — polynomial, not geometric, decay; k = r: a linear fit with r² ≥ ``min_r2``
    and final relative error ≤ ``max_exact_error`` (R1's bar). Fits are on the best error so
    far (:func:`.common.best_so_far`)."""

    min_r2: float = MIN_R2
    slope_min: float = -3.0
    slope_max: float = -0.3
    max_exact_error: float = 1e-6


class OverspecifiedClaim(Claim):
    id = "R2"
    suite = "robust"
    title = "SubGM: k > r sublinear, k = r linear (Ding et al.)"
    caption = (
        "SubGM on the ℓ1 loss, X Xᵀ, outliers on a fraction p_s: error vs iteration on "
        "log-log axes. k > r with diminishing steps η₀/(t+1) (the claim's sublinear case) "
        "and k = r with geometric steps (linear); dashed: both widths with the Polyak "
        "step, which imposes no rate of its own."
    )
    parameters = common.PARAMS + PARAMS
    runs = (R2_RUNS,)
    stem = "r2_overspecified_rates"
    criteria = OverspecifiedCriteria()

    def measure(self, runs, settings) -> Measurement:
        s = settings
        a = s.robust_alpha
        records = []
        for sr in runs:
            r = sr.get("r2_rates")
            rec = {"seed": sr.seed, "alpha": a}
            for label, _, _ in RUNS:
                t, err = common.best_so_far(*r[label].curve(a))
                tail = power_law(t, err, tail=s.r2_tail)
                lin = linear_rate(t, err, window=s.r2_window)
                rec[label] = {
                    "status": r[label].status(a),
                    "slope": tail.value,
                    "power_fit": fit_dict(tail),
                    "rate": lin.value,
                    "linear_fit": fit_dict(lin),
                    "final_rel_error": common.final(r[label], a),
                }
            records.append(rec)

        def sp(label, key):
            return spread([rec[label][key] for rec in records])

        details: dict = {
            label: {key: sp(label, key) for key in ("slope", "rate", "final_rel_error")}
            for label, _, _ in RUNS
        }
        measured = (
            f"k = {s.k}, diminishing: tail slope {fmt_spread(details['over']['slope'])}, "
            f"final rel. error {fmt_spread(details['over']['final_rel_error'], '{:.1e}')}; "
            f"k = r = {s.r}, geometric: rate {fmt_spread(details['exact']['rate'])} /iter, "
            f"final {fmt_spread(details['exact']['final_rel_error'], '{:.1e}')}; Polyak: "
            f"k > r slope {fmt_spread(details['over_polyak']['slope'])}, k = r rate "
            f"{fmt_spread(details['exact_polyak']['rate'])} /iter"
        )
        c = self.criteria
        expected = (
            f"k > r: power law, slope in [{c.slope_min:g}, {c.slope_max:g}] (r² ≥ "
            f"{c.min_r2}); k = r: linear (r² ≥ {c.min_r2}), final ≤ {c.max_exact_error:g}"
        )
        details.update(
            iterations=s.r2_iters, tail=s.r2_tail, window=list(s.r2_window), k=s.k, records=records
        )
        return Measurement(records, measured, expected, details)

    def judge(self, m, settings) -> Verdict:
        c = self.criteria
        v = Verdict(c.min_r2)
        for rec in m.records:
            over, exact = rec["over"], rec["exact"]
            where = f"seed {rec['seed']}"
            if not v.diverged(over["status"], f"{where}, k > r") and v.fit(
                over["power_fit"], f"{where}, k > r", "power-law fit"
            ):
                v.require(
                    c.slope_min <= over["slope"] <= c.slope_max,
                    f"{where}, k > r: slope {over['slope']:.3f} outside "
                    f"[{c.slope_min:g}, {c.slope_max:g}]",
                )
            if not v.diverged(exact["status"], f"{where}, k = r"):
                v.fit(exact["linear_fit"], f"{where}, k = r", "linear fit")
                err = exact["final_rel_error"]
                v.require(
                    np.isfinite(err) and err <= c.max_exact_error,
                    f"{where}, k = r: final rel. error {fmt_num(err, '{:.2e}')} > "
                    f"{c.max_exact_error:g}",
                )
        return v

    def panels(self, m, runs, settings) -> list:
        s = settings
        styles = {
            "over": (0, "-"),
            "exact": (1, "-"),
            "over_polyak": (0, "--"),
            "exact_polyak": (1, "--"),
        }
        names = {
            "over": f"k = {s.k}, η₀/(t+1)",
            "exact": f"k = r = {s.r}, η₀qᵗ",
            "over_polyak": f"k = {s.k}, Polyak",
            "exact_polyak": f"k = r = {s.r}, Polyak",
        }
        curves = []
        for label, (i, ls) in styles.items():
            xs, ys = zip(
                *(sr.get("r2_rates")[label].curve(s.robust_alpha, "rel_error") for sr in runs)
            )
            curves += plots.seeded_curves(
                xs, ys, label=names[label], color=plots.color(i), linestyle=ls
            )
        slope = m.details["over"]["slope"]["median"]
        return [
            plots.Panel(
                f"X Xᵀ, p_s = {s.robust_fraction:g}, α = {s.robust_alpha:g}",
                "iteration t (log)",
                "relative error",
                curves=curves,
                xscale="log",
                note=f"k > r tail slope (median) {fmt_num(slope)}"
                if math.isfinite(slope)
                else None,
            )
        ]


R2 = OverspecifiedClaim()
