"""C5 and C6, the curse of symmetry: on a PSD problem F Gᵀ from an imbalanced small start is
exponentially faster than X Xᵀ (C5), and a balanced start G₀ = F₀ loses that speed-up (C6).

Both read the same two runs of a seed (:func:`symmetric_problem_curves`): the three F Gᵀ starts
of ``asym_on_sym`` and the X Xᵀ run of C2 at α = ``c5_alpha`` (X₀ = the balanced F₀); those
runs and the parameters of both claims live in ``claims/symmetry_runs.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import plots
from ...rates import linear_rate, power_law
from ..results import fmt_num, fmt_spread, spread
from .base import (
    MIN_R2,
    Claim,
    Measurement,
    Verdict,
    fit_dict,
    seed_curves,
    value_at,
    within,
    within_factor,
)
from .sublinear import isotropic_prediction
from .symmetry_runs import (
    ASYM_ON_SYM,
    ASYM_ON_SYM_LABELS,
    PARAMS,
    asym_on_sym_inits,
    symmetric_problem_curves,
    xxt_curves,
)


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
    caption = (
        "The same PSD problem solved with F Gᵀ (imbalanced small init) and with X Xᵀ: "
        "linear vs 1/t."
    )
    runs = ("sym_over", ASYM_ON_SYM)  # C2's X Xᵀ run, by name
    parameters = PARAMS
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
            records.append(
                {
                    "seed": sr.seed,
                    "status_asym": c.asym.status("small_random"),
                    "status_sym": c.xxt_status,
                    "asym_rate": fit_a.value,
                    "asym_fit": fit_dict(fit_a),
                    "sym_slope": fit_s.value,
                    "sym_fit": fit_dict(fit_s),
                    "asym_error_T": err_a,
                    "sym_error_T": err_s,
                    "error_ratio_T": ratio,
                    "T": T,
                }
            )
        cr = self.criteria
        rate = spread([r["asym_rate"] for r in records])
        slope = spread([r["sym_slope"] for r in records])
        ratio = spread([r["error_ratio_T"] for r in records])
        measured = (
            f"F Gᵀ rate {fmt_spread(rate)}; X Xᵀ slope {fmt_spread(slope)}; "
            f"error ratio X Xᵀ / F Gᵀ at t = {T}: {fmt_spread(ratio, '{:.1e}')}"
        )
        expected = (
            f"F Gᵀ linear, X Xᵀ slope {cr.sym_slope:g} ± {cr.sym_slope_tol:g}; "
            f"ratio ≥ {cr.min_error_ratio:g}"
        )
        details = {
            "asym_rate": rate,
            "sym_slope": slope,
            "error_ratio": ratio,
            "T": T,
            "alpha": s.c5_alpha,
            "window": list(s.exact_window),
            "tail": s.c2_tail,
            "records": records,
        }
        return Measurement(records, measured, expected, details)

    def judge(self, m, settings) -> Verdict:
        c = self.criteria
        v = Verdict(c.min_r2)
        for rec in m.records:
            where = f"seed {rec['seed']}"
            bad = v.diverged(rec["status_asym"], where + ", F Gᵀ") | v.diverged(
                rec["status_sym"], where + ", X Xᵀ"
            )
            if bad:
                continue
            v.fit(rec["asym_fit"], where + ", F Gᵀ", "linear fit")
            if v.fit(rec["sym_fit"], where + ", X Xᵀ", "power-law fit"):
                v.require(
                    within(rec["sym_slope"], c.sym_slope, c.sym_slope_tol),
                    f"{where}: X Xᵀ slope {rec['sym_slope']:.3f} outside "
                    f"{c.sym_slope:g} ± {c.sym_slope_tol:g}",
                )
            ratio = rec["error_ratio_T"]
            v.require(
                np.isfinite(ratio) and ratio >= c.min_error_ratio,
                f"{where}: X Xᵀ / F Gᵀ error at t={rec['T']} is {fmt_num(ratio, '{:.2g}')} "
                f"< {c.min_error_ratio:g}",
            )
        return v

    def panels(self, m, runs, settings) -> list:
        s = settings
        T = s.c5_iters
        curves = plots.seeded_curves(
            *seed_curves(runs, "asym_on_sym", "small_random"),
            label="F Gᵀ (G₀ at scale α/3)",
            color=plots.color(0),
        ) + plots.seeded_curves(*xxt_curves(runs, s), label="X Xᵀ", color=plots.color(1))
        tt = np.linspace(max(T / 20, 1), T, 40)
        curves.append(
            plots.Curve(
                tt,
                isotropic_prediction(tt, s.k, s.r, s.eta),
                color="k",
                label="√(k−r)/(2ηt)",
                linestyle="--",
                linewidth=1.0,
            )
        )
        ratio = m.details["error_ratio"]
        return [
            plots.Panel(
                f"same PSD problem, k = {s.k}, α = {s.c5_alpha:g}, η = {s.eta:g}",
                "iteration t",
                "error ‖P_t − M*‖_F",
                curves=curves,
                note=f"error ratio at t = {T}: {fmt_num(ratio['median'], '{:.1e}')}",
            )
        ]


# ---------------------------------------------------------------------- C6
def speedup_onset(iterations, redundant_imbalance, eta: float):
    """Predicted start of the balanced run's speed-up: the first checkpoint t with
    η·t·δ(t) ≥ 1, δ the generated imbalance on the redundant directions (None: not seen).

    On a redundant direction with imbalance δ the product decays like 1/(2ηt)
    until it is about δ/2, then linearly at rate ≈ ηδ: the 1/t law gives way
    once 1/(ηt) falls below δ (see docs/claims.md).
    """
    t = np.asarray(iterations, dtype=float)
    hit = np.flatnonzero(eta * t * np.asarray(redundant_imbalance, dtype=float) >= 1.0)
    return float(t[hit[0]]) if hit.size else None


def _departure(tb, eb, ts, es, factor: float):
    """First iteration at which the balanced error is below 1/factor of X Xᵀ's (None: never)."""
    if tb.size == 0 or ts.size == 0:
        return None
    xxt = np.exp(np.interp(tb, ts, np.log(es)))
    below = np.flatnonzero(eb < xxt / factor)
    return float(tb[below[0]]) if below.size else None


