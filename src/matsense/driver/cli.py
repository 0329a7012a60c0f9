"""``matsense run``: one method on one problem, from flags and/or a TOML run file.

Registered by :func:`matsense.cli.build_parser`; prints the final status, the
iterations, the relative error and the fitted linear rate, and writes the
trajectory, its ``.json`` record and a figure when asked.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
import warnings
from pathlib import Path
from typing import NamedTuple

from .. import ensembles
from ..cli import _show_progress, add_max_memory, add_progress_flags, check_output
from ..flags import method_flags

TRAJECTORY_SUFFIXES = (".csv", ".parquet")
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")

# Flags of `matsense run` whose destination is a RunConfig key of the same name (the
# methods' hyper-parameters are added from the methods themselves, see method_flags).
RUN_FLAGS = (
    "ensemble",
    "n1",
    "n2",
    "r",
    "m",
    *ensembles.keys(),
    "kappa",
    "symmetric",
    "noise",
    "seed",
    "outlier_fraction",
    "outlier_scale",
    "outlier_mode",
    "init",
    "k",
    "alpha",
    "ratio",
    "normalization",
    "init_seed",
    "method",
    "iters",
    "tol",
    "record_every",
    "backend",
    "device",
    "dtype",
)


def _key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as a TOML value (1e-3, 5, true, "s"); else a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


def _add_ensemble_keys(group) -> None:
    """A flag for each run key an ensemble adds besides m (its record's params: ``--p``)."""
    for key, (param, owners) in ensembles.keys().items():
        group.add_argument(
            f"--{key}",
            type=float if float in param.types else int,
            help=f"{', '.join(owners)} only: {param.describe()}"
            + (" (instead of m)" if param.replaces_m else ""),
        )


def register(subparsers) -> None:
    """Add the ``run`` subcommand."""
    p = subparsers.add_parser(
        "run",
        help="run one configuration (flags and/or a TOML file)",
        description="Run one method on one problem from flags or --config FILE.toml "
        "(flags override the file). Prints the final status, the iterations, "
        "the relative error and the fitted linear rate; writes the trajectory "
        "and a figure when --out is given.",
    )
    p.add_argument(
        "--config",
        metavar="FILE.toml",
        type=Path,
        help="TOML run file (keys at top level or under [problem], [init], "
        "[method], [run]; see docs/api.md)",
    )
    _add_problem_flags(p.add_argument_group("problem"))
    _add_init_flags(p.add_argument_group("initialization"))
    _add_method_flags(p.add_argument_group("method"))
    _add_run_flags(p.add_argument_group("run"))
    _add_output_flags(p.add_argument_group("output"))
    p.set_defaults(func=cmd_run)


def _add_problem_flags(g) -> None:
    g.add_argument(
        "--data",
        metavar="FILE",
        type=Path,
        help="your own data instead of a generated problem: observed entries "
        "(.csv/.parquet with row, col, value; .npz with rows, cols, values, "
        "shape), dense measurements (.npz with A, y) or rank-one ones (.npz "
        "with a, b, y), each .npz optionally with M_star (docs/api.md)",
    )
    g.add_argument(
        "--ensemble",
        metavar="NAME",
        help=f"measurement ensemble: {ensembles.listing()} (docs/ensembles.md) or an "
        "installed plugin's (matsense plugins)",
    )
    g.add_argument("--n1", type=int, help="rows of M* (default 30)")
    g.add_argument("--n2", type=int, help="columns of M* (default n1)")
    g.add_argument("--r", type=int, help="rank of M* (default 2)")
    g.add_argument(
        "--m", type=int, help="number of measurements, e.g. observed entries (default 900)"
    )
    _add_ensemble_keys(g)
    g.add_argument("--kappa", type=float, help="condition number σ_1/σ_r (default 1)")
    g.add_argument(
        "--symmetric",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="PSD ground truth M* = U diag(σ) Uᵀ (default: no)",
    )
    g.add_argument("--noise", type=float, help="noise standard deviation on y (default 0)")
    g.add_argument("--seed", type=int, help="problem seed (default 0)")
    g.add_argument(
        "--outlier-fraction",
        type=float,
        help="outliers on this fraction p_s of the measurements, in [0, 1) "
        "(default 0; docs/robust.md)",
    )
    g.add_argument(
        "--outlier-scale", type=float, help="outlier magnitude c: up to c·‖𝒜(M*)‖_∞ (default 10)"
    )
    g.add_argument("--outlier-mode", help="outliers 'add' to y_i (default) or 'replace' it")


def _add_init_flags(g) -> None:
    g.add_argument(
        "--init",
        help="small_random (F0, G0; default), balanced (G0 = F0), "
        "symmetric_random (X0 for X Xᵀ), spectral, ... "
        "(docs/api.md lists them)",
    )
    g.add_argument("--k", type=int, help="columns of the factors (default 4)")
    g.add_argument("--alpha", type=float, help="initialization scale α (default 0.04)")
    g.add_argument("--ratio", type=float, help="scale of G0 relative to F0 (default 1/3)")
    g.add_argument("--normalization", help="'entry' (std α; default) or 'sqrt_n' (std α/√n)")
    g.add_argument("--init-seed", type=int, help="initialization seed (default 0)")


def _add_method_flags(g) -> None:
    g.add_argument("--method", help="method name (default gd; e.g. rebalanced_gd)")
    for flag in method_flags().values():  # each with its methods' types and help (flags.py)
        flag.add_to(g)
    g.add_argument(
        "--param",
        metavar="KEY=VALUE",
        type=_key_value,
        action="append",
        default=[],
        help="any other method hyper-parameter (repeatable)",
    )


def _add_run_flags(g) -> None:
    g.add_argument("--iters", type=int, help="maximum iterations (default 1000)")
    g.add_argument("--tol", type=float, help="stop at relative error <= tol")
    g.add_argument("--record-every", type=int, help="history stride (default 1)")
    g.add_argument("--backend", help="numpy (default) or torch")
    g.add_argument("--device", help="cpu (default) or cuda")
    g.add_argument("--dtype", help="float64 (default) or float32")


def _add_output_flags(g) -> None:
    g.add_argument(
        "--out",
        metavar="FILE.csv|FILE.parquet",
        type=Path,
        help="write the trajectory (one row per recorded iteration) and, "
        "next to it, FILE.json with the configuration and the summary",
    )
    g.add_argument(
        "--figure",
        metavar="FILE.png",
        type=Path,
        help="error-vs-iteration figure (default: next to --out, suffix .png)",
    )
    g.add_argument("--no-figure", action="store_true", help="do not draw the figure")
    add_progress_flags(g, "run")
    g.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print the operator kernel that ran (the planner's choice), the "
        "backend, dtype and time per iteration",
    )
    add_max_memory(g)


def config_from_args(args):
    """The :class:`~matsense.config.RunConfig` of ``matsense run``: the file, then the flags."""
    from ..config import RunConfig

    overrides = {
        key: getattr(args, key) for key in RUN_FLAGS if getattr(args, key, None) is not None
    }
    overrides.update(_method_flag_values(args))
    if getattr(args, "data", None) is not None:  # the run-file key `data`, as a flag
        _check_data_flags(args)
        overrides["data"] = str(args.data)
    for key, value in args.param:
        if key in overrides:
            raise ValueError(f"{key} is given twice (as a flag and as --param {key}=...)")
        overrides[key] = value
    if args.config is None:
        return RunConfig.from_dict(overrides)
    base = RunConfig.from_toml(args.config)  # file errors name the file and line
    if not overrides:
        return base
    merged = base.to_dict()
    if "data" in merged or "data" in overrides:  # the file's generated-problem defaults go
        from ..config import PROBLEM_KEYS

        merged = {k: v for k, v in merged.items() if k not in PROBLEM_KEYS}
    return RunConfig.from_dict({**merged, **overrides})


def _method_flag_values(args) -> dict:
    """The method flags given, each read as the method that runs declares its parameter
    (--method, else the run file's method, else the default)."""
    from ..config import RunConfig, flatten, read_toml

    flags = {
        name: flag for name, flag in method_flags().items() if getattr(args, name, None) is not None
    }
    method = args.method
    if method is None and args.config is not None and any(f.kind is None for f in flags.values()):
        try:  # only for a flag whose methods type it differently
            method = flatten(read_toml(args.config)[1]).get("method")
        except ValueError:  # the file's own error follows, from RunConfig.from_toml
            pass
    method = method or RunConfig.method
    return {name: flag.value(method, getattr(args, name)) for name, flag in flags.items()}


#: The flags that describe a generated problem: they do not apply to --data.
GENERATED_PROBLEM_FLAGS = (
    "ensemble",
    "n1",
    "n2",
    "r",
    "m",
    *ensembles.keys(),
    "kappa",
    "symmetric",
    "noise",
    "seed",
)


def _check_data_flags(args) -> None:
    """A flag of a generated problem next to ``--data`` is an error, not silently ignored."""
    given = [
        f"--{k.replace('_', '-')}"
        for k in GENERATED_PROBLEM_FLAGS
        if getattr(args, k, None) is not None
    ]
    if given:
        raise ValueError(
            f"--data replaces the generated problem: {', '.join(given)} cannot be used with it"
        )


def _check_suffix(path: Path | None, allowed: tuple[str, ...], what: str) -> None:
    if path is not None and path.suffix.lower() not in allowed:
        raise ValueError(f"{what} must end in {' or '.join(allowed)}, got {str(path)!r}")


def _fit_rate(traj):
    """Linear rate of the error (of the residual without M*) on the trajectory's last phase."""
    from ..rates import phase_rate

    h = traj.history
    err = h["error"] if "error" in h else h["residual_norm"]
    return phase_rate(traj.phases, h["iteration"], err)


def save_figure(traj, path: Path, title: str) -> Path:
    """Log-scale relative error (or residual) against the iteration, via the Agg canvas; each
    phase's start (the trajectory's ``phases``, e.g. the rebalancing switch) a dashed line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    h = traj.history
    key = "rel_error" if "rel_error" in h else "residual_norm"
    # A, not 𝒜: matplotlib's default font has no glyph for it
    label = {"rel_error": "‖P − M*‖_F / ‖M*‖_F", "residual_norm": "‖A(P) − y‖ (residual)"}[key]
    fig = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.semilogy(h["iteration"], h[key])
    events = [ph for ph in traj.phases if ph.event]
    for ph in events:
        ax.axvline(ph.start, color="0.5", ls="--", lw=1, label=f"{ph.event} at t = {ph.start}")
    if events:
        ax.legend()
    ax.set_xlabel("iteration t")
    ax.set_ylabel(label)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.savefig(path, dpi=120)
    return path


def _print_switch(extras: dict) -> None:
    """The rebalancing switch's report (rebalanced GD's extras), when the run had one."""
    t = extras.get("switch_iteration")
    if t is None or int(t) < 0:
        return
    from ..curvature import STABLE_LIMIT

    line = (
        f"switch       t = {int(t)}: r̂ = {int(extras['signal_rank'])}, "
        f"‖ΔFGᵀ‖/‖FGᵀ‖ = {float(extras['switch_change']):.2e}"
    )
    before, after = float(extras["curvature_before"]), float(extras["curvature_after"])
    if before == before:  # measured (diagnostics on)
        line += (
            f", η·λ_max of the Gauss–Newton blocks {before:.3g} → {after:.3g} "
            f"(stable below {STABLE_LIMIT:g})"
        )
    print(line)


def cmd_run(args) -> int:
    """Run the configuration of ``args``; print the summary and write the outputs asked for."""
    _check_outputs(args)
    cfg = config_from_args(args)
    problem = cfg.build_problem()
    method = cfg.build_method()
    init = cfg.build_init(problem)
    label = _describe(cfg, problem, init)
    print(label.header)
    if getattr(method, "note", None):
        print(f"note: {method.note}")
    traj = _run_reporting_warnings(args, cfg, problem, method, init)
    summary = traj.summary()[0]
    fit = _print_result(args, traj, summary, problem)
    written = []
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        written.append(traj.save(args.out))
        written.append(_write_record(args.out, cfg, traj, summary, fit))
    figure = args.figure
    if figure is None and args.out is not None:
        figure = args.out.with_suffix(".png")
    if figure is not None and not args.no_figure:
        figure.parent.mkdir(parents=True, exist_ok=True)
        written.append(save_figure(traj, figure, f"{label.title}: {traj.status}"))
    for path in written:
        print(f"wrote        {path}")
    return 0


def _check_outputs(args) -> None:
    """Refuse a bad suffix or an unwritable output before any work is done."""
    _check_suffix(args.out, TRAJECTORY_SUFFIXES, "--out")
    _check_suffix(args.figure, FIGURE_SUFFIXES, "--figure")
    check_output(args.out, "--out")
    if args.out is not None:
        check_output(args.out.with_suffix(".json"), "--out")
        if args.figure is None and not args.no_figure:
            check_output(args.out.with_suffix(".png"), "--out")
    if not args.no_figure:
        check_output(args.figure, "--figure")


class _Label(NamedTuple):
    header: str  # the first line printed
    title: str  # the figure's title, before the status


def _describe(cfg, problem, init) -> _Label:
    """What runs, on what: the header line and the figure title."""
    from ..init import get_init

    parameterization = "X Xᵀ" if not isinstance(init, tuple) else "F Gᵀ"
    n2 = cfg.n2 if cfg.n2 is not None else cfg.n1
    scale = f" (α={cfg.alpha:g})" if get_init(cfg.init).random else ""
    header = (
        f"{cfg.method} on {parameterization}: {cfg.ensemble}, n1={cfg.n1}, n2={n2}, "
        f"r={cfg.r}, m={problem.m}, k={cfg.k}, init={cfg.init}{scale}"
    )
    if cfg.data is not None:
        (n1_, n2_), rank = problem.shape, problem.rank
        header = (
            f"{cfg.method} on {parameterization}: data {cfg.data} "
            f"({problem.meta['source']}), n1={n1_}, n2={n2_}"
            + (f", r={rank}" if rank is not None else "")
            + f", m={problem.m}, k={cfg.k}, init={cfg.init}{scale}"
        )
    return _Label(header, f"{cfg.method}, {parameterization}, k={cfg.k}, {cfg.init}{scale}")


def _run_reporting_warnings(args, cfg, problem, method, init):
    """The run; the method's own RuntimeWarnings (e.g. an unstable switch) one line each."""
    from ..run import run

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        traj = run(
            problem,
            method,
            init,
            cfg.iters,
            tol=cfg.tol,
            record_every=cfg.record_every,
            progress=_show_progress(args),
        )
    for w in caught:
        if issubclass(w.category, RuntimeWarning):
            print(f"matsense: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return traj


def _print_result(args, traj, summary: dict, problem):
    """Status, iterations, errors, (with -v) kernel and switch, and the fitted linear rate."""
    fit, phase = _fit_rate(traj)
    rel = summary.get("final_rel_error")
    print(f"status       {traj.status}")
    print(f"iterations   {traj.iterations}")
    if rel is not None:
        print(f"rel. error   {rel:.3e}")
    print(f"residual     {summary['final_residual_norm']:.3e}")
    if args.verbose:
        per_iter = traj.wall_time / max(traj.iterations, 1)
        tgt = problem.operator.target
        print(
            f"kernel       {traj.config.get('kernel')} ({type(problem.operator).__name__}, "
            f"{tgt.backend} on {tgt.device}, {tgt.dtype}, {problem.m} measurements)"
        )
        print(f"time         {traj.wall_time:.3g} s, {per_iter * 1e3:.3g} ms per iteration")
        _print_switch(traj.extras)
    after = ""
    if phase.start > 0:
        after = f" after the {phase.event or phase.name} at t = {phase.start}"
    if traj.status == "diverged":
        print("linear rate  n/a: the run diverged (try a smaller --step-size)")
    elif fit.ok:
        print(
            f"linear rate  {fit.value:.4g} per iteration{after} (fit on t = {fit.t_start:g}"
            f"..{fit.t_end:g}, {fit.n_points} records, R² = {fit.r2:.4f})"
        )
    else:
        print(f"linear rate  n/a{after}: {fit.reason}")
    return fit


def _write_record(out: Path, cfg, traj, summary: dict, fit) -> Path:
    """``out`` with suffix .json: the configuration, the summary, the rate and Δ₀ (atomic)."""
    from .._files import atomic_write_text
    from ..experiments.results import jsonable  # NaN (not measured) as null

    record = {
        "config": cfg.to_dict(),
        "summary": summary,
        "linear_rate": fit.as_dict(),
        "wall_time": traj.wall_time,
        "start_imbalance": (
            None if traj.start_imbalance is None else traj.start_imbalance.tolist()
        ),
    }
    meta = out.with_suffix(".json")
    atomic_write_text(meta, json.dumps(jsonable(record), indent=2, default=str) + "\n")
    return meta
