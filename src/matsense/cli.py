"""The ``matsense`` command line.

Every command is added by a *registrar*: a function ``register(subparsers)``
that adds one (or more) subparsers and sets ``func=handler`` on them, with
``handler(args) -> int`` the exit status. This module registers its own
commands (``run``, ``reproduce``) and imports the others by dotted name from
:data:`REGISTRARS`, so a command whose module is not installed simply does not
appear, while any other error in that module surfaces.

Errors a user can cause (bad flags, bad values, a bad or missing input file)
end in one line ``matsense: error: <message>`` on stderr and exit status 2;
no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import warnings
import tomllib
from pathlib import Path

from . import __version__, compat, ensembles
from .flags import method_flags

#: Registrars of commands that live in other modules, as "module:function".
REGISTRARS = [
    "matsense.compare:register",
    "matsense.sweep.cli:register",
    "matsense.plugins:register",
]

#: Exceptions that mean "bad input": one line on stderr, exit status 2.
USER_ERRORS = (ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
               PermissionError)

TRAJECTORY_SUFFIXES = (".csv", ".parquet")
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors and no prefix abbreviations of long options."""

    def __init__(self, *args, allow_abbrev: bool = False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _one_line(text: object) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or exc}: {exc.filename}"
    return _one_line(exc) or type(exc).__name__


#: The one help text of --no-progress (run, reproduce, compare; sweep has its own words).
NO_PROGRESS_HELP = "no progress output on stderr (default: shown when stderr is a terminal)"

#: Old spellings of flags, still accepted with a warning, and the release that drops them:
#: (command, flag) -> (what to use instead, removal version). The one list of them lives
#: in :mod:`matsense.compat`, next to the deprecated Python names.
DEPRECATED_FLAGS = compat.DEPRECATED_FLAGS


def add_progress_flags(parser, command: str) -> None:
    """``--no-progress`` (the same flag, help and meaning on every command), plus the
    command's deprecated spellings from :data:`DEPRECATED_FLAGS`."""
    parser.add_argument("--no-progress", action="store_true", help=NO_PROGRESS_HELP)
    for (cmd, flag), (instead, removal) in DEPRECATED_FLAGS.items():
        if cmd == command:
            parser.add_argument(flag, dest="forced_progress", action=_Deprecated, nargs=0,
                                default=False, note=f"matsense {cmd} {flag} is deprecated and "
                                f"goes away in {removal}: {instead}",
                                help=f"deprecated (goes away in {removal}): progress even when "
                                     "stderr is not a terminal")


class _Deprecated(argparse.Action):
    """A deprecated flag: a one-line warning on stderr, then ``dest`` = True."""

    def __init__(self, *args, note: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.note = note

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"matsense: warning: {self.note}", file=sys.stderr)
        setattr(namespace, self.dest, True)


def add_max_memory(parser) -> None:
    """The ``--max-memory SIZE`` flag (commands that build problems)."""
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="most memory one problem or run may take, e.g. 8G or 512M "
                             "(default: MATSENSE_MAX_MEMORY, else 90%% of the available memory); "
                             "larger ones are refused before anything is allocated")


@contextlib.contextmanager
def _memory_limit(value):
    """MATSENSE_MAX_MEMORY set to ``value`` while a command runs (worker processes inherit it)."""
    if value is None:
        yield
        return
    from .memory import parse_size

    size = parse_size(value, "--max-memory")
    old = os.environ.get("MATSENSE_MAX_MEMORY")
    os.environ["MATSENSE_MAX_MEMORY"] = str(size)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MATSENSE_MAX_MEMORY", None)
        else:
            os.environ["MATSENSE_MAX_MEMORY"] = old


