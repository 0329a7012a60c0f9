"""The ``matsense compare`` subcommand."""

from __future__ import annotations

from pathlib import Path

from .. import ensembles


def register(subparsers):
    """Add ``compare [--out DIR] [--quick] [--seeds N] [--methods LIST] [--outlier-fraction P]
    [--no-progress] [--data FILE]`` to an argparse subparsers."""
    p = subparsers.add_parser(
        "compare",
        help="side-by-side comparison of GD, rebalanced GD and the peer methods",
        description="Run GD, rebalanced GD, ScaledGD, ScaledGD(λ), PrecGD, alternating "
        "preconditioned GD and SVP on κ ∈ {1, 10, 100} × k ∈ {r, 2r}; write "
        "compare.json, compare.md, curves and figures. The full setting (n = 100, "
        "3 seeds) takes ≈ 10 min on 2 CPU cores; --quick ≈ 10 s. --methods adds the robust "
        "ℓ1 methods subgm and scaledsm, --outlier-fraction corrupts every problem (docs/robust.md).",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default="results",
        help="output folder (default results; its report.html gains a peer-comparison section)",
    )
    p.add_argument("--quick", action="store_true", help="small problem (n = 30, r = 2), ≈ 10 s")
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        metavar="N",
        help="number of seeds (default 3 for the full setting, 1 for --quick)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes that run the (seed, κ) cells (default: the usable cores; 1: "
        "none); the results do not depend on it",
    )
    p.add_argument(
        "--ensemble",
        metavar="NAME",
        default=None,
        help=f"measurement ensemble: {ensembles.listing()} (docs/ensembles.md); "
        "m = 5nr measurements (entries)",
    )
    _add_robust_arguments(p)
    _add_data_arguments(p)
    from ..cli import add_max_memory, add_progress_flags

    add_progress_flags(p, "compare")  # each run logged to stderr; --progress: deprecated
    add_max_memory(p)
    p.set_defaults(func=_cli)
    return p


def _add_robust_arguments(p) -> None:
    """``--methods`` and the outlier keys (docs/robust.md)."""
    from .entries import ALL_KEYS, ENTRY_KEYS

    p.add_argument(
        "--methods",
        metavar="LIST",
        help=f"comma-separated methods to run, of {', '.join(ALL_KEYS)} "
        f"(default the ℓ2 ones: {', '.join(ENTRY_KEYS)}); subgm and scaledsm are the "
        "robust ℓ1 methods (docs/robust.md)",
    )
    g = p.add_argument_group("outliers on every problem of the grid (docs/robust.md)")
    g.add_argument(
        "--outlier-fraction",
        type=float,
        metavar="P",
        help="fraction p_s in [0, 1) of the measurements corrupted (default 0: none)",
    )
    g.add_argument(
        "--outlier-scale",
        type=float,
        metavar="C",
        help="outlier magnitude: up to C·‖𝒜(M*)‖_∞ (default 10)",
    )
    g.add_argument("--outlier-mode", metavar="MODE", help="add (default) or replace")


def _methods_and_outliers(args):
    """(methods or None, outliers dict or None) from the flags; one ValueError if bad."""
    from .entries import ALL_KEYS

    methods = None
    if args.methods is not None:
        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        unknown = [m for m in methods if m not in ALL_KEYS]
        if unknown or not methods:
            raise ValueError(
                f"--methods: unknown {', '.join(unknown) or 'empty list'}; "
                f"allowed: {', '.join(ALL_KEYS)}"
            )
    given = {
        key: value
        for key, value in (
            ("outlier_fraction", args.outlier_fraction),
            ("outlier_scale", args.outlier_scale),
            ("outlier_mode", args.outlier_mode),
        )
        if value is not None
    }
    if given and "outlier_fraction" not in given:
        raise ValueError("--outlier-scale and --outlier-mode need --outlier-fraction")
    return methods, given or None


def _add_data_arguments(p) -> None:
    """The ``--data FILE`` group: every method on a data set instead of the grid."""
    g = p.add_argument_group("your own data (instead of the grid of generated problems)")
    g.add_argument(
        "--data",
        metavar="FILE",
        type=Path,
        help="run every method on this data set, as `matsense run --data` reads it "
        "(observed entries, dense or rank-one measurements); writes "
        "compare.json, compare.md and compare_data.png",
    )
    g.add_argument(
        "--k",
        type=int,
        metavar="K",
        help="with --data: columns of the factors (default: the rank of M_star when "
        "the file has it)",
    )
    g.add_argument(
        "--iters",
        type=int,
        metavar="N",
        default=3000,
        help="with --data: most iterations per method (default 3000)",
    )


def _cli(args) -> int:
    # The package's compare(), which reads the presets FULL / QUICK from the package namespace.
    from . import compare

    # Bad input raises ValueError: matsense.cli.main turns it into one line and exit 2.
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    from ..cli import _show_progress, check_output

    check_output(args.out, "--out", folder=True)
    methods, outliers = _methods_and_outliers(args)
    if args.data is not None:
        return _cli_data(args)
    for flag, value in (("--k", args.k), ("--iters", args.iters if args.iters != 3000 else None)):
        if value is not None:
            raise ValueError(f"{flag} applies with --data only")
    from .._files import folder_lock

    # One compare per --out at a time (a second one is refused in one line): two would
    # truncate each other's compare_runs.jsonl and mix compare.json.
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with folder_lock(args.out, ".compare.lock", "matsense compare"):
        records = compare(
            args.out,
            quick=args.quick,
            seeds=args.seeds,
            progress=_show_progress(args),
            workers=args.workers,
            ensemble=args.ensemble,
            methods=methods,
            outliers=outliers,
        )
    n_conv = sum(r["status"] == "converged" for r in records)
    print(
        f"wrote {Path(args.out) / 'compare.json'} and compare.md: {len(records)} records, "
        f"{n_conv} converged on every seed"
    )
    return 0


def _cli_data(args) -> int:
    """``compare --data FILE``: every method on the data set (matsense.compare.data)."""
    from ..cli import _show_progress
    from ..data import load_problem
    from .data import compare_data

    given = [
        flag
        for flag, value in (
            ("--quick", args.quick),
            ("--seeds", args.seeds),
            ("--ensemble", args.ensemble),
            ("--workers", args.workers),
            ("--methods", args.methods),
            ("--outlier-fraction", args.outlier_fraction),
            ("--outlier-scale", args.outlier_scale),
            ("--outlier-mode", args.outlier_mode),
        )
        if value not in (None, False)
    ]
    if given:
        raise ValueError(
            f"--data replaces the grid of generated problems: {', '.join(given)} "
            "cannot be used with it"
        )
    if args.iters < 1:
        raise ValueError(f"--iters must be >= 1, got {args.iters}")
    problem = load_problem(args.data)
    k = args.k if args.k is not None else problem.rank
    if k is None:
        raise ValueError(f"{args.data} has no M_star to take the rank from: give --k")
    records = compare_data(
        problem,
        args.out,
        k=k,
        source=str(args.data),
        max_iters=args.iters,
        progress=_show_progress(args),
    )
    n_conv = sum(r["status"] == "converged" for r in records)
    print(
        f"wrote {Path(args.out) / 'compare.json'}, compare.md and compare_data.png: "
        f"{len(records)} methods on {args.data}, {n_conv} converged"
    )
    return 0
