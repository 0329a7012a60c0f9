"""The peers on your own data: ``matsense compare --data FILE`` (:func:`compare_data`).

The grid of :mod:`matsense.compare` draws its problems (κ × k × seeds); here the problem is a
data set read by :func:`matsense.data.load_problem`, so there is one cell: every method of
:data:`~matsense.compare.entries.ENTRIES` that runs on the data's parameterization (F Gᵀ; the
X Xᵀ ones too when the data are symmetric), each from its usual start, with k columns.
Step sizes relative to σ₁ use σ̂₁ = the largest singular value of 𝒜*(y) (the spectral
estimate, no M* needed). The runs advance in lock-step, one stacked operator pass per
iteration (:func:`matsense.run_together`, each run bitwise what ``ms.run`` gives alone inside
``single_threaded()``). Convergence: relative error ≤ ``tol`` with M* in the file, else
relative residual ‖𝒜(P) − y‖/‖y‖ ≤ ``tol``.

Writes ``compare.json`` (``{"data": FILE, "k": k, "sigma_1_estimate": σ̂₁, "records": [...]}``),
``compare.md`` (a table) and ``compare_data.png`` / ``.svg`` (error or residual against the
iteration, one curve per method).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import plots
from .._files import atomic_write_text
from ..run import run_together
from .entries import ENTRIES, Entry

#: The scale of the random starts (as in the grid's settings).
ALPHA = 1e-3


def sigma_1_estimate(problem) -> float:
    """σ̂₁: the top singular value of 𝒜*(y), from the rank-one spectral start (‖F₀‖²)."""
    from ..init import spectral

    F0, _ = spectral(problem, 1)
    return float(np.sum(np.asarray(F0, dtype=float) ** 2))


def entries_for(problem) -> list[Entry]:
    """The entries that run on ``problem``: F Gᵀ ones, and X Xᵀ ones on symmetric data."""
    return [e for e in ENTRIES if problem.symmetric or not e.symmetric]


def compare_data(
    problem,
    out_dir,
    *,
    k: int,
    source: str = "data",
    max_iters: int = 3000,
    tol: float = 1e-10,
    progress: bool = False,
    figures: bool = True,
) -> list[dict]:
    """Run every applicable method on ``problem`` with ``k`` columns; write the outputs.

    Returns one record per method: ``method``, ``label``, ``init``, ``k``, ``status``
    (``converged``, ``max_iters`` or ``diverged``), ``iterations``, ``seconds``,
    ``final_rel_error`` (None without M*) and ``final_rel_residual``.
    """
    from ..operators import single_threaded

    n1, n2 = problem.shape
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= min(n1, n2):
        raise ValueError(
            f"--k must be an integer in [1, {min(n1, n2)}] for data of shape {n1} × {n2}, got {k!r}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sigma_1 = sigma_1_estimate(problem)
    entries = entries_for(problem)
    with single_threaded():
        methods = [e.make_method(sigma_1) for e in entries]
        starts = [e.initial_factors(problem, k, ALPHA, 0) for e in entries]
        trajs = run_together(problem, list(zip(methods, starts)), max_iters, tol=tol)
    records = [_record(problem, entry, traj, k, progress) for entry, traj in zip(entries, trajs)]
    settings = {
        "data": source,
        "shape": [n1, n2],
        "m": problem.m,
        "k": int(k),
        "sigma_1_estimate": sigma_1,
        "tol": tol,
        "max_iters": max_iters,
        "alpha": ALPHA,
        "truth": problem.has_truth,
    }
    atomic_write_text(
        out / "compare.json", json.dumps({**settings, "records": records}, indent=2) + "\n"
    )
    atomic_write_text(out / "compare.md", _markdown(settings, records))
    if figures:
        _figure(entries, trajs, settings, out / "compare_data")
    return records


def _record(problem, entry: Entry, traj, k: int, progress: bool) -> dict:
    """One method's record of :func:`compare_data` (and its progress line)."""
    from .running import log

    h = traj.history
    rel_res = float(h["residual_norm"][-1]) / max(problem.y_norm, 1e-300)
    record = {
        "method": entry.key,
        "label": entry.label,
        "hyper_parameters": entry.hyper,
        "init": entry.init,
        "k": int(k),
        "status": str(traj.status),
        "iterations": int(traj.iterations),
        "seconds": float(traj.wall_time),
        "final_rel_error": float(h["rel_error"][-1]) if "rel_error" in h else None,
        "final_rel_residual": rel_res,
    }
    log(progress, f"{entry.key}: {traj.status} after {traj.iterations} iterations")
    return record


def _markdown(settings: dict, records: list[dict]) -> str:
    metric = "rel. error" if settings["truth"] else "rel. residual"
    lines = [
        f"# The peers on {settings['data']}",
        "",
        (
            f"{settings['shape'][0]} × {settings['shape'][1]}, m = {settings['m']}, "
            f"k = {settings['k']}, "
            f"σ̂₁ = {settings['sigma_1_estimate']:.4g} (spectral estimate), "
            f"tol = {settings['tol']:g} on the {metric}, at most {settings['max_iters']} "
            "iterations."
        ),
        "",
        f"| method | start | status | iterations | seconds | final {metric} |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        final = r["final_rel_error"] if settings["truth"] else r["final_rel_residual"]
        lines.append(
            f"| {r['label']} | {r['init']} | {r['status']} | {r['iterations']} | "
            f"{r['seconds']:.3g} | {final:.3g} |"
        )
    return "\n".join(lines) + "\n"


def _figure(entries, trajs, settings, stem: Path) -> None:
    key = "rel_error" if settings["truth"] else "residual_norm"
    panel = plots.Panel(
        f"{Path(settings['data']).name}, k = {settings['k']}", "iteration t", plots.ERROR_KEYS[key]
    )
    for i, (entry, traj) in enumerate(zip(entries, trajs)):
        h = traj.history
        panel.curves.append(
            plots.Curve(h["iteration"], h[key], label=entry.label, color=plots.color(i))
        )
    plots.save_panels([panel], stem)
