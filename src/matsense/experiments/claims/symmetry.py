"""C5 and C6, the curse of symmetry: on a PSD problem F Gᵀ from an imbalanced small start is
exponentially faster than X Xᵀ (C5), and a balanced start G₀ = F₀ loses that speed-up (C6).

Both read the same two runs of a seed (:func:`symmetric_problem_curves`): the three F Gᵀ starts
of ``asym_on_sym`` and the X Xᵀ run of C2 at α = ``c5_alpha`` (X₀ = the balanced F₀).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import plots
from ...rates import linear_rate, power_law
from ..results import fmt_num, fmt_spread, spread
from ..runs import ASYM_ON_SYM_LABELS
from .base import MIN_R2, Claim, Measurement, Verdict, fit_dict, seed_curves, value_at, within, within_factor
from .sublinear import isotropic_prediction


@dataclass
class SymmetricProblemCurves:
    """One seed's curves on the PSD problem: the F Gᵀ starts by label, and X Xᵀ (up to T)."""

    seed: int
    asym: object        # LabeledRun of asym_on_sym
    xxt_t: np.ndarray
    xxt_err: np.ndarray
    xxt_status: str


def symmetric_problem_curves(sr, settings) -> SymmetricProblemCurves:
    """The shared setup of C5 and C6 for one seed."""
    t, err = sr.get("sym_over").curve(settings.c5_alpha)
    return SymmetricProblemCurves(sr.seed, sr.get("asym_on_sym"), t, err,
                                  sr.get("sym_over").status(settings.c5_alpha))


def _xxt_curves(runs, settings):
    """X Xᵀ curves per seed, cut at the horizon T of C5/C6."""
    T = settings.c5_iters
    xs, ys = [], []
    for sr in runs:
        c = symmetric_problem_curves(sr, settings)
        xs.append(c.xxt_t[c.xxt_t <= T])
        ys.append(c.xxt_err[c.xxt_t <= T])
    return xs, ys


# ---------------------------------------------------------------------- C5
@dataclass(frozen=True)
class AsymmetricSpeedupCriteria:
    """F Gᵀ linear (r² ≥ ``min_r2``), X Xᵀ exponent in ``sym_slope`` ± ``sym_slope_tol``,
    and X Xᵀ's error ≥ ``min_error_ratio`` × F Gᵀ's at T ("exponentially faster")."""

    min_r2: float = MIN_R2
    sym_slope: float = -1.0
    sym_slope_tol: float = 0.15
    min_error_ratio: float = 1e4


