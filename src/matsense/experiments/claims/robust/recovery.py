"""R1 (Ma & Fattahi 2022): sub-gradient steps on the ℓ1 loss from a small start recover M*
under outliers, over-parameterized (k > r) too.

SubGM on X Xᵀ with k > r on the seed's PSD problem with outliers on a fraction p_s of the
measurements, geometric steps η₀qᵗ, from the small start at every α of ``r1_alphas``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .... import plots
from ...declare import Param, RunSpec, positive_int, positive_values
from ...results import fmt_num, fmt_spread, spread
from ..base import Claim, Measurement, Verdict, alpha_label
from . import common

PARAMS = (
    Param(
        "r1_fractions", (0.1, 0.2), "tuple", "outlier fractions p_s of R1", check=common.fractions
    ),
    Param(
        "r1_alphas",
        (1e-2, 1e-3, 1e-4),
        "tuple",
        "small initialization scales α of R1",
        check=positive_values,
    ),
    Param("r1_iters", 3000, "int", "iterations of R1's runs", quick=1500, check=positive_int),
)


def _build(sr):
    s = sr.settings
    out = {}
    for p_s in s.r1_fractions:
        p = common.outlier_problem(sr, True, p_s)
        out[p_s] = common.sym_run(
            sr, p, common.geometric(s), s.k, s.r1_alphas, s.r1_iters, tol=1e-14
        )
    return out


R1_RUNS = RunSpec(
    "r1_outliers",
    _build,
    "r1_iters",
    "SubGM on X Xᵀ, k > r, geometric steps, every p_s of r1_fractions and α",
)


@dataclass(frozen=True)
class RecoveryCriteria:
    """Every final relative error ‖X Xᵀ − M*‖_F/‖M*‖_F ≤ ``max_rel_error`` (the issue's number)."""

    max_rel_error: float = 1e-6


class RecoveryClaim(Claim):
    id = "R1"
    suite = "robust"
    title = "small-init SubGM, k > r, recovers M* under outliers"
    caption = (
        "SubGM on the ℓ1 loss (X Xᵀ, k > r, geometric steps η₀qᵗ) from a small start, "
        "with outliers of up to c·‖𝒜(M*)‖_∞ on a fraction p_s of the measurements: "
        "relative error vs iteration, one panel per p_s, one colour per α (first seed "
        "bold). The dotted line is the 1e-6 target."
    )
    parameters = common.PARAMS + PARAMS
    runs = (R1_RUNS,)
    stem = "r1_outlier_recovery"
    criteria = RecoveryCriteria()

    def measure(self, runs, settings) -> Measurement:
        s = settings
        records = []
        for sr in runs:
            by_fraction = sr.get("r1_outliers")
            for p_s in s.r1_fractions:
                run = by_fraction[p_s]
                for a in s.r1_alphas:
                    records.append(
                        {
                            "seed": sr.seed,
                            "fraction": p_s,
                            "alpha": a,
                            "status": run.status(a),
                            "final_rel_error": common.final(run, a),
                            "lowest_rel_error": common.lowest(run, a),
                        }
                    )
        per_fraction = {
            str(p_s): spread([r["final_rel_error"] for r in records if r["fraction"] == p_s])
            for p_s in s.r1_fractions
        }
        per_alpha = {
            f"{a:g}": spread([r["final_rel_error"] for r in records if r["alpha"] == a])
            for a in s.r1_alphas
        }
        measured = "; ".join(
            f"p_s = {p_s:g}: final rel. error {fmt_spread(v, '{:.1e}')}"
            for p_s, v in zip(s.r1_fractions, per_fraction.values())
        )
        measured += (
            f" (k = {s.k}; median by α: "
            + ", ".join(f"{a}: {fmt_num(v['median'], '{:.1e}')}" for a, v in per_alpha.items())
            + ")"
        )
        expected = (
            f"relative error ≤ {self.criteria.max_rel_error:g} at every p_s and α (Ma & Fattahi)"
        )
        details = {
            "final_rel_error": per_fraction,
            "by_alpha": per_alpha,
            "k": s.k,
            "iterations": s.r1_iters,
            "step": [s.geo_step, s.geo_decay],
            "records": records,
        }
        return Measurement(records, measured, expected, details)

    def judge(self, m, settings) -> Verdict:
        c = self.criteria
        v = Verdict()
        for rec in m.records:
            where = f"seed {rec['seed']}, p_s = {rec['fraction']:g}, α = {rec['alpha']:g}"
            if v.diverged(rec["status"], where):
                continue
            err = rec["final_rel_error"]
            v.require(
                err <= c.max_rel_error,
                f"{where}: final rel. error {fmt_num(err, '{:.2e}')} > {c.max_rel_error:g}",
            )
        return v

    def panels(self, m, runs, settings) -> list:
        s = settings
        panels = []
        for p_s in s.r1_fractions:
            curves = []
            for i, a in enumerate(s.r1_alphas):
                xs, ys = zip(*(sr.get("r1_outliers")[p_s].curve(a, "rel_error") for sr in runs))
                curves += plots.seeded_curves(xs, ys, label=alpha_label(a), color=plots.color(i))
            panels.append(
                plots.Panel(
                    f"X Xᵀ, k = {s.k} > r = {s.r}, p_s = {p_s:g}",
                    "iteration t",
                    "relative error ‖X Xᵀ − M*‖_F / ‖M*‖_F",
                    curves=curves,
                    hlines=[plots.HLine(self.criteria.max_rel_error, "target 1e-6")],
                    note=f"η_t = {s.geo_step:g}·{s.geo_decay:g}ᵗ",
                )
            )
        return panels


R1 = RecoveryClaim()
