"""HB1: heavy-ball GD with k = r converges linearly, and faster than GD at the same η."""

from dataclasses import dataclass

import numpy as np

from matsense import init, plots, run
from matsense.experiments.claims.base import Claim, Measurement, Verdict, fit_dict
from matsense.experiments.declare import Param, RunSpec
from matsense.methods import GD
from matsense.rates import linear_rate

from .method import HeavyBallGD


def gd_and_heavy_ball(sr):
    """The run HB1 reads, for one seed (``sr``: its problems, start seeds and settings): GD and
    heavy-ball GD with k = r from the same small random start."""
    s = sr.settings
    problem = sr.problem(False)
    start = init.small_random(problem, s.r, 0.05, seed=sr.init_seed("asymmetric"))
    methods = {"GD": GD(s.eta), "heavy ball": HeavyBallGD(s.eta, momentum=s.hb1_momentum)}
    return {
        label: run(problem, method, start, s.hb1_iters, tol=1e-12)
        for label, method in methods.items()
    }


@dataclass(frozen=True)
class Criteria:
    min_r2: float = 0.99
    min_speedup: float = 1.0  # heavy ball's linear rate −d log(error)/dt over GD's


class HeavyBallClaim(Claim):
    id = "HB1"  # the entry point's name: `matsense reproduce --claims HB1`
    title = "Heavy-ball GD (β = 0.5) with k = r converges linearly, faster than GD"
    caption = "Relative error of GD and heavy-ball GD, k = r, from the same small random start."
    stem = "hb1_heavy_ball"
    # settings.hb1_iters, `--set hb1_momentum=0.3`; quick mode (reproduce --quick) runs 300
    parameters = (
        Param("hb1_iters", 400, "int", "iterations of both runs", quick=300),
        Param("hb1_momentum", 0.5, "float", "heavy ball's β"),
    )
    # built once per seed (in a worker process if there are several), cost: hb1_iters
    runs = (RunSpec("hb1_runs", gd_and_heavy_ball, cost="hb1_iters"),)
    criteria = Criteria()

    def measure(self, runs, settings) -> Measurement:
        records, curves = [], []
        for sr in runs:  # one SeedRuns per seed: sr.get(name) is that seed's run
            rates, seed_curves = {}, {}
            for label, traj in sr.get("hb1_runs").items():
                t, err = traj.history["iteration"], traj.history["rel_error"]
                fit = linear_rate(t, err, window=(1e-3, 1e-11))
                rates[label], seed_curves[label] = fit.value, (t, err)
            # traj, fit: heavy ball's (the last of the two)
            records.append(
                {
                    "seed": sr.seed,
                    "alpha": 0.05,
                    "status": str(traj.status),
                    "fit": fit_dict(fit),
                    "speedup": rates["heavy ball"] / rates["GD"],
                }
            )
            curves.append(seed_curves)
        speedup = float(np.median([r["speedup"] for r in records]))
        return Measurement(
            records,
            f"linear, {speedup:.2f}× GD's rate",
            f"linear, faster than GD (> {self.criteria.min_speedup:g}×)",
            {"speedup": speedup, "records": records},
            per_seed=curves,
        )

    def judge(self, m, settings) -> Verdict:
        v = Verdict(self.criteria.min_r2)
        for rec, where in v.converging(m.records):
            v.fit(rec["fit"], where, "linear fit")
            v.require(
                rec["speedup"] > self.criteria.min_speedup,
                f"{where}: heavy ball not faster ({rec['speedup']:.2f}× GD's rate)",
            )
        return v

    def panels(self, m, runs, settings) -> list:
        curves = [
            c
            for i, label in enumerate(("GD", "heavy ball"))
            for c in plots.seeded_curves(
                *zip(*(seed[label] for seed in m.per_seed)), label=label, color=plots.color(i)
            )
        ]
        return [
            plots.Panel(
                f"k = r = {settings.r}, η = {settings.eta:g}",
                "iteration t",
                "relative error",
                curves=curves,
            )
        ]
