"""The comparison's files: compare.json, the Markdown table, the curves as CSV.

:func:`table_row` formats one record as the cells of the results table; the
Markdown file and the report section (:mod:`.section`) show the same cells.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from .._files import atomic_write_text, naming
from .entries import CompareSettings

TABLE_HEADER = (
    "method",
    "hyper-parameters",
    "init",
    "κ",
    "k",
    "iterations to tol",
    "seconds",
    "ms / iter",
    "final rel. error",
    "status",
    "reference (docs/methods.md)",
    "check",
)


def write_json(
    path: Path,
    settings: CompareSettings,
    seeds,
    records,
    *,
    run_seconds: float,
    total_seconds: float,
    figure_paths=(),
) -> Path:
    """``compare.json``: settings, seeds, timings, figure names and the records."""
    payload = {
        "settings": settings.as_dict(),
        "seeds": list(seeds),
        "run_seconds": run_seconds,
        "total_seconds": total_seconds,
        "figures": [str(Path(p).name) for p in figure_paths],
        "records": records,
    }
    atomic_write_text(path, json.dumps(payload, indent=1, default=_json_default))
    return path


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


def write_curves(curves, path: Path, max_points: int = 400) -> Path:
    """Error curves as CSV (method, kappa, k, seed, iteration, time, rel_error), thinned
    to at most ``max_points`` log-spaced records per curve (the last always kept)."""
    with naming(path), open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "kappa", "k", "seed", "iteration", "time", "rel_error"])
        for c in curves:
            n = c["iteration"].size
            if n > max_points:
                idx = np.unique(
                    np.concatenate([np.geomspace(1, n, max_points).astype(int) - 1, [n - 1]])
                )
            else:
                idx = np.arange(n)
            for i in idx:
                if math.isfinite(c["rel_error"][i]):
                    w.writerow(
                        [
                            c["method"],
                            c["kappa"],
                            c["k"],
                            c["seed"],
                            int(c["iteration"][i]),
                            f"{c['time'][i]:.6g}",
                            f"{c['rel_error'][i]:.6e}",
                        ]
                    )
    return path


def _fmt(x, spec="{:.3g}"):
    return "—" if x is None else spec.format(x)


def _its_cell(rec) -> str:
    """Iterations to tol: the median (and range), or how many seeds converged / diverged / ran out."""
    if rec["iterations_to_tol"] is not None:
        lo, hi = rec["iterations_to_tol_range"]
        spread = "" if lo == hi else f" ({lo}–{hi})"
        return f"{rec['iterations_to_tol']:g}{spread}"
    parts = []
    n = rec["n_seeds"]
    if rec["n_converged"]:
        lo, hi = rec["iterations_to_tol_range"]
        parts.append(
            f"{rec['n_converged']}/{n} seeds in {lo}–{hi}"
            if lo != hi
            else f"{rec['n_converged']}/{n} seeds in {lo}"
        )
    n_div = sum(p["status"] == "diverged" for p in rec.get("per_seed", []))
    if n_div:
        its = sorted(p["iterations"] for p in rec["per_seed"] if p["status"] == "diverged")
        parts.append(
            f"diverged ({n_div}/{n} seeds, at {its[0]}"
            + (f"–{its[-1]})" if its[-1] != its[0] else ")")
        )
    n_nr = n - rec["n_converged"] - n_div
    if n_nr:
        parts.append(f"not in {rec['budget']}" + ("" if n_nr == n else f" ({n_nr}/{n} seeds)"))
    return "; ".join(parts)


def table_row(rec) -> list[str]:
    """The cells of ``rec`` under :data:`TABLE_HEADER`."""
    spi = rec.get("seconds_per_iteration")
    return [
        rec.get("label", rec["method"]),
        rec.get("hyper_parameters", ""),
        rec.get("init", ""),
        f"{rec['kappa']:g}",
        str(rec["k"]),
        _its_cell(rec),
        _fmt(rec.get("seconds"), "{:.2f}"),
        _fmt(None if spi is None else 1e3 * spi, "{:.1f}"),
        _fmt(rec.get("final_rel_error"), "{:.1e}"),
        rec["status"],
        rec.get("reference") or "",
        rec.get("reference_check") or "",
    ]


def _markdown_line(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown_table(records, settings: CompareSettings, seeds, total_seconds: float) -> str:
    """The comparison as a Markdown document (settings, then one table row per record)."""
    lines = [
        "# Peer comparison",
        "",
        f"Setting `{settings.name}`, {settings.ensemble} measurements: n = {settings.n}, "
        f"r = {settings.r}, m = {settings.m} "
        f"(= {settings.m_factor}·n·r), σ_i {settings.spacing}ly spaced from 1 to 1/κ; "
        f"target relative error {settings.tol:g}; budget {settings.max_iters} iterations"
        + "".join(f" ({k}: {v})" for k, v in settings.max_iters_override)
        + "; "
        f"small random initializations at α = {settings.alpha:g} (÷√n); seeds {list(seeds)}. "
        f"Iterations and seconds are medians over seeds (range in brackets). Total run time "
        f"{total_seconds:.0f} s." + _outlier_note(settings),
        "",
        _markdown_line(TABLE_HEADER),
        "|" + "---|" * len(TABLE_HEADER),
    ]
    lines += [_markdown_line(table_row(rec)) for rec in records]
    lines.append("")
    return "\n".join(lines)


def _outlier_note(settings: CompareSettings) -> str:
    """The header's sentence on the outliers ('' without them)."""
    o = settings.outliers()
    if not o:
        return ""
    return (
        f" Outliers ({o['outlier_mode']}) on a fraction {o['outlier_fraction']:g} of the "
        f"measurements, up to {o['outlier_scale']:g}·‖𝒜(M*)‖_∞ (docs/robust.md)."
    )
