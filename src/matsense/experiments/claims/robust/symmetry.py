"""R5 (ours; no paper answers it): the curse of symmetry under ℓ1, and the one-step fix.

On the seed's PSD problem with outliers (p_s = ``robust_fraction``), SubGM with the Polyak
step (f* = f₁(M*) known; a schedule that imposes no rate of its own) on X Xᵀ and on F Gᵀ with
k > r from small starts, F Gᵀ with k = r as the reference, and F Gᵀ with k > r rebalanced once
at iteration ``r5_switch`` by the truncated transform of C7
(:func:`matsense.methods.rebalance.rebalance_truncated`, signal rank r given), then SubGM again.
The hypothesis is the ℓ2 picture (C5–C7): F Gᵀ beats X Xᵀ by orders of magnitude, and the
rebalanced run converges at about the k = r rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from .... import plots
from ....rates import linear_rate, power_law
from ...declare import Param, RunSpec, fit_window, positive_int, positive_number
from ...results import fmt_num, fmt_spread, spread
from ...runs import LabeledRun
from ..base import MIN_R2, Claim, Measurement, Verdict, fit_dict
from . import common

PARAMS = (
    Param("r5_iters", 2000, "int", "iterations of R5's runs", quick=1000, check=positive_int),
    Param(
        "r5_alpha",
        0.08,
        "float",
        "initialization scale α of R5 (C5's α at the default "
        "setting; from α ≤ 0.01 the Polyak step overshoots and F Gᵀ stalls)",
        check=positive_number,
    ),
    Param("r5_switch", 100, "int", "iteration of R5's rebalancing step", check=positive_int),
    Param(
        "r5_window",
        (1e-2, 1e-10),
        "tuple",
        "linear-fit window of R5 (error relative to the start of the fit)",
        check=fit_window,
    ),
    Param(
        "r5_tail",
        0.5,
        "float",
        "X Xᵀ's power law is fitted on t ≥ r5_tail × the last iteration",
        check=positive_number,
    ),
)
LABELS = ("xxt", "fgt", "exact", "rebalanced")


def _build(sr):
    from ....methods.rebalance import rebalance_truncated

    s = sr.settings
    p = common.outlier_problem(sr, True, s.robust_fraction)
    method = common.subgm("polyak")
    a = s.r5_alpha

    def fgt(start, iters):
        return LabeledRun(sr.gd(p, start, iters, method=method, tol=1e-14), [a])

    out = {
        "xxt": common.sym_run(sr, p, method, s.k, [a], s.r5_iters, tol=1e-14),
        "fgt": fgt(common.asym_start(sr, p, s.k, a), s.r5_iters),
        "exact": fgt(common.asym_start(sr, p, s.r, a), s.r5_iters),
    }
    switch = min(s.r5_switch, s.r5_iters)
    F, G = fgt(common.asym_start(sr, p, s.k, a), switch).traj.factors
    F, G, _ = rebalance_truncated(F, G, None, None, rank=s.r)
    out["rebalanced"] = fgt((F, G), s.r5_iters - switch)
    return out


R5_RUNS = RunSpec(
    "r5_symmetry",
    _build,
    "r5_iters",
    "SubGM (Polyak) on the PSD problem: X Xᵀ and F Gᵀ with k > r, F Gᵀ with k = r, "
    "F Gᵀ rebalanced once",
)


@dataclass(frozen=True)
class SymmetryCriteria:
    """F Gᵀ's final error ≤ ``max_fgt_over_xxt`` × X Xᵀ's (the curse: orders of magnitude
    apart); the rebalanced run's post-switch rate (linear fit, r² ≥ ``min_r2``) ≥
    ``min_fix_ratio`` × the k = r rate (C7's bar). Fits are on the best error so far."""

    min_r2: float = MIN_R2
    max_fgt_over_xxt: float = 1e-2
    min_fix_ratio: float = 0.8


def _curve(sr, label, a, switch, key="rel_error"):
    t, y = sr.get("r5_symmetry")[label].curve(a, key)
    return (t + switch, y) if label == "rebalanced" else (t, y)


def _best(sr, label, a, switch):
    """The best error so far (:func:`.common.best_so_far`) of run ``label``."""
    return common.best_so_far(*_curve(sr, label, a, switch, "error"))


class SymmetryClaim(Claim):
    id = "R5"
    suite = "robust"
    title = "the curse of symmetry under ℓ1, and the one-step rebalancing"
    caption = (
        "SubGM with the Polyak step on a PSD problem with outliers: relative error vs "
        "iteration for X Xᵀ and F Gᵀ with k > r, F Gᵀ with k = r, and F Gᵀ with k > r "
        "rebalanced once (dotted line: the switch). First seed bold."
    )
    parameters = common.PARAMS + PARAMS
    runs = (R5_RUNS,)
    stem = "r5_symmetry_l1"
    criteria = SymmetryCriteria()

    def measure(self, runs, settings) -> Measurement:
        s = settings
        a, switch = s.r5_alpha, min(s.r5_switch, s.r5_iters)
        records = []
        for sr in runs:
            r = sr.get("r5_symmetry")
            rec = {"seed": sr.seed, "status": {lab: r[lab].status(a) for lab in LABELS}}
            for lab in LABELS:
                t, err = _best(sr, lab, a, switch)
                rec[lab] = {
                    "final_rel_error": common.final(r[lab], a),
                    "fit": fit_dict(linear_rate(t, err, window=s.r5_window)),
                }
                rec[lab]["rate"] = rec[lab]["fit"]["value"]
            t, err = _best(sr, "xxt", a, switch)
            rec["xxt"]["slope"] = power_law(t, err, tail=s.r5_tail).value
            rec["fgt_over_xxt"] = rec["fgt"]["final_rel_error"] / rec["xxt"]["final_rel_error"]
            rec["fix_ratio"] = rec["rebalanced"]["rate"] / rec["exact"]["rate"]
            records.append(rec)
        details: dict = {
            lab: {
                key: spread([rec[lab][key] for rec in records])
                for key in ("final_rel_error", "rate")
            }
            for lab in LABELS
        }
        details["xxt"]["slope"] = spread([rec["xxt"]["slope"] for rec in records])
        for key in ("fgt_over_xxt", "fix_ratio"):
            details[key] = spread([rec[key] for rec in records])
        e = "{:.1e}"
        measured = (
            f"final rel. error X Xᵀ {fmt_spread(details['xxt']['final_rel_error'], e)} "
            f"(tail slope {fmt_spread(details['xxt']['slope'])}), F Gᵀ "
            f"{fmt_spread(details['fgt']['final_rel_error'], e)} (rate "
            f"{fmt_spread(details['fgt']['rate'])}); rebalanced rate "
            f"{fmt_spread(details['rebalanced']['rate'])} = ×"
            f"{fmt_spread(details['fix_ratio'])} the k = r rate "
            f"{fmt_spread(details['exact']['rate'])}"
        )
        c = self.criteria
        expected = (
            f"F Gᵀ ≤ {c.max_fgt_over_xxt:g} × X Xᵀ (the ℓ2 curse); rebalanced ≥ "
            f"{c.min_fix_ratio:g} × the k = r rate"
        )
        details.update(
            iterations=s.r5_iters, switch=switch, window=list(s.r5_window), k=s.k, records=records
        )
        return Measurement(records, measured, expected, details)

    def judge(self, m, settings) -> Verdict:
        c = self.criteria
        v = Verdict(c.min_r2)
        for rec in m.records:
            where = f"seed {rec['seed']}"
            if any([v.diverged(st, f"{where}, {lab}") for lab, st in rec["status"].items()]):
                continue
            ratio = rec["fgt_over_xxt"]
            v.require(
                ratio <= c.max_fgt_over_xxt,
                f"{where}: F Gᵀ / X Xᵀ final error {fmt_num(ratio)} > {c.max_fgt_over_xxt:g}",
            )
            if v.fit(rec["rebalanced"]["fit"], f"{where}, rebalanced", "linear fit") and v.fit(
                rec["exact"]["fit"], f"{where}, k = r", "linear fit"
            ):
                v.require(
                    rec["fix_ratio"] >= c.min_fix_ratio,
                    f"{where}: rebalanced rate {fmt_num(rec['fix_ratio'])} × the k = r "
                    f"rate (< {c.min_fix_ratio:g})",
                )
        return v

    def panels(self, m, runs, settings) -> list:
        s = settings
        a, switch = s.r5_alpha, min(s.r5_switch, s.r5_iters)
        names = {
            "xxt": f"X Xᵀ, k = {s.k}",
            "fgt": f"F Gᵀ, k = {s.k}",
            "exact": f"F Gᵀ, k = r = {s.r}",
            "rebalanced": f"F Gᵀ, k = {s.k}, rebalanced",
        }
        curves = []
        for i, lab in enumerate(LABELS):
            xs, ys = zip(*(_curve(sr, lab, a, switch) for sr in runs))
            curves += plots.seeded_curves(xs, ys, label=names[lab], color=plots.color(i))
        return [
            plots.Panel(
                f"PSD problem, p_s = {s.robust_fraction:g}, Polyak steps",
                "iteration t",
                "relative error",
                curves=curves,
                vlines=[plots.VLine(switch, "switch")],
                note=f"F Gᵀ / X Xᵀ (median) {fmt_num(m.details['fgt_over_xxt']['median'])}",
            )
        ]


R5 = SymmetryClaim()