class AsymmetricSpeedupClaim(Claim):
    id = "C5"
    title = "F Gᵀ on a PSD problem is exponentially faster than X Xᵀ"
    caption = ("The same PSD problem solved with F Gᵀ (imbalanced small init) and with X Xᵀ: "
               "linear vs 1/t.")
    runs = ("sym_over", "asym_on_sym")
    stem = "c5_asymmetric_vs_symmetric"
    criteria = AsymmetricSpeedupCriteria()

    def measure(self, runs, settings) -> Measurement:
        s = settings
        T = s.c5_iters
        records = []
        for sr in runs:
            c = symmetric_problem_curves(sr, s)
            ta, ea = c.asym.curve("small_random")
            ts, es = c.xxt_t, c.xxt_err
            keep = ts <= T
            fit_a = linear_rate(ta, ea, window=s.exact_window)
            fit_s = power_law(ts[keep], es[keep], tail=s.c2_tail)
            err_a, err_s = value_at(ta, ea, T), value_at(ts, es, T)
            ratio = err_s / err_a if err_a > 0 else math.nan
            records.append({"seed": sr.seed, "status_asym": c.asym.status("small_random"),
                            "status_sym": c.xxt_status, "asym_rate": fit_a.value,
                            "asym_fit": fit_dict(fit_a), "sym_slope": fit_s.value,
                            "sym_fit": fit_dict(fit_s), "asym_error_T": err_a, "sym_error_T": err_s,
                            "error_ratio_T": ratio, "T": T})
        cr = self.criteria
        rate = spread([r["asym_rate"] for r in records])
        slope = spread([r["sym_slope"] for r in records])
        ratio = spread([r["error_ratio_T"] for r in records])
        measured = (f"F Gᵀ rate {fmt_spread(rate)}; X Xᵀ slope {fmt_spread(slope)}; "
                    f"error ratio X Xᵀ / F Gᵀ at t = {T}: {fmt_spread(ratio, '{:.1e}')}")
        expected = (f"F Gᵀ linear, X Xᵀ slope {cr.sym_slope:g} ± {cr.sym_slope_tol:g}; "
                    f"ratio ≥ {cr.min_error_ratio:g}")
        details = {"asym_rate": rate, "sym_slope": slope, "error_ratio": ratio, "T": T,
                   "alpha": s.c5_alpha, "window": list(s.exact_window), "tail": s.c2_tail,
                   "records": records}
        return Measurement(records, measured, expected, details)

    def judge(self, m, settings) -> Verdict:
        c = self.criteria
        v = Verdict(c.min_r2)
        for rec in m.records:
            where = f"seed {rec['seed']}"
            bad = (v.diverged(rec["status_asym"], where + ", F Gᵀ")
                   | v.diverged(rec["status_sym"], where + ", X Xᵀ"))
            if bad:
                continue
            v.fit(rec["asym_fit"], where + ", F Gᵀ", "linear fit")
            if v.fit(rec["sym_fit"], where + ", X Xᵀ", "power-law fit"):
                v.require(within(rec["sym_slope"], c.sym_slope, c.sym_slope_tol),
                          f"{where}: X Xᵀ slope {rec['sym_slope']:.3f} outside "
                          f"{c.sym_slope:g} ± {c.sym_slope_tol:g}")
            ratio = rec["error_ratio_T"]
            v.require(np.isfinite(ratio) and ratio >= c.min_error_ratio,
                      f"{where}: X Xᵀ / F Gᵀ error at t={rec['T']} is {fmt_num(ratio, '{:.2g}')} "
                      f"< {c.min_error_ratio:g}")
        return v

    def panels(self, m, runs, settings) -> list:
        s = settings
        T = s.c5_iters
        curves = (plots.seeded_curves(*seed_curves(runs, "asym_on_sym", "small_random"),
                                      label="F Gᵀ (G₀ at scale α/3)", color=plots.color(0))
                  + plots.seeded_curves(*_xxt_curves(runs, s), label="X Xᵀ", color=plots.color(1)))
        tt = np.linspace(max(T / 20, 1), T, 40)
        curves.append(plots.Curve(tt, isotropic_prediction(tt, s.k, s.r, s.eta), color="k",
                                  label="√(k−r)/(2ηt)", linestyle="--", linewidth=1.0))
        ratio = m.details["error_ratio"]
        return [plots.Panel(f"same PSD problem, k = {s.k}, α = {s.c5_alpha:g}, η = {s.eta:g}",
                            "iteration t", "error ‖P_t − M*‖_F", curves=curves,
                            note=f"error ratio at t = {T}: {fmt_num(ratio['median'], '{:.1e}')}")]


# ---------------------------------------------------------------------- C6
@dataclass(frozen=True)
class BalancedCurseCriteria:
    """Balanced start: power law with exponent in ``slope`` ± ``slope_tol`` and error within a
    factor ``like_xxt_factor`` of X Xᵀ's at T; imbalanced G₀ = F₀/3: linear and at least
    ``min_error_ratio`` × smaller than the balanced error at T."""

    min_r2: float = MIN_R2
    slope: float = -1.0
    slope_tol: float = 0.3
    like_xxt_factor: float = 2.0
    min_error_ratio: float = 1e4


