"""C5 and C6, the curse of symmetry: on a PSD problem F Gᵀ from an imbalanced small start is
exponentially faster than X Xᵀ (C5), and a balanced start G₀ = F₀ loses that speed-up (C6).

Both read the same two runs of a seed (:func:`symmetric_problem_curves`): the three F Gᵀ starts
of ``asym_on_sym`` and the X Xᵀ run of C2 at α = ``c5_alpha`` (X₀ = the balanced F₀).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import diagnostics, plots
from ... import init as _init
from ...rates import linear_rate, power_law
from ..declare import Param, RunSpec, positive_int, positive_number
from ..results import fmt_num, fmt_spread, spread
from ..runs import LabeledRun, long_record_every
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


def _check_c5_alpha(name, value, s) -> None:
    from ... import _validate as V

    V.positive_float(name, value)
    if s.c2_alphas is not None and value not in s.c2_alphas:
        raise ValueError(
            f"c5_alpha={value} must be one of c2_alphas={s.c2_alphas}: "
            "C5 and C6 compare against the C2 run at that α"
        )


def _check_c5_iters(name, value, s) -> None:
    positive_int(name, value)
    if s.c2_iters is not None and value > s.c2_iters:
        raise ValueError(
            f"c5_iters={value} must be <= c2_iters={s.c2_iters}: "
            "C5 and C6 compare against the C2 run at the same iteration"
        )


#: The parameters of C5 and C6 (F Gᵀ on the symmetric PSD problem, against C2's X Xᵀ run).
PARAMS = (
    Param(
        "c5_alpha",
        None,
        "float | None",
        "α of the three F Gᵀ starts (None: C2's first α)",
        derive=lambda s: s.c2_alphas[0],
        check=_check_c5_alpha,
    ),
    Param(
        "c5_iters",
        None,
        "int | None",
        "the horizon T of C5/C6 (None: c2_iters)",
        derive=lambda s: s.c2_iters,
        check=_check_c5_iters,
    ),
    Param(
        "c6_tail",
        0.5,
        "float",
        "C6's power law is fitted on t ≥ c6_tail × its window's end",
        check=positive_number,
    ),
    Param(
        "c6_checkpoints",
        40,
        "int",
        "iterations at which the balanced run's generated imbalance is read",
        check=positive_int,
    ),
)


#: The three starts of F Gᵀ on the PSD problem (C5, C6), by label.
ASYM_ON_SYM_LABELS = {
    "small_random": "F Gᵀ, small random (G₀ ~ α/3)",
    "balanced": "F Gᵀ, balanced G₀ = F₀",
    "imbalanced": "F Gᵀ, imbalanced G₀ = F₀/3",
}


def asym_on_sym_inits(sr):
    """[small random, balanced G₀ = F₀, imbalanced G₀ = F₀/3] on the PSD problem, batched
    (the order of :data:`ASYM_ON_SYM_LABELS`)."""
    s = sr.settings
    p = sr.problem(True)
    F_sr, G_sr = _init.small_random(
        p, s.k, s.c5_alpha, ratio=s.ratio, seed=sr.init_seed("asymmetric")
    )
    X0 = _init.symmetric_random(p, s.k, s.c5_alpha, seed=sr.init_seed("symmetric"))
    F0 = np.stack([F_sr, X0, X0])
    G0 = np.stack([G_sr, X0.copy(), X0 * s.ratio])
    return F0, G0


def _asym_on_sym(sr):
    """The three starts, and the generated imbalance of the balanced one at checkpoints.

    The balanced start has Δ₀ = 0; GD generates imbalance (C8). Its smallest
    eigenvalue on the k − r redundant directions sets when a linear rate can take
    over from the 1/t decay (see :func:`matsense.diagnostics.redundant_imbalance`).
    """
    s = sr.settings
    labels = tuple(ASYM_ON_SYM_LABELS)
    balanced = labels.index("balanced")
    iters = s.c5_iters
    marks = set(np.unique(np.round(np.geomspace(1, iters, s.c6_checkpoints)).astype(int)).tolist())
    seen = {"iteration": [], "redundant_imbalance": []}

    def read_imbalance(t, info):
        rows = list(info["rows"])
        if t in marks and balanced in rows:
            F, G = (f[rows.index(balanced)][None] for f in info["factors"])
            seen["iteration"].append(t)
            seen["redundant_imbalance"].append(
                float(np.asarray(diagnostics.redundant_imbalance(F, G, s.r))[0])
            )
        return False

    traj = sr.gd(
        sr.problem(True),
        asym_on_sym_inits(sr),
        iters,
        tol=s.exact_tol,
        record_every=long_record_every(s, iters),
        callback=read_imbalance,
    )
    checkpoints = {"balanced": {k: np.asarray(v) for k, v in seen.items()}}
    return LabeledRun(traj, labels, checkpoints)


ASYM_ON_SYM = RunSpec(
    "asym_on_sym",
    _asym_on_sym,
    "c5_iters",
    "GD on F Gᵀ on the PSD problem at "
    "c5_alpha: small random, balanced G₀ = F₀, imbalanced G₀ = F₀/3",
)


@dataclass
class SymmetricProblemCurves:
    """One seed's curves on the PSD problem: the F Gᵀ starts by label, and X Xᵀ (up to T)."""

    seed: int
    asym: LabeledRun  # of asym_on_sym
    xxt_t: np.ndarray
    xxt_err: np.ndarray
    xxt_status: str


