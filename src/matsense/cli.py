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
import os
import sys
import warnings
from pathlib import Path

from . import __version__, compat, ensembles

#: Registrars of commands that live in other modules, as "module:function".
REGISTRARS = [
    "matsense.compare:register",
    "matsense.sweep.cli:register",
    "matsense.plugins:register",
]

#: Exceptions that mean "bad input": one line on stderr, exit status 2.
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors and no prefix abbreviations of long options."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

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
            parser.add_argument(
                flag,
                dest="forced_progress",
                action=_Deprecated,
                nargs=0,
                default=False,
                note=f"matsense {cmd} {flag} is deprecated and goes away in {removal}: {instead}",
                help=f"deprecated (goes away in {removal}): progress even when "
                "stderr is not a terminal",
            )


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
    parser.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="most memory one problem or run may take, e.g. 8G or 512M "
        "(default: MATSENSE_MAX_MEMORY, else 90%% of the available memory); "
        "larger ones are refused before anything is allocated",
    )


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
        raise ValueError(
            f"{flag} {path}: cannot write in {parent} ({exc.strerror or exc})"
        ) from None


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


# ---------------------------------------------------------------- reproduce
def _claim_ids(text: str) -> list[str]:
    ids = [part.strip().upper() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError(f"expected claim ids such as C1,C4, got {text!r}")
    return ids


def register_reproduce(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="reproduce the paper's claims C1–C8 (or --suite robust: R1–R5)",
        description="Run the experiments behind a suite of claims — the paper's C1–C8 by "
        "default, --suite robust for R1–R5 (ℓ1 loss, outliers, sub-gradient "
        "methods) — print the table of measured vs expected numbers and write "
        "summary.json, the figures and report.html under --out. Exits 0 even when a "
        "claim does not hold: the table says which.",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=Path("results"),
        help="output directory (default: results)",
    )
    p.add_argument(
        "--quick", action="store_true", help="fewer seeds and shorter runs (a smoke run)"
    )
    _add_family_options(p)
    p.add_argument("--seeds", type=int, metavar="N", help="number of seeds per setting")
    p.add_argument(
        "--suite",
        default="paper",
        metavar="NAME",
        help="the claims to run: paper (C1–C8, default) or robust (R1–R5: the ℓ1 "
        "loss, outliers and sub-gradient methods; docs/robust.md)",
    )
    p.add_argument(
        "--claims",
        type=_claim_ids,
        metavar="IDS",
        help="a subset of the suite's claims, comma-separated (e.g. C4,C7 or R1,R3; default: all)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes that build the runs (default: the usable cores; 1: none); "
        "the results do not depend on it",
    )
    add_progress_flags(p, "reproduce")
    add_max_memory(p)
    p.set_defaults(func=cmd_reproduce)


def _add_family_options(p) -> None:
    """``reproduce``'s --setting, --ensemble and --set: the problem family the claims run on."""
    p.add_argument(
        "--setting",
        default="default",
        metavar="NAME",
        help="the problem family: default (30×30, r = 2, σ = (1, 0.5)), paper (50×50, "
        "rank 3), ill-conditioned (κ = 10), rectangular (40×25) or large "
        f"({ensembles.large_listing()}; r = 5, k = 10; claims C3, C4, C7, C8 "
        "unless --claims); α grids and iteration budgets follow from it",
    )
    p.add_argument(
        "--ensemble",
        default=ensembles.DEFAULT,
        metavar="NAME",
        help=f"measurement ensemble of every problem: {ensembles.listing()}, or "
        "'all' (each in "
        "OUT/<name>/, and a table ensemble × claim in OUT/ensembles.json and "
        "OUT/report.html); sizes: docs/ensembles.md",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="change one setting (repeatable): the problem family, e.g. --set n1=40 "
        "--set n2=25 --set singular_values=1,0.2 --set k=5 --set m=1200, or a "
        "claim's parameter, e.g. --set c4_window=1e-4,1e-6 --set c7_kappas=1,2 "
        "(docs/claims.md)",
    )


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
        print(
            "matsense: error: this installation has no matsense.experiments.reproduce; "
            "'reproduce' is unavailable",
            file=sys.stderr,
        )
        return 1
    from .experiments import ClaimSettings
    from .experiments.claims import suite_ids

    if args.ensemble != "all" and args.ensemble not in ensembles.NAMES:
        raise ValueError(
            f"unknown ensemble {args.ensemble!r}; known: {', '.join(ensembles.NAMES)}, all"
        )
    suite_ids(args.suite)  # an unknown suite: one line naming the known ones
    subset = {} if args.claims is None else {"claims": args.claims}
    if args.ensemble == "all":
        if args.suite != "paper":
            raise ValueError(
                f"--ensemble all runs the paper suite; run --suite {args.suite} "
                "on one ensemble at a time"
            )
        return _reproduce_all(args, subset)
    settings = ClaimSettings.preset(args.setting, quick=args.quick, ensemble=args.ensemble)
    settings = settings.with_overrides(args.overrides).resolve()
    print(f"setting {settings.describe()} ({settings.mode} mode)")
    results = reproduce(
        args.out,
        seeds=args.seeds,
        settings=settings,
        suite=args.suite,
        progress=_show_progress(args),
        workers=args.workers,
        **subset,
    )
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

    table = reproduce_ensembles(
        args.out,
        quick=args.quick,
        setting=args.setting,
        overrides=args.overrides,
        seeds=args.seeds,
        progress=_show_progress(args),
        workers=args.workers,
        echo=print,
        **subset,
    )
    print(format_verdicts(table))
    out = Path(args.out)
    print(f"wrote {out / 'ensembles.json'} and {out / 'report.html'}")
    return 0


# --------------------------------------------------------------------- main
def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="matsense",
        description="Gradient descent on low-rank matrix sensing: the over-parameterization "
        "slowdown of Xiong, Ding & Du (ICLR 2024), its fixes and its peers.",
    )
    parser.add_argument("--version", action="version", version=f"matsense {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _load_registrar("matsense.driver.cli:register")(subparsers)  # `run`, first in the help
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
        print(
            f"matsense: error: {disk_full_message(exc, getattr(args, 'out', None))}",
            file=sys.stderr,
        )
        return 2
    except MemoryError as exc:  # an allocation the estimates did not foresee
        detail = _one_line(exc)
        print(
            f"matsense: error: out of memory{': ' + detail if detail else ''}; use a smaller "
            "problem or set --max-memory (MATSENSE_MAX_MEMORY) to be refused earlier",
            file=sys.stderr,
        )
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