class BalancedCurseClaim(Claim):
    id = "C6"
    title = "balanced init G₀ = F₀ loses the speed-up"
    caption = ("F Gᵀ on the PSD problem from a balanced start G₀ = F₀ (sublinear, close to X Xᵀ from "
               "X₀ = F₀) and from G₀ = F₀/3 (linear). Right: the balanced and X Xᵀ curves on log-log "
               "axes.")
    runs = ("sym_over", "asym_on_sym")
    stem = "c6_balanced_vs_imbalanced"
    criteria = BalancedCurseCriteria()

    def measure(self, runs, settings) -> Measurement:
        s = settings
        T = s.c5_iters
        records = []
        for sr in runs:
            c = symmetric_problem_curves(sr, s)
            tb, eb = c.asym.curve("balanced")
            ti, ei = c.asym.curve("imbalanced")
            ts, es = c.xxt_t, c.xxt_err
            fit_b = power_law(tb, eb, tail=s.c6_tail)
            fit_i = linear_rate(ti, ei, window=s.exact_window)
            err_b, err_i, err_s = (value_at(t, e, T) for t, e in ((tb, eb), (ti, ei), (ts, es)))
            like_ratio = err_b / err_s if err_s > 0 else math.nan
            gap = err_b / err_i if err_i > 0 else math.nan
            records.append({"seed": sr.seed, "status_balanced": c.asym.status("balanced"),
                            "status_imbalanced": c.asym.status("imbalanced"),
                            "status_xxt": c.xxt_status, "balanced_slope": fit_b.value,
                            "balanced_fit": fit_dict(fit_b), "imbalanced_rate": fit_i.value,
                            "imbalanced_fit": fit_dict(fit_i), "balanced_error_T": err_b,
                            "imbalanced_error_T": err_i, "xxt_error_T": err_s,
                            "balanced_over_xxt": like_ratio, "balanced_over_imbalanced": gap,
                            "T": T})
        cr = self.criteria
        slope = spread([r["balanced_slope"] for r in records])
        like_s = spread([r["balanced_over_xxt"] for r in records])
        rate = spread([r["imbalanced_rate"] for r in records])
        gap = spread([r["balanced_over_imbalanced"] for r in records])
        measured = (f"balanced: slope {fmt_spread(slope)}, error ×{fmt_spread(like_s)} of X Xᵀ; "
                    f"G₀ = F₀/3: rate {fmt_spread(rate)}, {fmt_spread(gap, '{:.1e}')}× smaller "
                    f"at t = {T}")
        expected = (f"balanced slope {cr.slope:g} ± {cr.slope_tol:g} and within "
                    f"×{cr.like_xxt_factor:g} of X Xᵀ; imbalanced linear, "
                    f"≥ {cr.min_error_ratio:g}× smaller")
        details = {"balanced_slope": slope, "balanced_over_xxt": like_s, "imbalanced_rate": rate,
                   "balanced_over_imbalanced": gap, "T": T, "alpha": s.c5_alpha,
                   "tail": s.c6_tail, "window": list(s.exact_window), "records": records}
        return Measurement(records, measured, expected, details)

    def judge(self, m, settings) -> Verdict:
        c = self.criteria
        v = Verdict(c.min_r2)
        names = ("balanced", "G₀ = F₀/3", "X Xᵀ")
        for rec in m.records:
            where = f"seed {rec['seed']}"
            sts = (rec["status_balanced"], rec["status_imbalanced"], rec["status_xxt"])
            if any([v.diverged(st, f"{where}, {nm}") for st, nm in zip(sts, names)]):
                continue
            if v.fit(rec["balanced_fit"], where + ", balanced", "power-law fit"):
                v.require(within(rec["balanced_slope"], c.slope, c.slope_tol),
                          f"{where}: balanced slope {rec['balanced_slope']:.3f} outside "
                          f"{c.slope:g} ± {c.slope_tol:g}")
            like = c.like_xxt_factor
            v.require(within_factor(rec["balanced_over_xxt"], like),
                      f"{where}: balanced / X Xᵀ error {fmt_num(rec['balanced_over_xxt'])} outside "
                      f"[1/{like:g}, {like:g}]")
            v.fit(rec["imbalanced_fit"], where + ", G₀ = F₀/3", "linear fit")
            gap = rec["balanced_over_imbalanced"]
            v.require(np.isfinite(gap) and gap >= c.min_error_ratio,
                      f"{where}: balanced / imbalanced error at t={rec['T']} is "
                      f"{fmt_num(gap, '{:.2g}')} < {c.min_error_ratio:g}")
        return v

    def panels(self, m, runs, settings) -> list:
        s = settings
        T = s.c5_iters
        bal = plots.seeded_curves(*seed_curves(runs, "asym_on_sym", "balanced"),
                                  label="F Gᵀ, balanced G₀ = F₀", color=plots.color(1))
        imb = plots.seeded_curves(*seed_curves(runs, "asym_on_sym", "imbalanced"),
                                  label="F Gᵀ, G₀ = F₀/3", color=plots.color(0))
        xxt = plots.seeded_curves(*_xxt_curves(runs, s), label="X Xᵀ (X₀ = F₀)", color="0.35",
                                  linestyle="--")
        p1 = plots.Panel(f"PSD problem, k = {s.k}, α = {s.c5_alpha:g}, η = {s.eta:g}", "iteration t",
                         "error ‖P_t − M*‖_F", curves=bal + imb + xxt)
        tt = np.geomspace(10, T, 40)
        p2 = plots.Panel("balanced vs X Xᵀ (log-log)", "iteration t (log)", "error ‖P_t − M*‖_F",
                         curves=bal + xxt + [plots.Curve(tt, isotropic_prediction(tt, s.k, s.r, s.eta),
                                                         label="√(k−r)/(2ηt)", color="k",
                                                         linestyle=":", linewidth=1.0)],
                         xscale="log",
                         note=f"balanced tail slope (median) "
                              f"{fmt_num(m.details['balanced_slope']['median'])}")
        return [p1, p2]


C5 = AsymmetricSpeedupClaim()
C6 = BalancedCurseClaim()

__all__ = ["C5", "C6", "symmetric_problem_curves", "ASYM_ON_SYM_LABELS"]
