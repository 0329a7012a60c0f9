"""Side-by-side comparison of the paper's GD / rebalanced GD with the peer methods (PAPER.md §4).

On a grid κ ∈ {1, 10, 100} × k ∈ {r, 2r} every method runs from its usual
initialization until the relative error ‖P − M*‖_F/‖M*‖_F reaches ``tol``
(1e-10) or the iteration budget ends, over several seeds (seed s draws the
problem and the random initialization). Measured: iterations and wall time to
``tol`` (or the error reached), per seed and as medians.

Outputs (``compare(out_dir)``): ``compare.json`` (settings, records), a
Markdown table ``compare.md``, the curves ``compare_curves.csv``, one line
per finished run in ``compare_runs.jsonl`` (written as the runs end) and one
figure per setting (error vs iteration and vs time, PNG and SVG).
:func:`compare_html_section` turns records and figure paths into an HTML
section for the report; :func:`register` adds the ``matsense compare``
subcommand to an argparse parser.

Settings of the full comparison (the reference runs of PAPER.md §4): n = 100,
r = 5, m = 5nr, σ_i linearly spaced from 1 to 1/κ. The n = 100 operator holds
2500 × 10⁴ float64 (200 MB) and an operator pass takes ~15 ms on two CPU
cores, so the full comparison takes ≈ 17 min per seed (≈ 50 min for the
default 3 seeds, measured); ``quick`` runs a small problem in ≈ 20 s.
"""

from __future__ import annotations

import csv
import html
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import _validate as V
from . import backend, report
from . import init as _init
from .methods import GD, PrecGD, RebalancedGD, SVP, AlternatingPrecGD, ScaledGD, ScaledGDLambda
from .methods.base import product
from .problems import Problem
from .run import run


# --------------------------------------------------------------------------- what runs
@dataclass(frozen=True)
class Entry:
    """One method of the comparison with its initialization.

    ``make_method(sigma_1)`` builds the method (GD's step is 0.5/σ_1);
    ``init`` names the start: 'spectral' (top-k SVD of 𝒜*(y)), 'small_random'
    (F_0, G_0 at α/√n and α/(3√n)), 'symmetric_random' (X_0 at α/√n) or
    'zeros' (M_0 = 0). ``symmetric``: runs X Xᵀ on the PSD version of the
    problem (same seed, same law of A) instead of F Gᵀ on the general one.
    """

    key: str
    label: str
    make_method: Callable[[float], object]
    init: str
    symmetric: bool = False
    hyper: str = ""


ENTRIES: tuple[Entry, ...] = (
    Entry("gd", "GD (vanilla, spectral)", lambda s1: GD(0.5 / s1), "spectral",
          hyper="η = 0.5/σ₁"),
    Entry("rebalanced_gd", "Rebalanced GD (paper §5, small random)",
          lambda s1: RebalancedGD(0.5 / s1), "small_random", hyper="η = 0.5/σ₁, τ = 1e-2"),
    Entry("scaledgd", "ScaledGD (spectral)", lambda s1: ScaledGD(0.5), "spectral",
          hyper="η = 0.5"),
    Entry("apgd", "Alternating PrecGD (small random)", lambda s1: AlternatingPrecGD(1.0),
          "small_random", hyper="η = 1"),
    Entry("svp", "SVP (M₀ = 0)", lambda s1: SVP(0.5), "zeros", hyper="η = 0.5"),
    Entry("gd_sym", "GD on XXᵀ (small random)", lambda s1: GD(0.5 / s1), "symmetric_random",
          symmetric=True, hyper="η = 0.5/σ₁"),
    Entry("precgd", "PrecGD on XXᵀ (small random)", lambda s1: PrecGD(0.5), "symmetric_random",
          symmetric=True, hyper="η = 0.5, λ_t = √(½‖r_t‖²)"),
    Entry("scaledgd_lambda", "ScaledGD(λ) on XXᵀ (small random)",
          lambda s1: ScaledGDLambda(0.5, 1e-3), "symmetric_random", symmetric=True,
          hyper="η = 0.5, λ = 1e-3"),
)
ENTRY_KEYS = tuple(e.key for e in ENTRIES)


