"""The ``matsense sweep`` and ``matsense plot`` commands (wired by :mod:`matsense.cli`)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import warnings
from pathlib import Path

_SWEEP_DESCRIPTION = (
    "Expand a sweep spec (TOML: [base], [grid], [[zip]], [sweep]) into runs, "
    "advance runs that share a problem as one batch, and write one Parquet "
    "row per run and per recorded iteration to --out. Re-running on the same "
    "--out resumes (after checking the store: unusable files go to "
    "DIR/quarantine/, runs whose history is damaged run again). Exit status 0 "
    "when every run finished (converged, max_iters or diverged), 1 when some "
    "failed or could not be run, 128 + N when stopped by signal N (SIGINT, "
    "SIGTERM; the store stays resumable). --verify DIR checks a store and runs "
    "nothing. See docs/sweeps.md."
)


def register(subparsers) -> None:
    """Add the ``sweep`` and ``plot`` subcommands to ``subparsers``."""
    _register_sweep(subparsers)
    _register_plot(subparsers)


def _register_sweep(subparsers) -> None:
    """Add the ``sweep`` subcommand."""
    p = subparsers.add_parser(
        "sweep",
        help="run a declarative grid of runs into a resumable results store",
        description=_SWEEP_DESCRIPTION,
    )
    p.add_argument(
        "spec", metavar="SPEC", type=Path, nargs="?", help="sweep spec (.toml); not with --verify"
    )
    p.add_argument(
        "--out", metavar="DIR", type=Path, help="results directory (required unless --dry-run)"
    )
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="local worker processes (default) or Dask distributed",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="existing Dask scheduler, e.g. tcp://host:8786 (implies --executor dask)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (default: one per CPU; local: 0 = this process)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        metavar="B",
        help="most runs advanced together in one batch (default: the spec's, 128)",
    )
    p.add_argument("--retry-failed", action="store_true", help="also re-run failed runs")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the number of runs and batches and a few examples; run nothing",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar or status lines")
    p.add_argument(
        "--verify",
        metavar="DIR",
        type=Path,
        help="check the results store DIR (every part read, history rows matched "
        "against the runs table) and report; run nothing, change nothing; "
        "exit 0 when healthy, 1 otherwise",
    )
    from ..cli import add_max_memory

    add_max_memory(p)
    p.set_defaults(func=cmd_sweep)


def _register_plot(subparsers) -> None:
    """Add the ``plot`` subcommand."""
    q = subparsers.add_parser(
        "plot",
        help="plot a column of a sweep's runs table against another",
        description="Draw Y against X from the runs table of a sweep store (one point per run, "
        "a line through the median per X, one line per --hue value; log-log "
        "slopes in the legend).",
    )
    q.add_argument("dir", metavar="DIR", type=Path, help="results directory of a sweep")
    q.add_argument("--x", required=True, help="column for the x axis (e.g. alpha)")
    q.add_argument("--y", required=True, help="column for the y axis (e.g. rate)")
    q.add_argument("--hue", help="column whose values get one line each (e.g. k)")
    q.add_argument("--logx", action="store_true", help="logarithmic x axis")
    q.add_argument("--logy", action="store_true", help="logarithmic y axis")
    q.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        help="figure file (.png, .pdf, .svg; default DIR/plot-Y-vs-X.png)",
    )
    q.set_defaults(func=cmd_plot)


def cmd_sweep(args: argparse.Namespace) -> int:
    from .runner import describe_sweep, run_sweep

    if args.verify is not None:
        if args.spec is not None or args.out is not None:
            raise ValueError(
                "--verify DIR checks a store and runs nothing: give it without SPEC and --out"
            )
        from .store import verify

        report = verify(args.verify)
        print(report)
        return 0 if report.healthy else 1
    if args.spec is None:
        raise ValueError("sweep needs a SPEC (a .toml file), or --verify DIR")
    executor = args.executor
    if args.scheduler is not None:
        executor = "dask"
    if args.dry_run:
        print(describe_sweep(args.spec, args.out, workers=args.workers, max_batch=args.max_batch))
        return 0
    if args.out is None:
        raise ValueError("sweep needs --out DIR (the results directory), or --dry-run")
    from ..cli import check_output

    check_output(args.out, "--out", folder=True)
    try:
        with _one_line_warnings():
            summary = run_sweep(
                args.spec,
                args.out,
                executor=executor,
                scheduler=args.scheduler,
                workers=args.workers,
                max_batch=args.max_batch,
                retry_failed=args.retry_failed,
                progress="off" if args.no_progress else "auto",
            )
    except ImportError as exc:  # Dask not installed: a one-line user error
        raise ValueError(str(exc)) from None
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (matsense.workers.Terminated)
        signum = getattr(exc, "signum", signal.SIGINT)
        print(
            f"matsense: sweep stopped by {signal.Signals(signum).name}; the finished batches "
            f"are in {args.out}: run the same command to resume",
            file=sys.stderr,
        )
        return 128 + signum
    print(summary)
    for run_id, message in summary.failures[:5]:
        print(f"  failed {run_id}: {message}")
    return 0 if summary.failed == 0 and summary.lost == 0 else 1


@contextlib.contextmanager
def _one_line_warnings():
    """Show warnings (e.g. files moved to quarantine/) as ``matsense: warning: ...`` lines."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"matsense: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def cmd_plot(args: argparse.Namespace) -> int:
    from ..cli import check_output
    from .plot import plot_store

    check_output(args.out, "--out")
    out = args.out or Path(args.dir) / f"plot-{args.y}-vs-{args.x}.png"
    plot_store(args.dir, args.x, args.y, hue=args.hue, logx=args.logx, logy=args.logy, out=out)
    print(f"wrote {out}")
    return 0