def check_output(path, flag: str = "--out", *, folder: bool = False) -> None:
    """ValueError (one line) when ``path`` cannot be written — checked before any work.

    A component of the path that exists but is a file (``somefile/x.csv``), a
    folder where a file is wanted (or the reverse), or a nearest existing folder
    that is not writable.
    """
    if path is None:
        return
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise ValueError(f"{flag} {path}: exists and is not a folder")
        if not folder and path.is_dir():
            raise ValueError(f"{flag} {path}: is a folder, expected a file name")
    parent = path if folder and path.exists() else path.parent
    while not parent.exists():
        if parent.is_symlink():  # a dangling link
            raise ValueError(f"{flag} {path}: {parent} is a broken link")
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{flag} {path}: {parent} is a file, not a folder")
    import tempfile

    try:  # a probe, not os.access: root passes access() on read-only mounts such as /proc
        with tempfile.TemporaryFile(dir=parent, prefix=".matsense-probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"{flag} {path}: cannot write in {parent} "
                         f"({exc.strerror or exc})") from None


def _load_registrar(spec: str):
    """Import ``module:function``; None when the module itself is not installed."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            return None
        raise
    return getattr(module, attr)


def _show_progress(args) -> bool:
    """Progress on stderr: off with --no-progress, else on a terminal (or when a deprecated
    spelling asked for it)."""
    if getattr(args, "no_progress", False):
        return False
    return getattr(args, "forced_progress", False) or sys.stderr.isatty()


# ---------------------------------------------------------------------- run
# Flags of `matsense run` whose destination is a RunConfig key of the same name (the
# methods' hyper-parameters are added from the methods themselves, see method_flags).
RUN_FLAGS = (
    "ensemble", "n1", "n2", "r", "m", *ensembles.keys(), "kappa", "symmetric", "noise", "seed",
    "init", "k", "alpha", "ratio", "normalization", "init_seed",
    "method", "iters", "tol", "record_every", "backend", "device", "dtype",
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
        group.add_argument(f"--{key}", type=float if float in param.types else int,
                           help=f"{', '.join(owners)} only: {param.describe()}"
                                + (" (instead of m)" if param.replaces_m else ""))


def register_run(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="run one configuration (flags and/or a TOML file)",
        description="Run one method on one problem from flags or --config FILE.toml "
                    "(flags override the file). Prints the final status, the iterations, "
                    "the relative error and the fitted linear rate; writes the trajectory "
                    "and a figure when --out is given.")
    p.add_argument("--config", metavar="FILE.toml", type=Path,
                   help="TOML run file (keys at top level or under [problem], [init], "
                        "[method], [run]; see docs/api.md)")
    g = p.add_argument_group("problem")
    g.add_argument("--data", metavar="FILE", type=Path,
                   help="your own data instead of a generated problem: observed entries "
                        "(.csv/.parquet with row, col, value; .npz with rows, cols, values, "
                        "shape), dense measurements (.npz with A, y) or rank-one ones (.npz "
                        "with a, b, y), each .npz optionally with M_star (docs/api.md)")
    g.add_argument("--ensemble", metavar="NAME",
                   help=f"measurement ensemble: {ensembles.listing()} (docs/ensembles.md) or an "
                        "installed plugin's (matsense plugins)")
    g.add_argument("--n1", type=int, help="rows of M* (default 30)")
    g.add_argument("--n2", type=int, help="columns of M* (default n1)")
    g.add_argument("--r", type=int, help="rank of M* (default 2)")
    g.add_argument("--m", type=int, help="number of measurements, e.g. observed entries "
                                         "(default 900)")
    _add_ensemble_keys(g)
    g.add_argument("--kappa", type=float, help="condition number σ_1/σ_r (default 1)")
    g.add_argument("--symmetric", action=argparse.BooleanOptionalAction, default=None,
                   help="PSD ground truth M* = U diag(σ) Uᵀ (default: no)")
    g.add_argument("--noise", type=float, help="noise standard deviation on y (default 0)")
    g.add_argument("--seed", type=int, help="problem seed (default 0)")
    g = p.add_argument_group("initialization")
    g.add_argument("--init", help="small_random (F0, G0; default), balanced (G0 = F0), "
                                  "symmetric_random (X0 for X Xᵀ), spectral, ... "
                                  "(docs/api.md lists them)")
    g.add_argument("--k", type=int, help="columns of the factors (default 4)")
    g.add_argument("--alpha", type=float, help="initialization scale α (default 0.04)")
    g.add_argument("--ratio", type=float, help="scale of G0 relative to F0 (default 1/3)")
    g.add_argument("--normalization", help="'entry' (std α; default) or 'sqrt_n' (std α/√n)")
    g.add_argument("--init-seed", type=int, help="initialization seed (default 0)")
    g = p.add_argument_group("method")
    g.add_argument("--method", help="method name (default gd; e.g. rebalanced_gd)")
    for flag in method_flags().values():  # each with its methods' types and help (flags.py)
        flag.add_to(g)
    g.add_argument("--param", metavar="KEY=VALUE", type=_key_value, action="append",
                   default=[], help="any other method hyper-parameter (repeatable)")
    g = p.add_argument_group("run")
    g.add_argument("--iters", type=int, help="maximum iterations (default 1000)")
    g.add_argument("--tol", type=float, help="stop at relative error <= tol")
    g.add_argument("--record-every", type=int, help="history stride (default 1)")
    g.add_argument("--backend", help="numpy (default) or torch")
    g.add_argument("--device", help="cpu (default) or cuda")
    g.add_argument("--dtype", help="float64 (default) or float32")
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="FILE.csv|FILE.parquet", type=Path,
                   help="write the trajectory (one row per recorded iteration) and, "
                        "next to it, FILE.json with the configuration and the summary")
    g.add_argument("--figure", metavar="FILE.png", type=Path,
                   help="error-vs-iteration figure (default: next to --out, suffix .png)")
    g.add_argument("--no-figure", action="store_true", help="do not draw the figure")
    add_progress_flags(g, "run")
    g.add_argument("-v", "--verbose", action="store_true",
                   help="also print the operator kernel that ran (the planner's choice), the "
                        "backend, dtype and time per iteration")
    add_max_memory(g)
    p.set_defaults(func=cmd_run)


def config_from_args(args):
    """The :class:`~matsense.config.RunConfig` of ``matsense run``: the file, then the flags."""
    from .config import RunConfig

    overrides = {key: getattr(args, key) for key in RUN_FLAGS
                 if getattr(args, key, None) is not None}
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
        from .config import PROBLEM_KEYS

        merged = {k: v for k, v in merged.items() if k not in PROBLEM_KEYS}
    return RunConfig.from_dict({**merged, **overrides})


def _method_flag_values(args) -> dict:
    """The method flags given, each read as the method that runs declares its parameter
    (--method, else the run file's method, else the default)."""
    from .config import RunConfig, flatten, read_toml

    flags = {name: flag for name, flag in method_flags().items()
             if getattr(args, name, None) is not None}
    method = args.method
    if method is None and args.config is not None and any(f.kind is None for f in flags.values()):
        try:  # only for a flag whose methods type it differently
            method = flatten(read_toml(args.config)[1]).get("method")
        except ValueError:  # the file's own error follows, from RunConfig.from_toml
            pass
    method = method or RunConfig.method
    return {name: flag.value(method, getattr(args, name)) for name, flag in flags.items()}


#: The flags that describe a generated problem: they do not apply to --data.
GENERATED_PROBLEM_FLAGS = ("ensemble", "n1", "n2", "r", "m", *ensembles.keys(), "kappa",
                           "symmetric", "noise", "seed")


def _check_data_flags(args) -> None:
    """A flag of a generated problem next to ``--data`` is an error, not silently ignored."""
    given = [f"--{k.replace('_', '-')}" for k in GENERATED_PROBLEM_FLAGS
             if getattr(args, k, None) is not None]
    if given:
        raise ValueError(f"--data replaces the generated problem: {', '.join(given)} "
                         "cannot be used with it")


def _check_suffix(path: Path | None, allowed: tuple[str, ...], what: str) -> None:
    if path is not None and path.suffix.lower() not in allowed:
        raise ValueError(f"{what} must end in {' or '.join(allowed)}, got {str(path)!r}")


def _fit_rate(traj):
    """Linear rate of the error (of the residual without M*) on the trajectory's last phase."""
    from .rates import phase_rate

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
    label = {"rel_error": "‖P − M*‖_F / ‖M*‖_F",
             "residual_norm": "‖A(P) − y‖ (residual)"}[key]
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
    from .curvature import STABLE_LIMIT

    line = (f"switch       t = {int(t)}: r̂ = {int(extras['signal_rank'])}, "
            f"‖ΔFGᵀ‖/‖FGᵀ‖ = {float(extras['switch_change']):.2e}")
    before, after = float(extras["curvature_before"]), float(extras["curvature_after"])
    if before == before:  # measured (diagnostics on)
        line += (f", η·λ_max of the Gauss–Newton blocks {before:.3g} → {after:.3g} "
                 f"(stable below {STABLE_LIMIT:g})")
    print(line)


def cmd_run(args) -> int:
    from .init import get_init
    from .run import run

    _check_suffix(args.out, TRAJECTORY_SUFFIXES, "--out")
    _check_suffix(args.figure, FIGURE_SUFFIXES, "--figure")
    check_output(args.out, "--out")
    if args.out is not None:
        check_output(args.out.with_suffix(".json"), "--out")
        if args.figure is None and not args.no_figure:
            check_output(args.out.with_suffix(".png"), "--out")
    if not args.no_figure:
        check_output(args.figure, "--figure")
    cfg = config_from_args(args)
    problem = cfg.build_problem()
    method = cfg.build_method()
    init = cfg.build_init(problem)
    parameterization = "X Xᵀ" if not isinstance(init, tuple) else "F Gᵀ"
    n2 = cfg.n2 if cfg.n2 is not None else cfg.n1
    scale = f" (α={cfg.alpha:g})" if get_init(cfg.init).random else ""
    header = (f"{cfg.method} on {parameterization}: {cfg.ensemble}, n1={cfg.n1}, n2={n2}, "
              f"r={cfg.r}, m={problem.m}, k={cfg.k}, init={cfg.init}{scale}")
    if cfg.data is not None:
        (n1_, n2_), rank = problem.shape, problem.rank
        header = (f"{cfg.method} on {parameterization}: data {cfg.data} "
                  f"({problem.meta['source']}), n1={n1_}, n2={n2_}"
                  + (f", r={rank}" if rank is not None else "")
                  + f", m={problem.m}, k={cfg.k}, init={cfg.init}{scale}")
    print(header)
    if getattr(method, "note", None):
        print(f"note: {method.note}")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        traj = run(problem, method, init, cfg.iters, tol=cfg.tol, record_every=cfg.record_every,
                   progress=_show_progress(args))
    for w in caught:  # the method's own warnings (e.g. an unstable switch): one line each
        if issubclass(w.category, RuntimeWarning):
            print(f"matsense: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    summary = traj.summary()[0]
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
        print(f"kernel       {traj.config.get('kernel')} ({type(problem.operator).__name__}, "
              f"{tgt.backend} on {tgt.device}, {tgt.dtype}, {problem.m} measurements)")
        print(f"time         {traj.wall_time:.3g} s, {per_iter * 1e3:.3g} ms per iteration")
        _print_switch(traj.extras)
    after = f" after the {phase.event or phase.name} at t = {phase.start}" if phase.start > 0 else ""
    if traj.status == "diverged":
        print("linear rate  n/a: the run diverged (try a smaller --step-size)")
    elif fit.ok:
        print(f"linear rate  {fit.value:.4g} per iteration{after} (fit on t = {fit.t_start:g}"
              f"..{fit.t_end:g}, {fit.n_points} records, R² = {fit.r2:.4f})")
    else:
        print(f"linear rate  n/a{after}: {fit.reason}")

    written = []
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        written.append(traj.save(args.out))
        record = {"config": cfg.to_dict(), "summary": summary,
                  "linear_rate": fit.as_dict(), "wall_time": traj.wall_time,
                  "start_imbalance": (None if traj.start_imbalance is None
                                      else traj.start_imbalance.tolist())}
        meta = args.out.with_suffix(".json")
        from ._files import atomic_write_text
        from .experiments.results import jsonable  # NaN (not measured) as null

        atomic_write_text(meta, json.dumps(jsonable(record), indent=2, default=str) + "\n")
        written.append(meta)
    figure = args.figure
    if figure is None and args.out is not None:
        figure = args.out.with_suffix(".png")
    if figure is not None and not args.no_figure:
        figure.parent.mkdir(parents=True, exist_ok=True)
        title = f"{cfg.method}, {parameterization}, k={cfg.k}, {cfg.init}{scale}: {traj.status}"
        written.append(save_figure(traj, figure, title))
    for path in written:
        print(f"wrote        {path}")
    return 0


# ---------------------------------------------------------------- reproduce
def _claim_ids(text: str) -> list[str]:
    ids = [part.strip().upper() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError(f"expected claim ids such as C1,C4, got {text!r}")
    return ids


def register_reproduce(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce", help="reproduce the paper's claims C1–C8 (table, figures, report)",
        description="Run the experiments behind the paper's claims C1–C8, print the table of "
                    "measured vs expected numbers and write summary.json, the figures and "
                    "report.html under --out. Exits 0 even when a claim does not hold: the "
                    "table says which.")
    p.add_argument("--out", metavar="DIR", type=Path, default=Path("results"),
                   help="output directory (default: results)")
    p.add_argument("--quick", action="store_true",
                   help="fewer seeds and shorter runs (a smoke run)")
    p.add_argument("--setting", default="default", metavar="NAME",
                   help="the problem family: default (30×30, r = 2, σ = (1, 0.5)), paper (50×50, "
                        "rank 3), ill-conditioned (κ = 10), rectangular (40×25) or large "
                        f"({ensembles.large_listing()}; r = 5, k = 10; claims C3, C4, C7, C8 "
                        "unless --claims); α grids and iteration budgets follow from it")
    p.add_argument("--ensemble", default=ensembles.DEFAULT, metavar="NAME",
                   help=f"measurement ensemble of every problem: {ensembles.listing()}, or "
                        "'all' (each in "
                        "OUT/<name>/, and a table ensemble × claim in OUT/ensembles.json and "
                        "OUT/report.html); sizes: docs/ensembles.md")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="change one setting (repeatable): the problem family, e.g. --set n1=40 "
                        "--set n2=25 --set singular_values=1,0.2 --set k=5 --set m=1200, or a "
                        "claim's parameter, e.g. --set c4_window=1e-4,1e-6 --set c7_kappas=1,2 "
                        "(docs/claims.md)")
    p.add_argument("--seeds", type=int, metavar="N", help="number of seeds per setting")
    p.add_argument("--claims", type=_claim_ids, metavar="IDS",
                   help="a subset of the claims, comma-separated (e.g. C4,C7; default: all)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes that build the runs (default: the usable cores; 1: none); "
                        "the results do not depend on it")
    add_progress_flags(p, "reproduce")
    add_max_memory(p)
    p.set_defaults(func=cmd_reproduce)


def cmd_reproduce(args) -> int:
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    check_output(args.out, "--out", folder=True)
    from ._files import folder_lock

    # One reproduce per --out at a time: a second one is refused in one line (never a
    # summary.json mixing two runs' claims).
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with folder_lock(args.out, ".reproduce.lock", "matsense reproduce"):
        return _reproduce(args)


def _reproduce(args) -> int:
    try:
        from .experiments import format_table, reproduce
    except ImportError as exc:  # the module, or its entry points, not installed
        if exc.name != "matsense.experiments":
            raise
        print("matsense: error: this installation has no matsense.experiments.reproduce; "
              "'reproduce' is unavailable", file=sys.stderr)
        return 1
    from .experiments import ClaimSettings
    if args.ensemble != "all" and args.ensemble not in ensembles.NAMES:
        raise ValueError(f"unknown ensemble {args.ensemble!r}; known: "
                         f"{', '.join(ensembles.NAMES)}, all")
    subset = {} if args.claims is None else {"claims": args.claims}
    if args.ensemble == "all":
        return _reproduce_all(args, subset)
    settings = ClaimSettings.preset(args.setting, quick=args.quick, ensemble=args.ensemble)
    settings = settings.with_overrides(args.overrides).resolve()
    print(f"setting {settings.describe()} ({settings.mode} mode)")
    results = reproduce(args.out, seeds=args.seeds, settings=settings,
                        progress=_show_progress(args), workers=args.workers, **subset)
    print(format_table(results))
    out = Path(args.out)
    for name in ("summary.json", "report.html"):
        if (out / name).exists():
            print(f"wrote {out / name}")
    figures = sorted(out.rglob("*.png"))
    if figures:
        folders = sorted({str(f.parent) for f in figures})
        print(f"wrote {len(figures)} figures in {', '.join(folders)}")
    return 0


def _reproduce_all(args, subset) -> int:
    """``reproduce --ensemble all``: every ensemble in OUT/<name>/, then the verdict table."""
    from .experiments.ensembles import format_verdicts, reproduce_ensembles

    table = reproduce_ensembles(args.out, quick=args.quick, setting=args.setting,
                                overrides=args.overrides, seeds=args.seeds,
                                progress=_show_progress(args), workers=args.workers,
                                echo=print, **subset)
    print(format_verdicts(table))
    out = Path(args.out)
    print(f"wrote {out / 'ensembles.json'} and {out / 'report.html'}")
    return 0


# --------------------------------------------------------------------- main
def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="matsense",
        description="Gradient descent on low-rank matrix sensing: the over-parameterization "
                    "slowdown of Xiong, Ding & Du (ICLR 2024), its fixes and its peers.")
    parser.add_argument("--version", action="version", version=f"matsense {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_run(subparsers)
    register_reproduce(subparsers)
    for spec in REGISTRARS:
        registrar = _load_registrar(spec)
        if registrar is not None:
            registrar(subparsers)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``matsense`` console script; returns the exit status."""
    with warnings.catch_warnings():
        warnings.showwarning = _plugin_warnings_on_one_line(warnings.showwarning)
        return _main(argv)


def _plugin_warnings_on_one_line(show):
    """``showwarning`` that prints a :class:`~matsense.plugins.PluginWarning` (a plugin left
    out) as one line ``matsense: warning: …`` and passes every other warning to ``show``."""
    from .plugins import PluginWarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PluginWarning):
            print(f"matsense: warning: {_one_line(message)}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def _main(argv) -> int:
    args = None
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, argparse errors
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if getattr(args, "func", None) is None:
            parser.print_help(sys.stderr)
            return 2
        with _memory_limit(getattr(args, "max_memory", None)):
            return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"matsense: error: {_error_message(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk (ENOSPC, RLIMIT_FSIZE, quota): one line naming the file
        from ._files import disk_full_message, is_disk_full

        if not is_disk_full(exc):
            raise
        print(f"matsense: error: {disk_full_message(exc, getattr(args, 'out', None))}",
              file=sys.stderr)
        return 2
    except MemoryError as exc:  # an allocation the estimates did not foresee
        detail = _one_line(exc)
        print(f"matsense: error: out of memory{': ' + detail if detail else ''}; use a smaller "
              "problem or set --max-memory (MATSENSE_MAX_MEMORY) to be refused earlier",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        from .workers import Terminated

        if isinstance(exc, Terminated):
            print("matsense: terminated (SIGTERM)", file=sys.stderr)
            return 143
        print("matsense: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