@dataclass(frozen=True)
class BalancedCurseCriteria:
    """Until the generated imbalance takes over (the predicted onset, or T): the balanced start
    follows a power law with exponent in ``slope`` ± ``slope_tol`` and stays within a factor
    ``like_xxt_factor`` of X Xᵀ at every record of the fit window, a window that begins
    after the signal is fitted (≥ ``min_window_escapes`` × the predicted escape time); the
    imbalanced start G₀ = ratio·F₀ is linear and ≥ ``min_error_ratio`` × smaller at T."""

    min_r2: float = MIN_R2
    slope: float = -1.0
    slope_tol: float = 0.3
    like_xxt_factor: float = 2.0
    min_error_ratio: float = 1e4
    min_window_escapes: float = 10.0


class BalancedCurseClaim(Claim):
    id = "C6"
    title = "balanced init G₀ = F₀ is as slow as X Xᵀ until GD's own imbalance takes over"
    caption = (
        "F Gᵀ on the PSD problem from a balanced start G₀ = F₀ (sublinear, close to X Xᵀ from "
        "X₀ = F₀) and from G₀ = F₀/3 (linear). With non-symmetric measurement matrices GD "
        "itself creates imbalance (C8); the dotted line marks where it is predicted to take "
        "over (η·t·δ(t) = 1, δ the generated imbalance on the redundant directions). Right: "
        "the balanced and X Xᵀ curves on log-log axes."
    )
    runs = ("sym_over", ASYM_ON_SYM)  # C2's X Xᵀ run, by name
    parameters = PARAMS
    stem = "c6_balanced_vs_imbalanced"
    criteria = BalancedCurseCriteria()

    def measure(self, runs, settings) -> Measurement:
        from ..predict import escape_iters

        s = settings
        T = s.c5_iters
        cr = self.criteria
        escape = escape_iters(s, s.c5_alpha)
        records = [_balanced_record(sr, s, cr.like_xxt_factor) for sr in runs]
        details = {
            "balanced_slope": spread([r["balanced_slope"] for r in records]),
            "balanced_over_xxt_min": spread([r["balanced_over_xxt_min"] for r in records]),
            "balanced_over_xxt_max": spread([r["balanced_over_xxt_max"] for r in records]),
            "imbalanced_rate": spread([r["imbalanced_rate"] for r in records]),
            "balanced_over_imbalanced": spread([r["balanced_over_imbalanced"] for r in records]),
            "window_end": spread([r["window"][1] for r in records]),
            "T": T,
            "alpha": s.c5_alpha,
            "tail": s.c6_tail,
            "window": list(s.exact_window),
            "escape_iterations": escape,
            "records": records,
        }
        expected = (
            f"until the generated imbalance takes over: balanced slope {cr.slope:g} ± "
            f"{cr.slope_tol:g}, within ×{cr.like_xxt_factor:g} of X Xᵀ; imbalanced linear, "
            f"≥ {cr.min_error_ratio:g}× smaller"
        )
        return Measurement(records, _balanced_measured(details, records, T), expected, details)

    def judge(self, m, settings) -> Verdict:
        c = self.criteria
        v = Verdict(c.min_r2)
        names = ("balanced", "G₀ = F₀/3", "X Xᵀ")
        escape = m.details["escape_iterations"]
        for rec in m.records:
            where = f"seed {rec['seed']}"
            sts = (rec["status_balanced"], rec["status_imbalanced"], rec["status_xxt"])
            if any([v.diverged(st, f"{where}, {nm}") for st, nm in zip(sts, names)]):
                continue
            t0, t1 = rec["window"]
            v.require(
                t0 >= c.min_window_escapes * escape,
                f"{where}: the generated imbalance takes over at t ≈ {t1:.0f}, before the "
                f"1/t phase (window must start after {c.min_window_escapes:g} × {escape:.0f})",
            )
            if v.fit(rec["balanced_fit"], where + ", balanced", "power-law fit"):
                v.require(
                    within(rec["balanced_slope"], c.slope, c.slope_tol),
                    f"{where}: balanced slope {rec['balanced_slope']:.3f} outside "
                    f"{c.slope:g} ± {c.slope_tol:g} on t ∈ [{t0:.0f}, {t1:.0f}]",
                )
            like = c.like_xxt_factor
            lo, hi = rec["balanced_over_xxt_min"], rec["balanced_over_xxt_max"]
            v.require(
                within_factor(lo, like) and within_factor(hi, like),
                f"{where}: balanced / X Xᵀ error {fmt_num(lo)}–{fmt_num(hi)} on t ∈ "
                f"[{t0:.0f}, {t1:.0f}] outside [1/{like:g}, {like:g}]",
            )
            v.fit(rec["imbalanced_fit"], where + ", G₀ = F₀/3", "linear fit")
            gap = rec["balanced_over_imbalanced"]
            v.require(
                np.isfinite(gap) and gap >= c.min_error_ratio,
                f"{where}: balanced / imbalanced error at t={rec['T']} is "
                f"{fmt_num(gap, '{:.2g}')} < {c.min_error_ratio:g}",
            )
        return v

    def panels(self, m, runs, settings) -> list:
        s = settings
        T = s.c5_iters
        bal = plots.seeded_curves(
            *seed_curves(runs, "asym_on_sym", "balanced"),
            label="F Gᵀ, balanced G₀ = F₀",
            color=plots.color(1),
        )
        imb = plots.seeded_curves(
            *seed_curves(runs, "asym_on_sym", "imbalanced"),
            label="F Gᵀ, G₀ = F₀/3",
            color=plots.color(0),
        )
        xxt = plots.seeded_curves(
            *xxt_curves(runs, s), label="X Xᵀ (X₀ = F₀)", color="0.35", linestyle="--"
        )
        vlines = _onset_vlines(m.records[0] if m.records else {})
        p1 = plots.Panel(
            f"PSD problem, k = {s.k}, α = {s.c5_alpha:g}, η = {s.eta:g}",
            "iteration t",
            "error ‖P_t − M*‖_F",
            curves=bal + imb + xxt,
        )
        tt = np.geomspace(10, T, 40)
        p2 = plots.Panel(
            "balanced vs X Xᵀ (log-log)",
            "iteration t (log)",
            "error ‖P_t − M*‖_F",
            curves=bal
            + xxt
            + [
                plots.Curve(
                    tt,
                    isotropic_prediction(tt, s.k, s.r, s.eta),
                    label="√(k−r)/(2ηt)",
                    color="k",
                    linestyle=":",
                    linewidth=1.0,
                )
            ],
            vlines=vlines,
            xscale="log",
            note=f"balanced slope before the speed-up (median) "
            f"{fmt_num(m.details['balanced_slope']['median'])}",
        )
        return [p1, p2]


