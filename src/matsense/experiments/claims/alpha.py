"""C4: asymmetric over-parameterization (F Gᵀ, k > r): linear, with a rate ∝ α² of order η·λ_min(Δ₀)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import init as _init
from ... import plots
from ...rates import linear_rate
from ..declare import Param, RunSpec, fit_window, positive_int, positive_values
from ..predict import escape_iters, imbalance_rate, round_budget
from ..results import fmt_num, fmt_spread, spread
from ..runs import LabeledRun, batch, long_record_every
from .base import (
    MIN_R2,
    Claim,
    Measurement,
    Verdict,
    alpha_label,
    alpha_sweep,
    fit_dict,
    seed_curves,
    within,
    within_factor,
)


def _c4_budget(s) -> int:
    """The slowest α of the sweep: escape, then log(1/window end) nats at η·λ_min(Δ₀)."""
    F = s.budget_factor
    c4_nats = math.log(1.0 / s.c4_window[1])
    return round_budget(
        max(F * (escape_iters(s, a) + c4_nats / imbalance_rate(s, a)) for a in s.c4_alphas)
    )


#: C4's parameters (plain GD on F Gᵀ with k > r, also C7's contrast).
PARAMS = (
    Param(
        "c4_alphas",
        None,
        "tuple | None",
        "the α swept (None: the α grid, quick_alphas of it)",
        derive=alpha_sweep,
        check=positive_values,
    ),
    Param(
        "c4_iters",
        None,
        "int | None",
        "iterations of the F Gᵀ, k > r run (None: the budget rule)",
        derive=_c4_budget,
        check=positive_int,
    ),
    Param(
        "c4_window",
        (1e-4, 1e-8),
        "tuple",
        "linear-fit window (error / starting error)",
        quick=(1e-4, 1e-6),
        check=fit_window,
    ),
)


def _asym_over(sr):
    s = sr.settings
    p = sr.problem(False)
    alphas, seeds = batch(s.c4_alphas, sr.init_seed("asymmetric"))
    # Stop each trajectory just below the fit window: the window is relative to the
    # starting error, which is ‖M*‖_F up to O(α²), so this tol is on the same scale.
    tol = s.c4_window[1] / 2
    traj = sr.gd(
        p,
        _init.small_random(p, s.k, alphas, ratio=s.ratio, seed=seeds),
        s.c4_iters,
        tol=tol,
        record_every=long_record_every(s, s.c4_iters),
    )
    return LabeledRun(traj, alphas)


ASYM_OVER = RunSpec(
    "asym_over",
    _asym_over,
    "c4_iters",
    "GD on F Gᵀ, k > r, every α of c4_alphas, stopped at the window's lower end",
)


@dataclass(frozen=True)
class AlphaCriteria:
    """Every fit linear (r² ≥ ``min_r2``); every seed's log-log slope of rate vs α in
    ``slope`` ± ``slope_tol``; every rate within a factor ``rate_factor`` of η·λ_min(Δ₀)."""

    min_r2: float = MIN_R2
    slope: float = 2.0
    slope_tol: float = 0.3
    rate_factor: float = 3.0


def _usable(rec, min_r2) -> bool:
    """A rate that enters the slope: not diverged, a valid fit with r² ≥ min_r2."""
    fit = rec["fit"]
    return rec["status"] != "diverged" and np.isfinite(fit["value"]) and fit["r2"] >= min_r2


class AlphaClaim(Claim):
    id = "C4"
    title = "asymmetric F Gᵀ, k > r: linear, rate ∝ α²"
    caption = (
        "Left: GD on F Gᵀ with k > r, error vs iteration per α: linear, slower for smaller α. "
        "Right: the fitted rate vs α (log-log) with an α² line and η·λ_min(Δ₀)."
    )
    runs = (ASYM_OVER,)
    parameters = PARAMS
    stem = "c4_asymmetric_over"
    criteria = AlphaCriteria()

    def measure(self, runs, settings) -> Measurement:
        s = settings
        c = self.criteria
        records, slopes = [], []
        alphas = np.asarray(s.c4_alphas, dtype=float)
        for sr in runs:
            seed_records, seed_slope = _seed_rates(sr, s, alphas, c.min_r2)
            records += seed_records
            slopes.append(seed_slope)
        slope = spread([x["slope"] for x in slopes])
        per_alpha = {
            f"{a:g}": spread([r["rate"] for r in records if r["alpha"] == a]) for a in alphas
        }
        ratio = spread([r["rate_over_eta_lambda_min"] for r in records])
        rates_txt = ", ".join(f"α={a}: {fmt_spread(sp)}" for a, sp in per_alpha.items())
        measured = (
            f"slope {fmt_spread(slope)}; rates {rates_txt}; "
            f"rate/(η λ_min(Δ₀)) {fmt_spread(ratio, '{:.2g}')}"
        )
        expected = (
            f"slope {c.slope:g} ± {c.slope_tol:g}; rate of order η·λ_min(Δ₀) "
            f"(within ×{c.rate_factor:g})"
        )
        details = {
            "slope": slope,
            "slopes": slopes,
            "rate_per_alpha": per_alpha,
            "rate_over_eta_lambda_min": ratio,
            "window": list(s.c4_window),
            "iterations": s.c4_iters,
            "alphas": alphas.tolist(),
            "records": records,
        }
        return Measurement(records, measured, expected, details, per_seed=slopes)

    def judge(self, m, settings) -> Verdict:
        c = self.criteria
        v = Verdict(c.min_r2)
        fac = c.rate_factor
        for seed_slope in m.per_seed:
            seed = seed_slope["seed"]
            for rec in (r for r in m.records if r["seed"] == seed):
                where = f"seed {seed}, α={rec['alpha']:g}"
                ok = not v.diverged(rec["status"], where) and v.fit(rec["fit"], where, "linear fit")
                if ok:
                    ratio = rec["rate_over_eta_lambda_min"]
                    v.require(
                        within_factor(ratio, fac),
                        f"{where}: rate/(η λ_min(Δ₀)) = "
                        f"{fmt_num(ratio)} outside [1/{fac:g}, {fac:g}]",
                    )
            v.require(
                within(seed_slope["slope"], c.slope, c.slope_tol),
                f"seed {seed}: slope of rate vs α {fmt_num(seed_slope['slope'])} outside "
                f"{c.slope:g} ± {c.slope_tol:g}",
            )
        return v

    def panels(self, m, runs, settings) -> list:
        s = settings
        alphas = np.asarray(s.c4_alphas, dtype=float)
        curves = [
            c
            for i, a in enumerate(alphas)
            for c in plots.seeded_curves(
                *seed_curves(runs, "asym_over", float(a)),
                label=alpha_label(a),
                color=plots.color(i),
            )
        ]
        p1 = plots.Panel(
            f"F Gᵀ, k = {s.k} > r = {s.r}, η = {s.eta:g}",
            "iteration t",
            "error ‖F_tG_tᵀ − M*‖_F",
            curves=curves,
            note=f"rates fitted where error/error₀ ∈ [{s.c4_window[1]:g}, {s.c4_window[0]:g}]",
        )
        rate_curves = _rate_curves(m, runs, alphas)
        p2 = plots.Panel(
            "linear rate vs α",
            "initialization scale α",
            "rate −d log err / dt",
            curves=rate_curves,
            xscale="log",
            xticks=list(alphas),
            note=f"log-log slope (median) {fmt_num(m.details['slope']['median'])}",
        )
        return [p1, p2]


def _seed_rates(sr, s, alphas, min_r2) -> tuple:
    """One seed's records (the fitted rate per α next to η·λ_min(Δ₀)) and its log-log slope of
    rate vs α over the usable rates."""
    run = sr.get("asym_over")
    # Δ₀ = F₀ᵀF₀ − G₀ᵀG₀ of each start, as the run stored it (no start redrawn)
    delta0 = np.stack([run[float(a)].start_imbalance for a in alphas])
    lam = np.linalg.eigvalsh(delta0)[:, 0]
    records, rate_list = [], []
    for b, a in enumerate(alphas):
        t, err = run.curve(float(a))
        fit = linear_rate(t, err, window=s.c4_window)
        scale = s.eta * float(lam[b])
        ratio = fit.value / scale if scale > 0 else math.nan
        rec = {
            "seed": sr.seed,
            "alpha": float(a),
            "status": run.status(float(a)),
            "rate": fit.value,
            "fit": fit_dict(fit),
            "lambda_min_delta0": float(lam[b]),
            "eta_lambda_min": scale,
            "rate_over_eta_lambda_min": ratio,
        }
        records.append(rec)
        rate_list.append(fit.value if _usable(rec, min_r2) else math.nan)
    rates = np.asarray(rate_list)
    good = np.isfinite(rates) & (rates > 0)
    if good.sum() >= 2:
        seed_slope = float(np.polyfit(np.log(alphas[good]), np.log(rates[good]), 1)[0])
    else:
        seed_slope = math.nan
    return records, {"seed": sr.seed, "slope": seed_slope, "alphas_used": alphas[good].tolist()}


def _rate_curves(m, runs, alphas) -> list:
    """The fitted rates vs α per seed, η·λ_min(Δ₀) of the first, and an α² line through the
    median rate at the first α."""
    rate_curves = []
    for j, sr in enumerate(runs):
        rs = [r for r in m.records if r["seed"] == sr.seed]
        rate_curves.append(
            plots.Curve(
                [r["alpha"] for r in rs],
                [r["rate"] for r in rs],
                label="fitted rate" if j == 0 else None,
                color=plots.color(0),
                linestyle="-" if j == 0 else "none",
                marker="o",
                alpha=1.0 if j == 0 else 0.5,
            )
        )
        if j == 0:
            rate_curves.append(
                plots.Curve(
                    [r["alpha"] for r in rs],
                    [r["eta_lambda_min"] for r in rs],
                    label="η·λ_min(Δ₀)",
                    color=plots.color(3),
                    linestyle="none",
                    marker="s",
                )
            )
    med = m.details["rate_per_alpha"][f"{alphas[0]:g}"]["median"]
    if np.isfinite(med):
        aa = np.geomspace(alphas.min() * 0.8, alphas.max() * 1.25, 20)
        rate_curves.append(
            plots.Curve(
                aa,
                med * (aa / alphas[0]) ** 2,
                label=f"∝ α² (through the median at α = {alphas[0]:g})",
                color="k",
                linestyle="--",
                linewidth=1.2,
            )
        )
    return rate_curves


C4 = AlphaClaim()
