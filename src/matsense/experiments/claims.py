"""The paper's claims C1–C8 (PAPER.md §5) as experiments with a measured verdict.

Each ``claim_cN(runs, settings, out_dir)`` reads the trajectories it needs from
a list of :class:`~matsense.experiments.runs.SeedRuns` (one per seed), fits
rates with :mod:`matsense.rates`, compares the numbers with the criteria of
:data:`~matsense.experiments.settings.CRITERIA`, draws its figure and returns
a :class:`~matsense.experiments.results.ClaimResult`. A criterion is checked
on *every* trajectory (every seed and α), and the table reports the median
and the [min, max] over them. A diverged run, a failed fit or a missing event
(no rebalancing switch) makes the claim not hold, with the reason.

:func:`reproduce` runs all of them (or a subset) and writes ``summary.json``,
the figures and ``report.html``. Symbols follow the paper: α (alpha) the
initialization scale, η (eta) the step size, k the factor width, r the rank,
Δ = FᵀF − GᵀG the imbalance.
"""

from __future__ import annotations

import math
import time
import traceback
from pathlib import Path

import numpy as np

from .. import init as _init
from .. import plots
from ..rates import linear_rate, power_law
from . import runs as _runs
from .results import ClaimResult, fmt_num, fmt_spread, spread, write_summary
from .settings import CRITERIA, ClaimSettings

FIG_DIR = "figures"

TITLES = {
    "C1": "symmetric X Xᵀ, k = r: linear convergence",
    "C2": "symmetric X Xᵀ, k > r: sublinear, error ∝ 1/t",
    "C3": "asymmetric F Gᵀ, k = r: linear convergence",
    "C4": "asymmetric F Gᵀ, k > r: linear, rate ∝ α²",
    "C5": "F Gᵀ on a PSD problem is exponentially faster than X Xᵀ",
    "C6": "balanced init G₀ = F₀ loses the speed-up",
    "C7": "one-step rebalancing: rate independent of α",
    "C8": "GD nearly conserves the imbalance Δ = FᵀF − GᵀG",
}

MAX_REASONS = 3


# ----------------------------------------------------------------- helpers
def _curve(tr, b: int, key: str = "error"):
    """(iterations, values) of trajectory ``b`` where it was recorded."""
    t = np.asarray(tr.history["iteration"], dtype=float)
    y = np.asarray(tr.history[key], dtype=float)[:, b]
    keep = np.isfinite(y)
    return t[keep], y[keep]


def _value_at(t, y, T):
    """The last recorded value at an iteration ≤ T (NaN if none)."""
    sel = np.flatnonzero(t <= T)
    return float(y[sel[-1]]) if sel.size else math.nan


def _fit(fit) -> dict:
    return {"value": fit.value, "t_start": fit.t_start, "t_end": fit.t_end,
            "n_points": fit.n_points, "r2": fit.r2, "reason": fit.reason or None}


def _status(tr, b: int) -> str:
    return str(np.atleast_1d(tr.status)[b])


