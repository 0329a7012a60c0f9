"""R4 (Tong, Ma & Chi): ScaledSM's linear rate does not depend on the condition number κ;
plain SubGM's (the Polyak step, unscaled) slows down as κ grows.

For each κ of ``r4_kappas`` the family's general problem with σ from σ₁ to σ₁/κ (the same
seed), outliers on a fraction ``robust_fraction``; both methods with their Polyak step on
F Gᵀ with k = r from the trimmed spectral start, as in the ScaledSM code.
"""

from __future__ import annotations

from dataclasses import dataclass

from .... import init as _init
from .... import plots
from ....rates import linear_rate
from ...declare import Param, RunSpec, fit_window, positive_int, positive_values
from ...results import fmt_num, fmt_spread, spread
from ...runs import LabeledRun
from ..base import MIN_R2, Claim, Measurement, Verdict, fit_dict
from . import common

PARAMS = (
    Param(
        "r4_kappas", (1.0, 10.0, 100.0), "tuple", "condition numbers κ of R4", check=positive_values
    ),
    Param("r4_iters", 600, "int", "iterations of R4's runs", quick=300, check=positive_int),
    Param(
        "r4_window",
        (0.5, 1e-10),
        "tuple",
        "linear-fit window of R4 (error relative to the start)",
        check=fit_window,
    ),
)
METHODS = ("scaledsm", "subgm")


def _build(sr):
    from ....methods.scaledsm import ScaledSM

    s = sr.settings
    out = {}
    for kappa in s.r4_kappas:
        p = common.outlier_problem(sr, False, s.robust_fraction, s.with_kappa(kappa))
        start = tuple(f[None] for f in _init.spectral_trimmed(p, s.r))  # a batch of one
        for name, method in (("scaledsm", ScaledSM()), ("subgm", common.subgm("polyak"))):
            out[name, kappa] = LabeledRun(
                sr.gd(p, start, s.r4_iters, method=method, tol=1e-13), [kappa]
            )
    return out


R4_RUNS = RunSpec(
    "r4_kappa",
    _build,
    "r4_iters",
    "ScaledSM and SubGM (Polyak) on F Gᵀ, k = r, every κ of r4_kappas",
)


@dataclass(frozen=True)
class KappaCriteria:
    """Per seed: ScaledSM's rates (linear fits, r² ≥ ``min_r2``) within a factor
    ``max_spread`` of each other over κ; SubGM's rate at the largest κ ≤ ``max_slowdown`` ×
    its rate at the smallest."""

    min_r2: float = MIN_R2
    max_spread: float = 1.5
    max_slowdown: float = 0.5


class KappaClaim(Claim):
    id = "R4"
    suite = "robust"
    title = "ScaledSM's rate does not depend on κ, plain SubGM's does"
    caption = (
        "F Gᵀ with k = r from the trimmed spectral start under outliers, Polyak steps: "
        "relative error vs iteration for ScaledSM (solid) and SubGM (dashed), one colour "
        "per condition number κ (first seed bold)."
    )
    parameters = common.PARAMS + PARAMS
    runs = (R4_RUNS,)
    stem = "r4_kappa"
    criteria = KappaCriteria()

    def measure(self, runs, settings) -> Measurement:
        s = settings
        records = []
        for sr in runs:
            r = sr.get("r4_kappa")
            for name in METHODS:
                for kappa in s.r4_kappas:
                    t, err = common.best_so_far(*r[name, kappa].curve(kappa))
                    fit = linear_rate(t, err, window=s.r4_window)
                    records.append(
                        {
                            "seed": sr.seed,
                            "method": name,
                            "kappa": kappa,
                            "status": r[name, kappa].status(kappa),
                            "rate": fit.value,
                            "fit": fit_dict(fit),
                            "final_rel_error": common.final(r[name, kappa], kappa),
                        }
                    )
        rates = {
            name: {
                f"{kappa:g}": spread(
                    [x["rate"] for x in records if x["method"] == name and x["kappa"] == kappa]
                )
                for kappa in s.r4_kappas
            }
            for name in METHODS
        }
        measured = "; ".join(
            f"{name} rate " + ", ".join(f"κ={k}: {fmt_spread(v)}" for k, v in rates[name].items())
            for name in METHODS
        )
        c = self.criteria
        expected = (
            f"ScaledSM: equal rates over κ (within ×{c.max_spread:g}); SubGM: rate at "
            f"κ = {max(s.r4_kappas):g} ≤ {c.max_slowdown:g} × at κ = "
            f"{min(s.r4_kappas):g}"
        )
        details = {
            "rate": rates,
            "iterations": s.r4_iters,
            "window": list(s.r4_window),
            "records": records,
        }
        return Measurement(records, measured, expected, details)

    def judge(self, m, settings) -> Verdict:
        c = self.criteria
        v = Verdict(c.min_r2)
        lo, hi = min(settings.r4_kappas), max(settings.r4_kappas)
        for seed in dict.fromkeys(r["seed"] for r in m.records):
            mine = {(r["method"], r["kappa"]): r for r in m.records if r["seed"] == seed}
            scaled = []
            for (name, kappa), rec in mine.items():
                where = f"seed {seed}, {name}, κ = {kappa:g}"
                if (
                    not v.diverged(rec["status"], where)
                    and name == "scaledsm"
                    and v.fit(rec["fit"], where, "linear fit")
                ):
                    scaled.append(rec["rate"])
            if len(scaled) == len(settings.r4_kappas):
                v.require(
                    max(scaled) <= c.max_spread * min(scaled),
                    f"seed {seed}: ScaledSM rates {[round(x, 4) for x in scaled]} differ by "
                    f"more than ×{c.max_spread:g}",
                )
            slow = mine["subgm", hi]["rate"] / mine["subgm", lo]["rate"]
            v.require(
                slow <= c.max_slowdown,
                f"seed {seed}: SubGM rate at κ = {hi:g} is {fmt_num(slow)} × its rate at "
                f"κ = {lo:g} (> {c.max_slowdown:g})",
            )
        return v

    def panels(self, m, runs, settings) -> list:
        s = settings
        curves = []
        for name, ls in (("scaledsm", "-"), ("subgm", "--")):
            for i, kappa in enumerate(s.r4_kappas):
                xs, ys = zip(
                    *(sr.get("r4_kappa")[name, kappa].curve(kappa, "rel_error") for sr in runs)
                )
                curves += plots.seeded_curves(
                    xs, ys, label=f"{name}, κ = {kappa:g}", color=plots.color(i), linestyle=ls
                )
        return [
            plots.Panel(
                f"F Gᵀ, k = r = {s.r}, p_s = {s.robust_fraction:g}",
                "iteration t",
                "relative error",
                curves=curves,
            )
        ]


R4 = KappaClaim()