def symmetric_problem_curves(sr, settings) -> SymmetricProblemCurves:
    """The shared setup of C5 and C6 for one seed."""
    t, err = sr.get("sym_over").curve(settings.c5_alpha)
    return SymmetricProblemCurves(
        sr.seed, sr.get("asym_on_sym"), t, err, sr.get("sym_over").status(settings.c5_alpha)
    )


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
        ) + plots.seeded_curves(*_xxt_curves(runs, s), label="X Xᵀ", color=plots.color(1))
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
        records = []
        for sr in runs:
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
            xxt_at = (
                np.exp(np.interp(tb[win], ts, np.log(es)))
                if ts.size
                else np.full(win.sum(), np.nan)
            )
            ratios = eb[win] / xxt_at
            err_b, err_i = value_at(tb, eb, T), value_at(ti, ei, T)
            fit_i = linear_rate(ti, ei, window=s.exact_window)
            gap = err_b / err_i if err_i > 0 else math.nan
            records.append(
                {
                    "seed": sr.seed,
                    "status_balanced": c.asym.status("balanced"),
                    "status_imbalanced": c.asym.status("imbalanced"),
                    "status_xxt": c.xxt_status,
                    "predicted_onset": onset,
                    "window": [s.c6_tail * t_end, t_end],
                    "departure": _departure(tb, eb, ts, es, cr.like_xxt_factor),
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
            )
        slope = spread([r["balanced_slope"] for r in records])
        lo = spread([r["balanced_over_xxt_min"] for r in records])
        hi = spread([r["balanced_over_xxt_max"] for r in records])
        rate = spread([r["imbalanced_rate"] for r in records])
        gap = spread([r["balanced_over_imbalanced"] for r in records])
        ends = spread([r["window"][1] for r in records])
        onsets = [r["predicted_onset"] for r in records]
        deps = [r["departure"] for r in records]
        measured = (
            f"balanced, on t ≤ {fmt_spread(ends, '{:.0f}')}: slope {fmt_spread(slope)}, "
            f"error ×{fmt_num(lo['min'])}–{fmt_num(hi['max'])} of X Xᵀ; speed-up predicted "
            f"per seed from t ≈ {_times(onsets, T)}, seen from t ≈ {_times(deps, T)}; "
            f"G₀ = F₀/3: rate "
            f"{fmt_spread(rate)}, {fmt_spread(gap, '{:.1e}')}× smaller at t = {T}"
        )
        expected = (
            f"until the generated imbalance takes over: balanced slope {cr.slope:g} ± "
            f"{cr.slope_tol:g}, within ×{cr.like_xxt_factor:g} of X Xᵀ; imbalanced linear, "
            f"≥ {cr.min_error_ratio:g}× smaller"
        )
        details = {
            "balanced_slope": slope,
            "balanced_over_xxt_min": lo,
            "balanced_over_xxt_max": hi,
            "imbalanced_rate": rate,
            "balanced_over_imbalanced": gap,
            "window_end": ends,
            "T": T,
            "alpha": s.c5_alpha,
            "tail": s.c6_tail,
            "window": list(s.exact_window),
            "escape_iterations": escape,
            "records": records,
        }
        return Measurement(records, measured, expected, details)

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
            *_xxt_curves(runs, s), label="X Xᵀ (X₀ = F₀)", color="0.35", linestyle="--"
        )
        first = m.records[0] if m.records else {}
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