def _balanced_record(sr, s, like_xxt_factor: float) -> dict:
    """One seed's C6 record: the balanced start's power law up to the predicted onset (or T) and
    its ratio to X Xᵀ there, the imbalanced start's linear rate, and both errors at T."""
    T = s.c5_iters
    c = symmetric_problem_curves(sr, s)
    tb, eb = c.asym.curve("balanced")
    ti, ei = c.asym.curve("imbalanced")
    ts, es = c.xxt_t, c.xxt_err
    ck = c.asym.checkpoints.get("balanced", {})
    onset = speedup_onset(ck.get("iteration", []), ck.get("redundant_imbalance", []), s.eta)
    t_end = float(min(T, onset)) if onset is not None else float(T)
    sel = tb <= t_end
    fit_b = power_law(tb[sel], eb[sel], tail=s.c6_tail)
    win = sel & (tb >= s.c6_tail * t_end)
    xxt_at = np.exp(np.interp(tb[win], ts, np.log(es))) if ts.size else np.full(win.sum(), np.nan)
    ratios = eb[win] / xxt_at
    err_b, err_i = value_at(tb, eb, T), value_at(ti, ei, T)
    fit_i = linear_rate(ti, ei, window=s.exact_window)
    gap = err_b / err_i if err_i > 0 else math.nan
    return {
        "seed": sr.seed,
        "status_balanced": c.asym.status("balanced"),
        "status_imbalanced": c.asym.status("imbalanced"),
        "status_xxt": c.xxt_status,
        "predicted_onset": onset,
        "window": [s.c6_tail * t_end, t_end],
        "departure": _departure(tb, eb, ts, es, like_xxt_factor),
        "balanced_slope": fit_b.value,
        "balanced_fit": fit_dict(fit_b),
        "balanced_over_xxt_min": float(ratios.min()) if ratios.size else math.nan,
        "balanced_over_xxt_max": float(ratios.max()) if ratios.size else math.nan,
        "imbalanced_rate": fit_i.value,
        "imbalanced_fit": fit_dict(fit_i),
        "balanced_error_T": err_b,
        "imbalanced_error_T": err_i,
        "balanced_over_imbalanced": gap,
        "T": T,
        "final_redundant_imbalance": (
            float(ck["redundant_imbalance"][-1])
            if len(ck.get("redundant_imbalance", []))
            else math.nan
        ),
    }