def _make_init(entry: Entry, problem, k: int, alpha: float, seed: int):
    if entry.init == "spectral":
        return _init.spectral_symmetric(problem, k) if entry.symmetric else _init.spectral(problem, k)
    if entry.init == "zeros":
        return _init.zeros_symmetric(problem, k) if entry.symmetric else _init.zeros(problem, k)
    if entry.init == "small_random":
        return _init.small_random(problem, k, alpha, ratio=1 / 3, normalization="sqrt_n", seed=seed)
    if entry.init == "symmetric_random":
        return _init.symmetric_random(problem, k, alpha, normalization="sqrt_n", seed=seed)
    raise ValueError(f"unknown init {entry.init!r} in compare entry {entry.key!r}")


@dataclass(frozen=True)
class CompareSettings:
    """The grid and budgets of a comparison.

    m = ``m_factor``·n·r measurements; k = multiplier·r for each of
    ``k_multipliers``; ``max_iters`` per run, except the methods named in
    ``max_iters_override`` (key → budget).
    """

    n: int = 100
    r: int = 5
    m_factor: int = 5
    kappas: tuple = (1.0, 10.0, 100.0)
    k_multipliers: tuple = (1, 2)
    spacing: str = "linear"
    tol: float = 1e-10
    max_iters: int = 3000
    max_iters_override: tuple = ()
    alpha: float = 1e-3
    record_every: int = 1
    methods: tuple = ENTRY_KEYS
    name: str = "full"

    def __post_init__(self):
        V.int_in_range("n", self.n, 2)
        V.int_in_range("r", self.r, 1, self.n)
        V.int_in_range("m_factor", self.m_factor, 1)
        for kap in self.kappas:
            if V.positive_float("kappa", kap) < 1:
                raise ValueError(f"kappa must be >= 1, got {kap}")
        for mult in self.k_multipliers:
            V.int_in_range("k multiplier", mult, 1, max(1, self.n // self.r))
        V.positive_float("tol", self.tol)
        V.int_in_range("max_iters", self.max_iters, 1)
        V.positive_float("alpha", self.alpha)
        V.int_in_range("record_every", self.record_every, 1)
        unknown = [m for m in self.methods if m not in ENTRY_KEYS]
        if unknown or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {', '.join(ENTRY_KEYS)}, "
                             f"got {list(self.methods)}")

    @property
    def m(self) -> int:
        return self.m_factor * self.n * self.r

    def budget(self, key: str) -> int:
        return dict(self.max_iters_override).get(key, self.max_iters)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["m"] = self.m
        d["max_iters_override"] = dict(self.max_iters_override)
        d["kappas"] = list(self.kappas)
        d["k_multipliers"] = list(self.k_multipliers)
        d["methods"] = list(self.methods)
        return d


FULL = CompareSettings()
QUICK = CompareSettings(n=30, r=2, m_factor=5, max_iters=1500, max_iters_override=(),
                        name="quick")
DEFAULT_SEEDS = {"full": 3, "quick": 1}


# ------------------------------------------------------------ reference figures (PAPER §4)
def _reference(settings: CompareSettings, key: str, kappa: float, k: int):
    """The reference figure for this record, or None where PAPER.md §4 gives none.

    Returns a dict with 'text' and, where a number exists, 'iterations'
    (a value or a (lo, hi) range) or 'rel_error' and 'at_iteration'.
    """
    if (settings.n, settings.r, settings.m_factor, settings.spacing, settings.tol) != (100, 5, 5, "linear", 1e-10):
        return None
    r = settings.r
    if key == "scaledgd" and k == r:
        return {"text": "252–271 iterations (κ ∈ {1, 10, 100})", "iterations": (252, 271)}
    if key == "gd" and k == r:
        ref = {1.0: 273, 10.0: 1424}.get(float(kappa))
        if ref is not None:
            return {"text": f"{ref} iterations", "iterations": ref}
        if float(kappa) == 100.0:
            return {"text": "not reached in 3000 iterations", "iterations": None, "not_reached_in": 3000}
    if key == "precgd" and k == 2 * r:
        return {"text": "264–281 iterations (κ ∈ {1, 10, 100})", "iterations": (264, 281)}
    if key == "gd_sym" and k == 2 * r:
        return {"text": "rel. error still ≈ 3e-4 after 4000 iterations", "rel_error": 3e-4,
                "at_iteration": 4000}
    return None


def _reference_check(ref, rec) -> str | None:
    """'within ±20%', 'outside ±20%', 'agrees (not reached)', … — or None without a reference."""
    if ref is None:
        return None
    its = rec["iterations_to_tol"]
    if "not_reached_in" in ref:
        return "agrees (not reached)" if its is None or its > ref["not_reached_in"] else \
            f"disagrees (reached in {its})"
    if "rel_error" in ref:
        err = rec["final_rel_error"]
        if rec["status"] == "converged":
            return "disagrees (converged)"
        ratio = err / ref["rel_error"]
        return f"same order (×{ratio:.2g})" if 0.1 <= ratio <= 10 else f"differs (×{ratio:.2g})"
    target = ref["iterations"]
    if its is None:
        return "outside ±20% (not reached)"
    lo, hi = target if isinstance(target, tuple) else (target, target)
    return "within ±20%" if 0.8 * lo <= its <= 1.2 * hi else "outside ±20%"


# ------------------------------------------------------------------------- running
def _seed_list(seeds, settings_name: str) -> list[int]:
    if seeds is None:
        return list(range(DEFAULT_SEEDS.get(settings_name, 1)))
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return list(range(V.int_in_range("seeds", int(seeds), 1)))
    try:
        out = [V.int_in_range("seed", s, 0) for s in seeds]
    except TypeError:
        raise ValueError(f"seeds must be a count (int >= 1) or a list of seeds (ints >= 0), got {seeds!r}") from None
    if not out:
        raise ValueError("seeds must not be empty")
    return out


def _problem(settings: CompareSettings, kappa: float, symmetric: bool, seed: int) -> Problem:
    return Problem.gaussian(settings.n, r=settings.r, m=settings.m, kappa=kappa,
                            spacing=settings.spacing, symmetric=symmetric, seed=seed)


def _one_run(entry: Entry, problem: Problem, settings: CompareSettings, k: int, seed: int):
    sigma_1 = float(problem.meta["singular_values"][0])
    method = entry.make_method(sigma_1)
    x0 = _make_init(entry, problem, k, settings.alpha, seed)
    budget = settings.budget(entry.key)
    traj = run(problem, method, x0, budget, tol=settings.tol, record_every=settings.record_every)
    P = backend.to_numpy(product(tuple(f[None] for f in traj.factors)))[0]
    M_star = backend.to_numpy(problem.M_star)
    final_rel = float(np.linalg.norm(P - M_star) / np.linalg.norm(M_star))
    its = int(traj.iterations)
    result = {
        "seed": seed,
        "status": "not_reached" if traj.status == "max_iters" else str(traj.status),
        "iterations": its,
        "iterations_to_tol": its if traj.status == "converged" else None,
        "seconds": float(traj.wall_time),
        "seconds_per_iteration": float(traj.wall_time) / max(its, 1),
        "final_rel_error": final_rel,
        "budget": budget,
    }
    curve = {key: np.asarray(traj.history[key], dtype=float)
             for key in ("iteration", "time", "rel_error")}
    return result, curve, method


def _median(values):
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(statistics.median(vals)) if vals else None


def _aggregate(entry, method, settings, kappa, k, per_seed) -> dict:
    statuses = {p["status"] for p in per_seed}
    status = statuses.pop() if len(statuses) == 1 else "mixed"
    n_conv = sum(p["status"] == "converged" for p in per_seed)
    its = [p["iterations_to_tol"] for p in per_seed]
    rec = {
        "method": entry.key,
        "label": entry.label,
        "method_name": method.name,
        "method_class": type(method).__name__,
        "hyper_parameters": entry.hyper,
        "params": {f: getattr(method, f) for f in method.__dataclass_fields__ if f != "name"},
        "init": entry.init,
        "parameterization": "X Xᵀ" if entry.symmetric else "F Gᵀ",
        "problem": "symmetric PSD" if entry.symmetric else "asymmetric",
        "kappa": float(kappa),
        "k": int(k),
        "r": settings.r,
        "n": settings.n,
        "m": settings.m,
        "tol": settings.tol,
        "budget": settings.budget(entry.key),
        "seeds": [p["seed"] for p in per_seed],
        "n_seeds": len(per_seed),
        "n_converged": n_conv,
        "status": status,
        # Median over seeds; null unless every seed reached tol.
        "iterations_to_tol": (float(statistics.median(its)) if n_conv == len(per_seed) else None),
        "iterations_to_tol_range": ([min(i for i in its if i is not None), max(i for i in its if i is not None)]
                                    if n_conv else None),
        "seconds": _median([p["seconds"] for p in per_seed]),
        "seconds_per_iteration": _median([p["seconds_per_iteration"] for p in per_seed]),
        # Median over the seeds that did not diverge (a diverged run's last finite iterate,
        # error 1e5 or so, says nothing about the method; per_seed keeps it); null if all did.
        "final_rel_error": _median([p["final_rel_error"] for p in per_seed
                                    if p["status"] != "diverged"]),
        "per_seed": per_seed,
    }
    ref = _reference(settings, entry.key, kappa, k)
    rec["reference"] = None if ref is None else ref["text"]
    rec["reference_check"] = _reference_check(ref, rec)
    return rec


def _log(progress, msg):
    if progress:
        print(f"[compare] {msg}", file=sys.stderr, flush=True)


def compare(out_dir, *, quick: bool = False, seeds=None, progress: bool = False,
            settings: CompareSettings | None = None, figures: bool = True) -> list[dict]:
    """Run the comparison grid and write compare.json, compare.md, curves and figures.

    Parameters
    ----------
    out_dir : path
        Output folder (created).
    quick : bool
        Small problem (n = 30, r = 2, budget 1500): ≈ 20 s on 2 CPU cores.
        Default: the full reference setting (n = 100, r = 5, m = 5nr).
    seeds : int or sequence of int, optional
        A count N (seeds 0..N−1) or explicit seeds; seed s draws the problem
        and the random initializations. Default 3 (full) or 1 (quick).
    progress : bool
        Log each run to stderr.
    settings : CompareSettings, optional
        Overrides the preset chosen by ``quick`` (e.g. a tiny grid in tests).
    figures : bool
        Write the figures (PNG and SVG).

    Returns
    -------
    list of dict
        One record per method × (κ, k), with per-seed results and medians.
    """
    settings = settings if settings is not None else (QUICK if quick else FULL)
    seed_list = _seed_list(seeds, settings.name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = [e for e in ENTRIES if e.key in settings.methods]
    start = time.perf_counter()

    per: dict[tuple, list] = {}
    methods: dict[tuple, object] = {}
    curves: list[dict] = []
    # One line per finished run, so a long comparison shows (and keeps) its progress.
    log_path = out / "compare_runs.jsonl"
    log_path.write_text("")
    for seed in seed_list:
        for kappa in settings.kappas:
            problems = {}
            for sym in sorted({e.symmetric for e in entries}):
                problems[sym] = _problem(settings, kappa, sym, seed)
            for mult in settings.k_multipliers:
                k = mult * settings.r
                for entry in entries:
                    res, curve, method = _one_run(entry, problems[entry.symmetric], settings, k, seed)
                    per.setdefault((entry.key, kappa, k), []).append(res)
                    methods[(entry.key, kappa, k)] = method
                    curves.append({"method": entry.key, "kappa": float(kappa), "k": k, "seed": seed,
                                   **curve})
                    with open(log_path, "a") as fh:
                        fh.write(json.dumps({"method": entry.key, "kappa": float(kappa), "k": k,
                                             **res}) + "\n")
                    _log(progress, f"seed {seed} κ={kappa:g} k={k} {entry.key}: {res['status']} "
                                   f"after {res['iterations']} its, rel. error {res['final_rel_error']:.2e}, "
                                   f"{res['seconds']:.1f} s")
            del problems
    records = []
    for kappa in settings.kappas:
        for mult in settings.k_multipliers:
            k = mult * settings.r
            for entry in entries:
                key = (entry.key, kappa, k)
                records.append(_aggregate(entry, methods[key], settings, kappa, k, per[key]))
    run_seconds = time.perf_counter() - start

    figure_paths = write_figures(curves, settings, out, seed_list[0]) if figures else []
    write_curves(curves, out / "compare_curves.csv")
    total = time.perf_counter() - start
    payload = {
        "settings": settings.as_dict(),
        "seeds": seed_list,
        "run_seconds": run_seconds,
        "total_seconds": total,
        "figures": [str(p.name) for p in figure_paths],
        "records": records,
    }
    (out / "compare.json").write_text(json.dumps(payload, indent=1, default=_json_default))
    (out / "compare.md").write_text(markdown_table(records, settings, seed_list, total))
    report.publish_section(out, "compare", ("Peer comparison", "peer-comparison",
                                            compare_html_section(records, [p.name for p in figure_paths])),
                           order=2)
    _log(progress, f"done in {total:.1f} s; wrote {out / 'compare.json'}")
    return records


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


# ------------------------------------------------------------------------- outputs
def write_curves(curves, path: Path, max_points: int = 400) -> Path:
    """Error curves as CSV (method, kappa, k, seed, iteration, time, rel_error), thinned
    to at most ``max_points`` log-spaced records per curve (the last always kept)."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "kappa", "k", "seed", "iteration", "time", "rel_error"])
        for c in curves:
            n = c["iteration"].size
            if n > max_points:
                idx = np.unique(np.concatenate([np.geomspace(1, n, max_points).astype(int) - 1, [n - 1]]))
            else:
                idx = np.arange(n)
            for i in idx:
                if math.isfinite(c["rel_error"][i]):
                    w.writerow([c["method"], c["kappa"], c["k"], c["seed"], int(c["iteration"][i]),
                                f"{c['time'][i]:.6g}", f"{c['rel_error'][i]:.6e}"])
    return path


def _style(key: str):
    order = list(ENTRY_KEYS)
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f", "#ff7f0e", "#17becf"]
    entry = next(e for e in ENTRIES if e.key == key)
    return dict(color=colors[order.index(key) % len(colors)],
                linestyle="--" if entry.symmetric else "-", label=entry.label)


_Y_CLIP = 1e2  # relative errors above this (divergence) are cut and marked ×


def _thin(n: int, max_points: int = 600) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spaced records (first and last kept)."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def write_figures(curves, settings: CompareSettings, out: Path, seed: int) -> list[Path]:
    """One figure per (κ, k): relative error vs iteration and vs time (seed ``seed``)."""
    from matplotlib.figure import Figure

    paths = []
    for kappa in settings.kappas:
        for mult in settings.k_multipliers:
            k = mult * settings.r
            fig = Figure(figsize=(13, 4.2), layout="constrained")
            ax_it, ax_t = fig.subplots(1, 2)
            for c in curves:
                if c["kappa"] != float(kappa) or c["k"] != k or c["seed"] != seed:
                    continue
                idx = _thin(c["iteration"].size)
                it, tm, err = c["iteration"][idx], c["time"][idx], c["rel_error"][idx]
                ok = np.isfinite(err) & (err > 0)
                st = _style(c["method"])
                # A diverging curve is drawn up to the clip level and marked ×.
                shown = ok & (err <= _Y_CLIP)
                ax_it.semilogy(it[shown], err[shown], **st)
                ax_t.semilogy(tm[shown], err[shown], **st)
                if np.any(ok & (err > _Y_CLIP)):
                    j = np.flatnonzero(ok & (err > _Y_CLIP))[0]
                    ax_it.plot([it[j]], [_Y_CLIP], marker="x", ms=8, color=st["color"])
                    ax_t.plot([tm[j]], [_Y_CLIP], marker="x", ms=8, color=st["color"])
            for ax, xl in ((ax_it, "iteration"), (ax_t, "wall time (s)")):
                ax.axhline(settings.tol, color="k", lw=0.6, ls=":")
                ax.set_xlabel(xl)
                ax.set_ylabel("‖P − M*‖_F / ‖M*‖_F")
                ax.grid(True, which="major", alpha=0.3)
            kname = "r" if mult == 1 else f"{mult}r"
            fig.suptitle(f"κ = {kappa:g}, k = {kname} = {k}  (n = {settings.n}, r = {settings.r}, "
                         f"m = {settings.m}; seed {seed}; solid: F Gᵀ, dashed: X Xᵀ; × diverged)")
            handles, labels = ax_it.get_legend_handles_labels()
            fig.legend(handles, labels, loc="outside right upper", fontsize=7)
            stem = f"compare_kappa{kappa:g}_k{k}"
            for ext in ("png", "svg"):
                p = out / f"{stem}.{ext}"
                fig.savefig(p, dpi=110)
                paths.append(p)
    return paths


def _fmt(x, spec="{:.3g}"):
    return "—" if x is None else spec.format(x)


def _its_cell(rec) -> str:
    if rec["iterations_to_tol"] is not None:
        lo, hi = rec["iterations_to_tol_range"]
        spread = "" if lo == hi else f" ({lo}–{hi})"
        return f"{rec['iterations_to_tol']:g}{spread}"
    parts = []
    n = rec["n_seeds"]
    if rec["n_converged"]:
        lo, hi = rec["iterations_to_tol_range"]
        parts.append(f"{rec['n_converged']}/{n} seeds in {lo}–{hi}" if lo != hi
                     else f"{rec['n_converged']}/{n} seeds in {lo}")
    n_div = sum(p["status"] == "diverged" for p in rec.get("per_seed", []))
    if n_div:
        its = sorted(p["iterations"] for p in rec["per_seed"] if p["status"] == "diverged")
        parts.append(f"diverged ({n_div}/{n} seeds, at {its[0]}" + (f"–{its[-1]})" if its[-1] != its[0] else ")"))
    n_nr = n - rec["n_converged"] - n_div
    if n_nr:
        parts.append(f"not in {rec['budget']}" + ("" if n_nr == n else f" ({n_nr}/{n} seeds)"))
    return "; ".join(parts)


def markdown_table(records, settings: CompareSettings, seeds, total_seconds: float) -> str:
    """The comparison as a Markdown document (settings, then one table row per record)."""
    lines = [
        "# Peer comparison",
        "",
        f"Setting `{settings.name}`: n = {settings.n}, r = {settings.r}, m = {settings.m} "
        f"(= {settings.m_factor}·n·r), σ_i {settings.spacing}ly spaced from 1 to 1/κ; "
        f"target relative error {settings.tol:g}; budget {settings.max_iters} iterations"
        + "".join(f" ({k}: {v})" for k, v in settings.max_iters_override) + "; "
        f"small random initializations at α = {settings.alpha:g} (÷√n); seeds {list(seeds)}. "
        f"Iterations and seconds are medians over seeds (range in brackets). Total run time "
        f"{total_seconds:.0f} s.",
        "",
        "| method | hyper-parameters | init | κ | k | iterations to tol | seconds | ms / iter "
        "| final rel. error | status | reference (PAPER §4) | check |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rec in records:
        spi = rec["seconds_per_iteration"]
        lines.append(
            f"| {rec['label']} | {rec['hyper_parameters']} | {rec['init']} | {rec['kappa']:g} | {rec['k']} "
            f"| {_its_cell(rec)} | {_fmt(rec['seconds'], '{:.2f}')} | {_fmt(None if spi is None else 1e3 * spi, '{:.1f}')} "
            f"| {_fmt(rec['final_rel_error'], '{:.1e}')} | {rec['status']} "
            f"| {rec['reference'] or ''} | {rec['reference_check'] or ''} |")
    lines.append("")
    return "\n".join(lines)


def compare_html_section(records, figure_paths=()) -> str:
    """An HTML ``<section>`` with the comparison table and figures, for the report.

    ``figure_paths`` are used verbatim as ``src`` (pass paths relative to the
    report); when a PNG and an SVG share a stem only the SVG is shown.
    """
    esc = html.escape
    rows = []
    for rec in records:
        spi = rec.get("seconds_per_iteration")
        cells = [rec.get("label", rec["method"]), rec.get("hyper_parameters", ""), rec.get("init", ""),
                 f"{rec['kappa']:g}", str(rec["k"]), _its_cell(rec), _fmt(rec.get("seconds"), "{:.2f}"),
                 _fmt(None if spi is None else 1e3 * spi, "{:.1f}"),
                 _fmt(rec.get("final_rel_error"), "{:.1e}"), rec["status"],
                 rec.get("reference") or "", rec.get("reference_check") or ""]
        rows.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
    head = ["method", "hyper-parameters", "init", "κ", "k", "iterations to tol", "seconds",
            "ms / iter", "final rel. error", "status", "reference (PAPER §4)", "check"]
    chosen: dict[str, str] = {}
    for p in figure_paths:
        p = str(p)
        stem, _, ext = p.rpartition(".")
        if ext.lower() not in ("png", "svg"):
            continue
        if stem not in chosen or ext.lower() == "svg":
            chosen[stem] = p
    figs = "\n".join(
        f'<figure><img src="{esc(p)}" alt="relative error vs iteration and time: {esc(Path(p).stem)}" '
        f'style="max-width:100%"><figcaption>{esc(Path(p).stem)}</figcaption></figure>'
        for p in chosen.values())
    tol = records[0]["tol"] if records else 1e-10
    return (
        '<section id="peer-comparison">\n<h2>Peer comparison</h2>\n'
        f"<p>Iterations and wall time to relative error {tol:g} (medians over seeds), for the "
        "paper's GD and rebalanced GD next to ScaledGD, ScaledGD(λ), PrecGD, alternating "
        "preconditioned GD and SVP. Reference figures are those of PAPER.md §4.</p>\n"
        "<table>\n<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead>\n"
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n" + figs + "\n</section>\n")


# ------------------------------------------------------------------------------ CLI
def register(subparsers):
    """Add ``compare [--out DIR] [--quick] [--seeds N] [--progress]`` to an argparse subparsers."""
    p = subparsers.add_parser(
        "compare", help="side-by-side comparison of GD, rebalanced GD and the peer methods",
        description="Run GD, rebalanced GD, ScaledGD, ScaledGD(λ), PrecGD, alternating "
                    "preconditioned GD and SVP on κ ∈ {1, 10, 100} × k ∈ {r, 2r}; write "
                    "compare.json, compare.md, curves and figures. The full setting (n = 100) "
                    "takes ≈ 17 min per seed on 2 CPU cores (≈ 50 min for 3 seeds); --quick ≈ 20 s.")
    p.add_argument("--out", default="results", help="output folder (default results; its report.html gains a peer-comparison section)")
    p.add_argument("--quick", action="store_true", help="small problem (n = 30, r = 2), ≈ 20 s")
    p.add_argument("--seeds", type=int, default=None,
                   help="number of seeds (default 3 for the full setting, 1 for --quick)")
    p.add_argument("--progress", action="store_true", help="log every run to stderr")
    p.set_defaults(func=_cli)
    return p


def _cli(args) -> int:
    # Bad input raises ValueError: matsense.cli.main turns it into one line and exit 2.
    records = compare(args.out, quick=args.quick, seeds=args.seeds, progress=args.progress)
    n_conv = sum(r["status"] == "converged" for r in records)
    print(f"wrote {Path(args.out) / 'compare.json'} and compare.md: {len(records)} records, "
          f"{n_conv} converged on every seed")
    return 0


__all__ = ["compare", "compare_html_section", "register", "CompareSettings", "FULL", "QUICK",
           "ENTRIES", "markdown_table"]
