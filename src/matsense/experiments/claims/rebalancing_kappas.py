"""C7 across condition numbers: for each κ of ``c7_kappas``, rebalanced, plain and k = r GD from
the same start (the run), their rates per seed (the records) and the panel that draws them."""

from __future__ import annotations

import math

import numpy as np

from ... import init as _init
from ... import plots
from ...methods import GD, RebalancedGD
from ...rates import linear_rate, phase_rate
from ...run import run_together
from ..declare import RunSpec
from .base import fit_dict


def _rebalancing_kappas(sr):
    """The fix across condition numbers: for each κ of ``c7_kappas`` (σ geometric, the family's
    α and budgets derived for that κ), rebalanced GD, plain GD and k = r GD from the same start,
    run together (one stacked operator pass per iteration)."""
    s = sr.settings
    out = []
    for kappa in s.c7_kappas:
        sk = s.with_kappa(kappa)
        p = sk.make_problem(False, sr.seed)
        a = sk.alphas[0]
        F0, G0 = _init.small_random(p, sk.k, a, ratio=sk.ratio, seed=sr.init_seed("asymmetric"))
        runs = [
            (RebalancedGD(step_size=sk.eta, tau=sk.tau), (F0, G0)),
            (GD(sk.eta), (F0, G0)),
            (GD(sk.eta), (F0[:, : sk.r], G0[:, : sk.r])),
        ]
        iters = max(sk.c7_iters, sk.exact_iters, sk.c4_iters)
        trs = run_together(
            p,
            runs,
            iters,
            tol=sk.c7_tol,
            record_every=sk.record_every,
            divergence_factor=sk.divergence_factor,
        )
        out.append(
            {
                "kappa": float(kappa),
                "alpha": a,
                "singular_values": list(sk.singular_values),
                "rebalanced": trs[0],
                "plain": trs[1],
                "exact": trs[2],
            }
        )
    return out


REBALANCING_KAPPAS = RunSpec(
    "rebalancing_kappas",
    _rebalancing_kappas,
    "c4_iters",
    "rebalanced, plain and k = r GD for each κ of c7_kappas",
)


def kappa_records(runs, s) -> list:
    """Rates of rebalanced, plain and k = r GD for each κ of ``c7_kappas``, every seed."""
    out = []
    for sr in runs:
        for item in sr.get("rebalancing_kappas"):
            reb, plain, exact = item["rebalanced"], item["plain"], item["exact"]
            h = reb.history
            fit, _ = phase_rate(reb.phases, h["iteration"], h["error"], window=s.c7_window)
            ph, eh = plain.history, exact.history
            plain_rate = linear_rate(ph["iteration"], ph["error"], window=s.c4_window).value
            exact_rate = linear_rate(eh["iteration"], eh["error"], window=s.exact_window).value
            ok = reb.extras.get("switch_iteration", -1) >= 0
            out.append(
                {
                    "seed": sr.seed,
                    "kappa": item["kappa"],
                    "alpha": item["alpha"],
                    "status": str(reb.status),
                    "switch_iteration": int(reb.extras.get("switch_iteration", -1)),
                    "rate_after_switch": fit.value if ok else math.nan,
                    "fit": fit_dict(fit) if ok else None,
                    "plain_gd_rate": plain_rate,
                    "exact_rate": exact_rate,
                    "ratio_to_exact": (fit.value if ok else math.nan) / exact_rate,
                    "plain_over_exact": plain_rate / exact_rate,
                }
            )
    return out


def kappa_panel(kappas) -> plots.Panel:
    """The three rates (median over seeds) against κ."""
    ks = sorted({r["kappa"] for r in kappas})

    def median(key):
        return [float(np.nanmedian([r[key] for r in kappas if r["kappa"] == k])) for k in ks]

    curves = [
        plots.Curve(
            ks, median("exact_rate"), label="k = r GD", color="k", marker="^", linestyle=":"
        ),
        plots.Curve(
            ks,
            median("rate_after_switch"),
            label="rebalanced (after switch)",
            color=plots.color(0),
            marker="o",
        ),
        plots.Curve(
            ks,
            median("plain_gd_rate"),
            label="plain GD, k > r (largest α)",
            color=plots.color(1),
            marker="s",
            linestyle="--",
        ),
    ]
    return plots.Panel(
        "the fix across condition numbers (median over seeds)",
        "condition number κ = σ₁/σ_r",
        "rate −d log err / dt",
        curves=curves,
        xscale="log",
        xticks=ks,
    )