def _balanced_measured(d, records, T) -> str:
    """The one-line summary of C6's details ``d``."""
    onsets = [r["predicted_onset"] for r in records]
    deps = [r["departure"] for r in records]
    return (
        f"balanced, on t ≤ {fmt_spread(d['window_end'], '{:.0f}')}: slope "
        f"{fmt_spread(d['balanced_slope'])}, error "
        f"×{fmt_num(d['balanced_over_xxt_min']['min'])}–"
        f"{fmt_num(d['balanced_over_xxt_max']['max'])} of X Xᵀ; speed-up predicted "
        f"per seed from t ≈ {_times(onsets, T)}, seen from t ≈ {_times(deps, T)}; "
        f"G₀ = F₀/3: rate "
        f"{fmt_spread(d['imbalanced_rate'])}, "
        f"{fmt_spread(d['balanced_over_imbalanced'], '{:.1e}')}× smaller at t = {T}"
    )


def _onset_vlines(first: dict) -> list:
    """Seed ``first``'s predicted onset of the speed-up and where the balanced run departs."""
    vlines = []
    if first.get("predicted_onset") is not None:
        vlines.append(
            plots.VLine(
                first["predicted_onset"],
                label=f"seed {first['seed']}: imbalance takes over (predicted)",
            )
        )
    if first.get("departure") is not None:
        vlines.append(
            plots.VLine(
                first["departure"],
                color=plots.color(1),
                linestyle="-.",
                label=f"seed {first['seed']}: balanced < X Xᵀ/2",
            )
        )
    return vlines


def _times(values, T) -> str:
    """Iterations per seed; 'after T' where it did not happen within the run's T iterations."""
    return ", ".join(f"after {T}" if v is None else f"{v:.0f}" for v in values)


C5 = AsymmetricSpeedupClaim()
C6 = BalancedCurseClaim()

__all__ = [
    "C5",
    "C6",
    "symmetric_problem_curves",
    "ASYM_ON_SYM",
    "ASYM_ON_SYM_LABELS",
    "asym_on_sym_inits",
]