class _Verdict:
    """Collects failed criteria; the claim holds when none failed."""

    def __init__(self):
        self.failures: list[str] = []

    def require(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok

    def diverged(self, status: str, where: str) -> bool:
        """Record a divergence; True when the trajectory diverged (skip its other checks)."""
        if status == "diverged":
            self.failures.append(f"{where}: run diverged (η too large?)")
            return True
        return False

    def fit(self, fit, where: str, what: str = "fit") -> bool:
        if not fit.ok:
            self.failures.append(f"{where}: no valid {what} ({fit.reason})")
            return False
        return self.require(fit.r2 >= CRITERIA["min_r2"],
                            f"{where}: {what} r² = {fit.r2:.4f} < {CRITERIA['min_r2']}")

    @property
    def holds(self) -> bool:
        return not self.failures

    @property
    def reason(self) -> str | None:
        if not self.failures:
            return None
        extra = len(self.failures) - MAX_REASONS
        head = "; ".join(self.failures[:MAX_REASONS])
        return head + (f" (+{extra} more)" if extra > 0 else "")


def _within(x, centre, tol) -> bool:
    return bool(np.isfinite(x) and abs(x - centre) <= tol)


def _factor(x, factor) -> bool:
    return bool(np.isfinite(x) and x > 0 and 1 / factor <= x <= factor)


def _alpha_label(a) -> str:
    return f"α = {a:g}"


def _save(out_dir, stem: str, panels, suptitle: str) -> list[str]:
    if out_dir is None:
        return []
    out_dir = Path(out_dir)
    paths = plots.save_panels(panels, out_dir / FIG_DIR / stem, suptitle=suptitle)
    return [p.relative_to(out_dir).as_posix() for p in paths]


def _result(cid, measured, expected, verdict: _Verdict, details, figures) -> ClaimResult:
    details = dict(details)
    details["criteria_failed"] = list(verdict.failures)
    return ClaimResult(cid, TITLES[cid], measured, expected, verdict.holds, details, figures,
                       verdict.reason)


def _seed_curves(runs, run_name, b, key="error"):
    xs, ys = [], []
    for sr in runs:
        t, y = _curve(sr.get(run_name), b, key)
        xs.append(t)
        ys.append(y)
    return xs, ys


# ---------------------------------------------------------------- C1 / C3
def _exact_claim(cid, runs, settings: ClaimSettings, out_dir, run_name, model, stem):
    v = _Verdict()
    window = settings.exact_window
    records = []
    for sr in runs:
        tr = sr.get(run_name)
        for b, a in enumerate(settings.alphas):
            where = f"seed {sr.seed}, α={a:g}"
            t, err = _curve(tr, b)
            _, rel = _curve(tr, b, "rel_error")
            fit = linear_rate(t, err, window=window)
            final = float(rel[-1]) if rel.size else math.nan
            status = _status(tr, b)
            records.append({"seed": sr.seed, "alpha": a, "status": status, "rate": fit.value,
                            "fit": _fit(fit), "final_rel_error": final,
                            "final_iteration": float(t[-1]) if t.size else math.nan})
            if v.diverged(status, where):
                continue
            v.fit(fit, where, "linear fit")
            limit = CRITERIA[f"{cid.lower()}_max_final_rel_error"]
            v.require(np.isfinite(final) and final <= limit,
                      f"{where}: final rel. error {fmt_num(final, '{:.2e}')} > {limit:g}")
    rate = spread([r["rate"] for r in records])
    final = spread([r["final_rel_error"] for r in records])
    measured = f"rate {fmt_spread(rate)} /iter; final rel. error {fmt_spread(final, '{:.1e}')}"
    expected = (f"linear (r² ≥ {CRITERIA['min_r2']}); rel. error ~1e-14, "
                f"≤ {CRITERIA[cid.lower() + '_max_final_rel_error']:g}")
    details = {"rate": rate, "final_rel_error": final, "window": list(window),
               "iterations": settings.exact_iters, "k": settings.r, "records": records}
    panels = [plots.Panel(
        f"{model}, k = r = {settings.r}, η = {settings.eta:g}", "iteration t",
        "relative error ‖P_t − M*‖_F / ‖M*‖_F",
        curves=[c for i, a in enumerate(settings.alphas)
                for c in plots.seeded_curves(*_seed_curves(runs, run_name, i, "rel_error"),
                                             label=_alpha_label(a), color=plots.color(i))],
        note=f"linear rate (median) {fmt_num(rate['median'])} per iteration")]
    figures = _save(out_dir, stem, panels, f"{cid}: {TITLES[cid]}")
    return _result(cid, measured, expected, v, details, figures)


def claim_c1(runs, settings, out_dir=None) -> ClaimResult:
    """C1: GD on X Xᵀ with k = r converges linearly, to ~1e-14 relative error."""
    return _exact_claim("C1", runs, settings, out_dir, "sym_exact", "X Xᵀ", "c1_symmetric_exact")


def claim_c3(runs, settings, out_dir=None) -> ClaimResult:
    """C3: GD on F Gᵀ with k = r converges linearly, to ~1e-14 relative error."""
    return _exact_claim("C3", runs, settings, out_dir, "asym_exact", "F Gᵀ", "c3_asymmetric_exact")


# ---------------------------------------------------------------------- C2
def isotropic_prediction(t, k: int, r: int, eta: float):
    """Our isotropic-limit prediction ‖X_tX_tᵀ − M*‖_F ≈ √(k − r)/(2ηt) (PAPER.md §5, C2)."""
    return math.sqrt(k - r) / (2 * eta * np.asarray(t, dtype=float))


def claim_c2(runs, settings, out_dir=None) -> ClaimResult:
    """C2: GD on X Xᵀ with k > r is sublinear: ‖X_tX_tᵀ − M*‖_F ∝ 1/t."""
    s = settings
    v = _Verdict()
    lo_slope, tol_slope = CRITERIA["c2_slope"]
    fac = CRITERIA["c2_prediction_factor"]
    records = []
    for sr in runs:
        tr = sr.get("sym_over")
        for b, a in enumerate(s.c2_alphas):
            where = f"seed {sr.seed}, α={a:g}"
            t, err = _curve(tr, b)
            fit = power_law(t, err, tail=s.c2_tail)
            T = float(t[-1]) if t.size else math.nan
            pred = float(isotropic_prediction(T, s.k, s.r, s.eta)) if T > 0 else math.nan
            ratio = float(err[-1]) / pred if T > 0 else math.nan
            status = _status(tr, b)
            records.append({"seed": sr.seed, "alpha": a, "status": status, "slope": fit.value,
                            "fit": _fit(fit), "T": T, "error_T": float(err[-1]) if t.size else math.nan,
                            "prediction_T": pred, "ratio_to_prediction": ratio})
            if v.diverged(status, where):
                continue
            if v.fit(fit, where, "power-law fit"):
                v.require(_within(fit.value, lo_slope, tol_slope),
                          f"{where}: slope {fit.value:.3f} outside {lo_slope:g} ± {tol_slope:g}")
            v.require(_factor(ratio, fac),
                      f"{where}: error/prediction {fmt_num(ratio)} outside [1/{fac:g}, {fac:g}]")
    slope = spread([r["slope"] for r in records])
    ratio = spread([r["ratio_to_prediction"] for r in records])
    tail_start = s.c2_tail * s.c2_iters
    measured = (f"slope {fmt_spread(slope)} on t ∈ [{tail_start:g}, {s.c2_iters}]; "
                f"error/prediction {fmt_spread(ratio)} at t = {s.c2_iters}")
    expected = (f"slope {lo_slope:g} ± {tol_slope:g}; error ≈ √(k−r)/(2ηt) within ×{fac:g}")
    details = {"slope": slope, "ratio_to_prediction": ratio, "tail": s.c2_tail,
               "iterations": s.c2_iters, "k": s.k, "records": records}
    curves = [c for i, a in enumerate(s.c2_alphas)
              for c in plots.seeded_curves(*_seed_curves(runs, "sym_over", i),
                                           label=f"X Xᵀ, {_alpha_label(a)}", color=plots.color(i))]
    tt = np.geomspace(10, s.c2_iters, 50)
    curves.append(plots.Curve(tt, isotropic_prediction(tt, s.k, s.r, s.eta),
                              label="prediction √(k−r)/(2ηt)", color="k", linestyle="--",
                              linewidth=1.2))
    t0, e0 = _curve(runs[0].get("sym_over"), 0)
    if t0.size:
        curves.append(plots.Curve(tt, e0[-1] * t0[-1] / tt, label="∝ 1/t through the last iterate",
                                  color="0.5", linestyle=":", linewidth=1.2))
    panels = [plots.Panel(f"X Xᵀ, k = {s.k} > r = {s.r}, η = {s.eta:g}", "iteration t (log)",
                          "error ‖X_tX_tᵀ − M*‖_F", curves=curves, xscale="log",
                          note=f"tail slope (median) {fmt_num(slope['median'])}")]
    figures = _save(out_dir, "c2_symmetric_over", panels, f"C2: {TITLES['C2']}")
    return _result("C2", measured, expected, v, details, figures)


# ---------------------------------------------------------------------- C4
def claim_c4(runs, settings, out_dir=None) -> ClaimResult:
    """C4: GD on F Gᵀ with k > r is linear with a rate ∝ α², of order η·λ_min(Δ₀)."""
    s = settings
    v = _Verdict()
    centre, tol_slope = CRITERIA["c4_slope"]
    fac = CRITERIA["c4_rate_factor"]
    records, slopes = [], []
    alphas = np.asarray(s.c4_alphas, dtype=float)
    for sr in runs:
        tr = sr.get("asym_over")
        p = sr.problem(False)
        F0, G0 = _init.small_random(p, s.k, list(alphas), seed=[sr.init_seed("asymmetric")] * len(alphas))
        lam = np.linalg.eigvalsh(F0.mT @ F0 - G0.mT @ G0)[:, 0]
        rates = []
        for b, a in enumerate(alphas):
            where = f"seed {sr.seed}, α={a:g}"
            t, err = _curve(tr, b)
            fit = linear_rate(t, err, window=s.c4_window)
            status = _status(tr, b)
            scale = s.eta * float(lam[b])
            ratio = fit.value / scale if scale > 0 else math.nan
            records.append({"seed": sr.seed, "alpha": float(a), "status": status, "rate": fit.value,
                            "fit": _fit(fit), "lambda_min_delta0": float(lam[b]),
                            "eta_lambda_min": scale, "rate_over_eta_lambda_min": ratio})
            ok = not v.diverged(status, where) and v.fit(fit, where, "linear fit")
            if ok:
                v.require(_factor(ratio, fac), f"{where}: rate/(η λ_min(Δ₀)) = {fmt_num(ratio)} "
                          f"outside [1/{fac:g}, {fac:g}]")
            rates.append(fit.value if ok else math.nan)
        rates = np.asarray(rates)
        good = np.isfinite(rates) & (rates > 0)
        if good.sum() >= 2:
            slope = float(np.polyfit(np.log(alphas[good]), np.log(rates[good]), 1)[0])
        else:
            slope = math.nan
        slopes.append({"seed": sr.seed, "slope": slope, "alphas_used": alphas[good].tolist()})
        v.require(_within(slope, centre, tol_slope),
                  f"seed {sr.seed}: slope of rate vs α {fmt_num(slope)} outside {centre:g} ± {tol_slope:g}")
    slope = spread([x["slope"] for x in slopes])
    per_alpha = {f"{a:g}": spread([r["rate"] for r in records if r["alpha"] == a]) for a in alphas}
    ratio = spread([r["rate_over_eta_lambda_min"] for r in records])
    rates_txt = ", ".join(f"α={a}: {fmt_spread(sp)}" for a, sp in per_alpha.items())
    measured = (f"slope {fmt_spread(slope)}; rates {rates_txt}; "
                f"rate/(η λ_min(Δ₀)) {fmt_spread(ratio, '{:.2g}')}")
    expected = f"slope {centre:g} ± {tol_slope:g}; rate of order η·λ_min(Δ₀) (within ×{fac:g})"
    details = {"slope": slope, "slopes": slopes, "rate_per_alpha": per_alpha,
               "rate_over_eta_lambda_min": ratio, "window": list(s.c4_window),
               "iterations": s.c4_iters, "alphas": alphas.tolist(), "records": records}
    curves = [c for i, a in enumerate(alphas)
              for c in plots.seeded_curves(*_seed_curves(runs, "asym_over", i),
                                           label=_alpha_label(a), color=plots.color(i))]
    p1 = plots.Panel(f"F Gᵀ, k = {s.k} > r = {s.r}, η = {s.eta:g}", "iteration t",
                     "error ‖F_tG_tᵀ − M*‖_F", curves=curves,
                     note=f"rates fitted where error/error₀ ∈ [{s.c4_window[1]:g}, {s.c4_window[0]:g}]")
    rate_curves = []
    for j, sr in enumerate(runs):
        rs = [r for r in records if r["seed"] == sr.seed]
        rate_curves.append(plots.Curve([r["alpha"] for r in rs], [r["rate"] for r in rs],
                                       label="fitted rate" if j == 0 else None, color=plots.color(0),
                                       linestyle="-" if j == 0 else "none", marker="o",
                                       alpha=1.0 if j == 0 else 0.5))
        if j == 0:
            rate_curves.append(plots.Curve([r["alpha"] for r in rs], [r["eta_lambda_min"] for r in rs],
                                           label="η·λ_min(Δ₀)", color=plots.color(3),
                                           linestyle="none", marker="s"))
    med = per_alpha[f"{alphas[0]:g}"]["median"]
    if np.isfinite(med):
        aa = np.geomspace(alphas.min() * 0.8, alphas.max() * 1.25, 20)
        rate_curves.append(plots.Curve(aa, med * (aa / alphas[0]) ** 2,
                                       label=f"∝ α² (through the median at α = {alphas[0]:g})",
                                       color="k", linestyle="--", linewidth=1.2))
    p2 = plots.Panel("linear rate vs α", "initialization scale α", "rate −d log err / dt",
                     curves=rate_curves, xscale="log", xticks=list(alphas),
                     note=f"log-log slope (median) {fmt_num(slope['median'])}")
    figures = _save(out_dir, "c4_asymmetric_over", [p1, p2], f"C4: {TITLES['C4']}")
    return _result("C4", measured, expected, v, details, figures)


# ---------------------------------------------------------------------- C5
def _sym_at_c5_alpha(sr, s):
    b = list(s.c2_alphas).index(s.c5_alpha)
    return sr.get("sym_over"), b


def claim_c5(runs, settings, out_dir=None) -> ClaimResult:
    """C5: on a PSD problem, F Gᵀ (imbalanced small init) converges linearly, X Xᵀ only as 1/t."""
    s = settings
    v = _Verdict()
    centre, tol_slope = CRITERIA["c5_sym_slope"]
    min_ratio = CRITERIA["c5_min_error_ratio"]
    T = s.c5_iters
    records = []
    for sr in runs:
        where = f"seed {sr.seed}"
        tra = sr.get("asym_on_sym")
        trs, bs = _sym_at_c5_alpha(sr, s)
        ta, ea = _curve(tra, 0)
        ts, es = _curve(trs, bs)
        keep = ts <= T
        fit_a = linear_rate(ta, ea, window=s.exact_window)
        fit_s = power_law(ts[keep], es[keep], tail=s.c2_tail)
        err_a, err_s = _value_at(ta, ea, T), _value_at(ts, es, T)
        ratio = err_s / err_a if err_a > 0 else math.nan
        st_a, st_s = _status(tra, 0), _status(trs, bs)
        records.append({"seed": sr.seed, "status_asym": st_a, "status_sym": st_s,
                        "asym_rate": fit_a.value, "asym_fit": _fit(fit_a), "sym_slope": fit_s.value,
                        "sym_fit": _fit(fit_s), "asym_error_T": err_a, "sym_error_T": err_s,
                        "error_ratio_T": ratio, "T": T})
        bad = v.diverged(st_a, where + ", F Gᵀ") | v.diverged(st_s, where + ", X Xᵀ")
        if bad:
            continue
        v.fit(fit_a, where + ", F Gᵀ", "linear fit")
        if v.fit(fit_s, where + ", X Xᵀ", "power-law fit"):
            v.require(_within(fit_s.value, centre, tol_slope),
                      f"{where}: X Xᵀ slope {fit_s.value:.3f} outside {centre:g} ± {tol_slope:g}")
        v.require(np.isfinite(ratio) and ratio >= min_ratio,
                  f"{where}: X Xᵀ / F Gᵀ error at t={T} is {fmt_num(ratio, '{:.2g}')} < {min_ratio:g}")
    rate = spread([r["asym_rate"] for r in records])
    slope = spread([r["sym_slope"] for r in records])
    ratio = spread([r["error_ratio_T"] for r in records])
    measured = (f"F Gᵀ rate {fmt_spread(rate)}; X Xᵀ slope {fmt_spread(slope)}; "
                f"error ratio X Xᵀ / F Gᵀ at t = {T}: {fmt_spread(ratio, '{:.1e}')}")
    expected = (f"F Gᵀ linear, X Xᵀ slope {centre:g} ± {tol_slope:g}; ratio ≥ {min_ratio:g}")
    details = {"asym_rate": rate, "sym_slope": slope, "error_ratio": ratio, "T": T,
               "alpha": s.c5_alpha, "window": list(s.exact_window), "tail": s.c2_tail,
               "records": records}
    xs_s, ys_s = [], []
    for sr in runs:
        trs, bs = _sym_at_c5_alpha(sr, s)
        t, y = _curve(trs, bs)
        xs_s.append(t[t <= T])
        ys_s.append(y[t <= T])
    curves = (plots.seeded_curves(*_seed_curves(runs, "asym_on_sym", 0),
                                  label="F Gᵀ (G₀ at scale α/3)", color=plots.color(0))
              + plots.seeded_curves(xs_s, ys_s, label="X Xᵀ", color=plots.color(1)))
    tt = np.linspace(max(T / 20, 1), T, 40)
    curves.append(plots.Curve(tt, isotropic_prediction(tt, s.k, s.r, s.eta), color="k",
                              label="√(k−r)/(2ηt)", linestyle="--", linewidth=1.0))
    panels = [plots.Panel(f"same PSD problem, k = {s.k}, α = {s.c5_alpha:g}, η = {s.eta:g}",
                          "iteration t", "error ‖P_t − M*‖_F", curves=curves,
                          note=f"error ratio at t = {T}: {fmt_num(ratio['median'], '{:.1e}')}")]
    figures = _save(out_dir, "c5_asymmetric_vs_symmetric", panels, f"C5: {TITLES['C5']}")
    return _result("C5", measured, expected, v, details, figures)


# ---------------------------------------------------------------------- C6
def claim_c6(runs, settings, out_dir=None) -> ClaimResult:
    """C6: F Gᵀ from a balanced start G₀ = F₀ is sublinear like X Xᵀ; G₀ = F₀/3 is linear."""
    s = settings
    v = _Verdict()
    centre, tol_slope = CRITERIA["c6_slope"]
    like = CRITERIA["c6_like_xxt_factor"]
    min_ratio = CRITERIA["c6_min_error_ratio"]
    T = s.c5_iters
    records = []
    for sr in runs:
        where = f"seed {sr.seed}"
        tra = sr.get("asym_on_sym")
        trs, bs = _sym_at_c5_alpha(sr, s)
        tb, eb = _curve(tra, 1)
        ti, ei = _curve(tra, 2)
        ts, es = _curve(trs, bs)
        fit_b = power_law(tb, eb, tail=s.c6_tail)
        fit_i = linear_rate(ti, ei, window=s.exact_window)
        err_b, err_i, err_s = (_value_at(t, e, T) for t, e in ((tb, eb), (ti, ei), (ts, es)))
        like_ratio = err_b / err_s if err_s > 0 else math.nan
        gap = err_b / err_i if err_i > 0 else math.nan
        sts = [_status(tra, 1), _status(tra, 2), _status(trs, bs)]
        records.append({"seed": sr.seed, "status_balanced": sts[0], "status_imbalanced": sts[1],
                        "status_xxt": sts[2], "balanced_slope": fit_b.value,
                        "balanced_fit": _fit(fit_b), "imbalanced_rate": fit_i.value,
                        "imbalanced_fit": _fit(fit_i), "balanced_error_T": err_b,
                        "imbalanced_error_T": err_i, "xxt_error_T": err_s,
                        "balanced_over_xxt": like_ratio, "balanced_over_imbalanced": gap, "T": T})
        names = ("balanced", "G₀ = F₀/3", "X Xᵀ")
        if any([v.diverged(st, f"{where}, {nm}") for st, nm in zip(sts, names)]):
            continue
        if v.fit(fit_b, where + ", balanced", "power-law fit"):
            v.require(_within(fit_b.value, centre, tol_slope),
                      f"{where}: balanced slope {fit_b.value:.3f} outside {centre:g} ± {tol_slope:g}")
        v.require(_factor(like_ratio, like),
                  f"{where}: balanced / X Xᵀ error {fmt_num(like_ratio)} outside [1/{like:g}, {like:g}]")
        v.fit(fit_i, where + ", G₀ = F₀/3", "linear fit")
        v.require(np.isfinite(gap) and gap >= min_ratio,
                  f"{where}: balanced / imbalanced error at t={T} is {fmt_num(gap, '{:.2g}')} < {min_ratio:g}")
    slope = spread([r["balanced_slope"] for r in records])
    like_s = spread([r["balanced_over_xxt"] for r in records])
    rate = spread([r["imbalanced_rate"] for r in records])
    gap = spread([r["balanced_over_imbalanced"] for r in records])
    measured = (f"balanced: slope {fmt_spread(slope)}, error ×{fmt_spread(like_s)} of X Xᵀ; "
                f"G₀ = F₀/3: rate {fmt_spread(rate)}, {fmt_spread(gap, '{:.1e}')}× smaller at t = {T}")
    expected = (f"balanced slope {centre:g} ± {tol_slope:g} and within ×{like:g} of X Xᵀ; "
                f"imbalanced linear, ≥ {min_ratio:g}× smaller")
    details = {"balanced_slope": slope, "balanced_over_xxt": like_s, "imbalanced_rate": rate,
               "balanced_over_imbalanced": gap, "T": T, "alpha": s.c5_alpha,
               "tail": s.c6_tail, "window": list(s.exact_window), "records": records}
    xs_s, ys_s = [], []
    for sr in runs:
        trs, bs = _sym_at_c5_alpha(sr, s)
        t, y = _curve(trs, bs)
        xs_s.append(t[t <= T])
        ys_s.append(y[t <= T])
    bal = plots.seeded_curves(*_seed_curves(runs, "asym_on_sym", 1), label="F Gᵀ, balanced G₀ = F₀",
                              color=plots.color(1))
    imb = plots.seeded_curves(*_seed_curves(runs, "asym_on_sym", 2), label="F Gᵀ, G₀ = F₀/3",
                              color=plots.color(0))
    xxt = plots.seeded_curves(xs_s, ys_s, label="X Xᵀ (X₀ = F₀)", color="0.35", linestyle="--")
    p1 = plots.Panel(f"PSD problem, k = {s.k}, α = {s.c5_alpha:g}, η = {s.eta:g}", "iteration t",
                     "error ‖P_t − M*‖_F", curves=bal + imb + xxt)
    tt = np.geomspace(10, T, 40)
    p2 = plots.Panel("balanced vs X Xᵀ (log-log)", "iteration t (log)", "error ‖P_t − M*‖_F",
                     curves=bal + xxt + [plots.Curve(tt, isotropic_prediction(tt, s.k, s.r, s.eta),
                                                     label="√(k−r)/(2ηt)", color="k",
                                                     linestyle=":", linewidth=1.0)],
                     xscale="log", note=f"balanced tail slope (median) {fmt_num(slope['median'])}")
    figures = _save(out_dir, "c6_balanced_vs_imbalanced", [p1, p2], f"C6: {TITLES['C6']}")
    return _result("C6", measured, expected, v, details, figures)


# ---------------------------------------------------------------------- C7
def claim_c7(runs, settings, out_dir=None) -> ClaimResult:
    """C7: after the one-step rebalancing the linear rate no longer depends on α."""
    s = settings
    v = _Verdict()
    max_spread = CRITERIA["c7_max_spread"]
    records, spreads, gd_spreads = [], [], []
    for sr in runs:
        tr = sr.get("rebalanced")
        gd = sr.get("asym_over")
        switch = np.atleast_1d(tr.extras.get("switch_iteration", np.full(len(s.alphas), -1)))
        rates = []
        for b, a in enumerate(s.alphas):
            where = f"seed {sr.seed}, α={a:g}"
            t, err = _curve(tr, b)
            sw = int(switch[b])
            fit = linear_rate(t[t >= sw], err[t >= sw], window=s.c7_window) if sw >= 0 else None
            gd_rate = math.nan
            if a in s.c4_alphas:
                tg, eg = _curve(gd, list(s.c4_alphas).index(a))
                gd_rate = linear_rate(tg, eg, window=s.c4_window).value
            status = _status(tr, b)
            records.append({"seed": sr.seed, "alpha": a, "status": status, "switch_iteration": sw,
                            "rate_after_switch": fit.value if fit else math.nan,
                            "fit": _fit(fit) if fit else None, "plain_gd_rate": gd_rate})
            if v.diverged(status, where):
                rates.append(math.nan)
                continue
            if not v.require(sw >= 0, f"{where}: no rebalancing switch (residual never ≤ τ={s.tau:g})"):
                rates.append(math.nan)
                continue
            rates.append(fit.value if v.fit(fit, where, "post-switch linear fit") else math.nan)
        rates = np.asarray(rates)
        sp = (rates.max() - rates.min()) / np.median(rates) if np.all(np.isfinite(rates)) else math.nan
        spreads.append({"seed": sr.seed, "spread": sp})
        v.require(np.isfinite(sp) and sp <= max_spread,
                  f"seed {sr.seed}: post-switch rate spread {fmt_num(sp)} > {max_spread:g}")
        g = np.asarray([r["plain_gd_rate"] for r in records if r["seed"] == sr.seed], dtype=float)
        g = g[np.isfinite(g)]
        gd_spreads.append({"seed": sr.seed,
                           "spread": (g.max() - g.min()) / np.median(g) if g.size >= 2 else math.nan})
    rate = spread([r["rate_after_switch"] for r in records])
    sp = spread([x["spread"] for x in spreads])
    gsp = spread([x["spread"] for x in gd_spreads])
    per_alpha = {f"{a:g}": spread([r["rate_after_switch"] for r in records if r["alpha"] == a])
                 for a in s.alphas}
    rates_txt = ", ".join(f"α={a}: {fmt_num(x['median'])}" for a, x in per_alpha.items())
    measured = (f"rates after switch {rates_txt}; spread {fmt_spread(sp, '{:.1%}')} "
                f"(plain GD spread {fmt_spread(gsp, '{:.0%}')})")
    expected = f"spread (max − min)/median ≤ {max_spread:.0%} across α"
    details = {"rate_after_switch": rate, "rate_per_alpha": per_alpha, "spread": sp,
               "spreads": spreads, "plain_gd_spread": gsp, "plain_gd_spreads": gd_spreads,
               "tau": s.tau, "window_after_switch": list(s.c7_window), "iterations": s.c7_iters,
               "records": records}
    curves, vlines = [], []
    sr0 = runs[0]
    tr0, gd0 = sr0.get("rebalanced"), sr0.get("asym_over")
    horizon = 0.0
    for i, a in enumerate(s.alphas):
        t, err = _curve(tr0, i)
        horizon = max(horizon, float(t[-1]) if t.size else 0.0)
        curves.append(plots.Curve(t, err, label=f"rebalanced, {_alpha_label(a)}", color=plots.color(i)))
        sw = int(np.atleast_1d(tr0.extras.get("switch_iteration", [-1] * len(s.alphas)))[i])
        if sw >= 0:
            vlines.append(plots.VLine(sw, label=f"switch, {_alpha_label(a)}", color=plots.color(i)))
    for i, a in enumerate(s.alphas):
        if a in s.c4_alphas:
            tg, eg = _curve(gd0, list(s.c4_alphas).index(a))
            keep = tg <= max(horizon, 1.0)
            curves.append(plots.Curve(tg[keep], eg[keep], label=f"plain GD, {_alpha_label(a)}",
                                      color=plots.color(i), linestyle="--", linewidth=1.0))
    p1 = plots.Panel(f"seed {sr0.seed}: F Gᵀ, k = {s.k}, η = {s.eta:g}, τ = {s.tau:g}", "iteration t",
                     "error ‖F_tG_tᵀ − M*‖_F", curves=curves, vlines=vlines, legend_loc="lower left")
    rate_curves = []
    for j, sr in enumerate(runs):
        rs = [r for r in records if r["seed"] == sr.seed]
        first = j == 0
        rate_curves.append(plots.Curve([r["alpha"] for r in rs], [r["rate_after_switch"] for r in rs],
                                       label="rebalanced (after switch)" if first else None,
                                       color=plots.color(0), marker="o",
                                       linestyle="-" if first else "none", alpha=1 if first else .5))
        rate_curves.append(plots.Curve([r["alpha"] for r in rs], [r["plain_gd_rate"] for r in rs],
                                       label="plain GD" if first else None, color=plots.color(1),
                                       marker="s", linestyle="--" if first else "none",
                                       alpha=1 if first else .5))
    p2 = plots.Panel("linear rate vs α", "initialization scale α", "rate −d log err / dt",
                     curves=rate_curves, xscale="log", xticks=list(s.alphas),
                     note=f"post-switch spread (median) {fmt_num(sp['median'], '{:.1%}')}")
    figures = _save(out_dir, "c7_rebalancing", [p1, p2], f"C7: {TITLES['C7']}")
    return _result("C7", measured, expected, v, details, figures)


# ---------------------------------------------------------------------- C8
def claim_c8(runs, settings, out_dir=None) -> ClaimResult:
    """C8: GD changes Δ = FᵀF − GᵀG only by O(η²) per step (so O(η) over a fixed time ηt)."""
    s = settings
    v = _Verdict()
    lo, hi = CRITERIA["c8_eta_ratio"]
    max_rel = CRITERIA["c8_max_relative_drift"]
    records = []
    for sr in runs:
        d = sr.get("drift")
        full, half = d["eta"], d["half"]
        for b, a in enumerate(s.c8_alphas):
            where = f"seed {sr.seed}, α={a:g}"
            with np.errstate(all="ignore"):
                drift_f, drift_h = full.drift[:, b], half.drift[:, b]
                max_f, max_h = np.nanmax(np.r_[drift_f, np.nan]), np.nanmax(np.r_[drift_h, np.nan])
                growth = np.nanmax(np.r_[full.growth[:, b], np.nan])
                slack = 1e-9 * full.bound[:, b] + 1e-14
                bound_ok = bool(np.all(drift_f <= full.bound[:, b] + slack)
                                and np.all(drift_h <= half.bound[:, b] + 1e-9 * half.bound[:, b] + 1e-14))
                ratio = max_f / max_h if max_h > 0 else math.nan
                rel = max_f / growth if growth > 0 else math.nan
            status = "diverged" if "diverged" in (full.status[b], half.status[b]) else "ok"
            records.append({"seed": sr.seed, "alpha": a, "status": status, "max_drift": max_f,
                            "max_drift_half_eta": max_h, "eta_ratio": ratio,
                            "final_bound": float(full.bound[-1, b]), "bound_holds": bound_ok,
                            "delta0_norm": float(full.delta0_norm[b]),
                            "drift_over_delta0": max_f / float(full.delta0_norm[b]),
                            "max_gram_change": growth, "drift_over_gram_change": rel,
                            "final_rel_error": float(full.rel_error[-1, b])})
            if v.diverged(status, where):
                continue
            v.require(bound_ok, f"{where}: drift exceeds η²Σ(‖∇_F f‖² + ‖∇_G f‖²)")
            v.require(np.isfinite(ratio) and lo <= ratio <= hi,
                      f"{where}: drift(η)/drift(η/2) = {fmt_num(ratio)} outside [{lo:g}, {hi:g}]")
            v.require(np.isfinite(rel) and rel <= max_rel,
                      f"{where}: drift/‖FᵀF − F₀ᵀF₀‖ = {fmt_num(rel)} > {max_rel:g}")
    ratio = spread([r["eta_ratio"] for r in records])
    rel = spread([r["drift_over_gram_change"] for r in records])
    rel0 = spread([r["drift_over_delta0"] for r in records])
    drift = spread([r["max_drift"] for r in records])
    n_bound = sum(bool(r["bound_holds"]) for r in records)
    measured = (f"max drift {fmt_spread(drift, '{:.2g}')} = {fmt_spread(rel, '{:.1%}')} of "
                f"‖FᵀF − F₀ᵀF₀‖ ({fmt_spread(rel0, '{:.0%}')} of ‖Δ₀‖); drift(η)/drift(η/2) "
                f"{fmt_spread(ratio)}; bound held {n_bound}/{len(records)}")
    expected = (f"drift ≤ η²Σ‖∇f‖²; O(η): ratio in [{lo:g}, {hi:g}]; "
                f"≤ {max_rel:.0%} of ‖FᵀF − F₀ᵀF₀‖")
    details = {"max_drift": drift, "eta_ratio": ratio, "drift_over_gram_change": rel,
               "drift_over_delta0": rel0, "bound_holds": n_bound, "n": len(records),
               "iterations_eta": s.c8_iters, "iterations_half_eta": 2 * s.c8_iters,
               "alphas": list(s.c8_alphas), "records": records}
    sr0 = runs[0]
    d0 = sr0.get("drift")
    c1, c2 = [], []
    for i, a in enumerate(s.c8_alphas):
        col = plots.color(i)
        f, h = d0["eta"], d0["half"]
        c1.append(plots.Curve(f.iterations, f.drift[:, i], label=f"‖Δ_t − Δ₀‖_F, {_alpha_label(a)}",
                              color=col, marker="o", markersize=3))
        c1.append(plots.Curve(f.iterations, f.bound[:, i], label=f"bound η²Σ‖∇f‖², {_alpha_label(a)}",
                              color=col, linestyle=":", linewidth=1.2))
        c2.append(plots.Curve(s.eta * f.iterations, f.drift[:, i], label=f"η = {s.eta:g}, {_alpha_label(a)}",
                              color=col, marker="o", markersize=3))
        c2.append(plots.Curve(s.eta / 2 * h.iterations, h.drift[:, i],
                              label=f"η = {s.eta / 2:g}, {_alpha_label(a)}", color=col,
                              linestyle="--", marker="^", markersize=3))
    p1 = plots.Panel(f"seed {sr0.seed}: drift and its bound, η = {s.eta:g}", "iteration t (log)",
                     "‖Δ_t − Δ₀‖_F", curves=c1, xscale="log", legend_loc="lower right")
    p2 = plots.Panel("halving η halves the drift (same time ηt)", "time η·t (log)", "‖Δ_t − Δ₀‖_F",
                     curves=c2, xscale="log", legend_loc="lower right",
                     note=f"drift(η)/drift(η/2) (median) {fmt_num(ratio['median'])}")
    figures = _save(out_dir, "c8_imbalance_drift", [p1, p2], f"C8: {TITLES['C8']}")
    return _result("C8", measured, expected, v, details, figures)


CLAIMS = {
    "C1": claim_c1, "C2": claim_c2, "C3": claim_c3, "C4": claim_c4,
    "C5": claim_c5, "C6": claim_c6, "C7": claim_c7, "C8": claim_c8,
}


# --------------------------------------------------------------- reproduce
def seed_list(seeds, default: int) -> list[int]:
    """``None`` → 0..default−1; an int N → 0..N−1; a sequence → those seeds."""
    if seeds is None:
        return list(range(default))
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        return list(range(int(seeds)))
    try:
        out = [int(x) for x in seeds]
    except (TypeError, ValueError):
        raise ValueError(f"seeds must be None, an int >= 1 or a list of ints >= 0, got {seeds!r}") from None
    if not out or min(out) < 0 or len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct non-negative integers, got {seeds!r}")
    return out


def _failed(cid: str, exc: BaseException) -> ClaimResult:
    return ClaimResult(cid, TITLES[cid], "n/a", "n/a", False,
                       {"traceback": traceback.format_exc()}, [],
                       f"experiment failed: {type(exc).__name__}: {exc}")


def run_claims(ids, settings: ClaimSettings, seeds, out_dir=None, *, progress: bool = False,
               catch: bool = True, workers: int | None = 1) -> list[ClaimResult]:
    """Run the claims ``ids`` over ``seeds`` (runs shared between claims); no files but figures.

    The runs the claims need are built first, ``workers`` processes at a time
    (see :func:`~matsense.experiments.runs.compute_runs`); the analysis then
    runs here.
    """
    log = _runs.stderr_log if progress else None
    runs = [_runs.SeedRuns(settings, s, log) for s in seeds]
    names = list(dict.fromkeys(name for cid in ids for name in _runs.CLAIM_RUNS[cid]))
    used = _runs.compute_runs(runs, names, workers, progress)
    if log and used > 1:
        log(f"built {len(names) * len(runs)} runs in {used} worker processes")
    results = []
    for cid in ids:
        start = time.perf_counter()
        if log:
            log(f"{cid}: {TITLES[cid]}")
        try:
            res = CLAIMS[cid](runs, settings, out_dir)
        except Exception as exc:  # an experiment bug must not hide the other claims
            if not catch:
                raise
            res = _failed(cid, exc)
        res.seconds = time.perf_counter() - start
        res.seeds = list(seeds)
        res.settings = settings.as_dict()
        results.append(res)
        if log:
            log(f"{cid}: {'holds' if res.holds else 'does NOT hold'} ({res.seconds:.1f} s)")
    return results


def reproduce(out_dir, *, quick: bool = False, seeds=None, progress: bool = False,
              claims=None, settings: ClaimSettings | None = None,
              workers: int | None = None) -> list[ClaimResult]:
    """Reproduce the claims C1–C8 of PAPER.md §5; write summary.json, figures and report.html.

    Parameters
    ----------
    out_dir : path
        Output directory (created). Figures go to ``out_dir/figures`` as PNG
        and SVG; ``summary.json`` and ``report.html`` to ``out_dir``.
    quick : bool
        Use :meth:`ClaimSettings.quick` (2 seeds, shorter runs, ≈ 30 s)
        instead of :meth:`ClaimSettings.full` (3 seeds, ≈ 3 min).
    seeds : None, int or sequence of int
        ``None``: the mode's default count; ``N``: seeds 0…N−1; a sequence:
        those seeds. Seed s draws problem s and the initial factors from
        (s, role), see :func:`~matsense.experiments.settings.init_seed`.
    progress : bool
        Log each run and verdict to stderr.
    claims : sequence of str or str, optional
        A subset of 'C1'…'C8' (default all), e.g. ``["C4", "C7"]`` or ``"C4,C7"``.
    settings : ClaimSettings, optional
        Override every setting (then ``quick`` is ignored); e.g.
        ``ClaimSettings.quick().replace(eta=50.0)`` to see a diverging run.
    workers : int, optional
        Processes that build the runs, one (seed, run) at a time (default: the
        usable cores, at most the number of runs; 1: all in this process).
        Every run uses one BLAS / kernel thread wherever it runs, so the
        results are bitwise the same for any ``workers``. Workers are
        spawned: a script calling this with ``workers`` ≠ 1 needs an
        ``if __name__ == "__main__":`` guard (the CLI has one).

    Returns
    -------
    list of ClaimResult, in claim order.
    """
    from .. import report
    from .._validate import not_in_worker_bootstrap

    not_in_worker_bootstrap("matsense.experiments.reproduce()")
    if settings is None:
        settings = ClaimSettings.quick() if quick else ClaimSettings.full()
    if isinstance(claims, str):
        claims = [c for c in claims.replace(" ", ",").split(",") if c]
    ids = list(CLAIMS) if claims is None else [str(c).strip().upper() for c in claims]
    unknown = [c for c in ids if c not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claims {unknown}; known: {', '.join(CLAIMS)}")
    seeds = seed_list(seeds, settings.n_seeds)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = run_claims(ids, settings, seeds, out_dir, progress=progress, workers=workers)
    write_summary(results, out_dir / "summary.json")
    report.publish_section(out_dir, "claims", report.claims_section(
        results, settings=settings.as_dict(), seconds=time.perf_counter() - start), order=1)
    return results
