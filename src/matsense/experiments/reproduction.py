"""Running the claims: :func:`run_claims` (results in memory) and :func:`reproduce`
(summary.json, figures and report.html).

The runs the claims need are built first, in worker processes (see
:func:`~matsense.experiments.runs.compute_runs`); each claim then measures,
judges and draws (see :mod:`matsense.experiments.claims`).
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

import numpy as np

from . import runs as _runs
from .claims import CLAIMS, DEFAULT_SUITE, SUITE_DOCS, SUITE_TITLES, TITLES, suite_ids, suite_of
from .declare import run_names
from .results import ClaimResult, Verdicts, write_summary
from .settings import LARGE_CLAIMS, ClaimSettings


def seed_list(seeds, default: int) -> list[int]:
    """``None`` → 0..default−1; an int N → 0..N−1; a sequence → those seeds."""
    if seeds is None:
        return list(range(default))
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        return list(range(int(seeds)))
    try:
        out = [int(x) for x in seeds]
    except (TypeError, ValueError):
        raise ValueError(
            f"seeds must be None, an int >= 1 or a list of ints >= 0, got {seeds!r}"
        ) from None
    if not out or min(out) < 0 or len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct non-negative integers, got {seeds!r}")
    return out


def claim_ids(claims, settings: ClaimSettings, suite: str = DEFAULT_SUITE) -> list[str]:
    """The ids of ``claims`` ('C4,C7' or a sequence; upper-cased), checked against
    :data:`~matsense.experiments.CLAIMS` and ``suite``; ``None``: every claim of the suite
    (the paper's at ``large``: its own)."""
    every = suite_ids(suite)
    if settings.setting == "large" and suite != DEFAULT_SUITE:
        raise ValueError(f"setting 'large' is defined for the paper suite only, not {suite!r}")
    if isinstance(claims, str):
        claims = [c for c in claims.replace(" ", ",").split(",") if c]
    if claims is None:
        return list(LARGE_CLAIMS) if settings.setting == "large" else every
    ids = [str(c).strip().upper() for c in claims]
    unknown = [c for c in ids if c not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claims {unknown}; known: {', '.join(CLAIMS)}")
    other = [c for c in ids if c not in every]
    if other:
        raise ValueError(
            f"claims {other} are not in suite {suite!r} (its claims: "
            f"{', '.join(every)}); choose their suite, e.g. --suite "
            f"{suite_of(CLAIMS[other[0]])}"
        )
    return ids


def settings_record(settings: ClaimSettings, suite: str = DEFAULT_SUITE) -> dict:
    """``settings.as_dict()`` without the parameters that only other suites' claims declare
    (the paper suite's record is the same as before the robust suite existed)."""
    mine = {p.name for cid in suite_ids(suite) for p in CLAIMS[cid].parameters}
    others = {
        p.name for cid in CLAIMS if suite_of(CLAIMS[cid]) != suite for p in CLAIMS[cid].parameters
    } - mine
    return {k: v for k, v in settings.as_dict().items() if k not in others}


def _failed(cid: str, exc: BaseException) -> ClaimResult:
    return ClaimResult(
        cid,
        TITLES[cid],
        "n/a",
        "n/a",
        False,
        {"traceback": traceback.format_exc()},
        [],
        f"experiment failed: {type(exc).__name__}: {exc}",
        caption=CLAIMS[cid].caption,
    )


def run_claims(
    ids,
    settings: ClaimSettings,
    seeds,
    out_dir=None,
    *,
    progress: bool = False,
    catch: bool = True,
    workers: int | None = 1,
    suite: str = DEFAULT_SUITE,
) -> list[ClaimResult]:
    """Run the claims ``ids`` over ``seeds`` (runs shared between claims); no files but figures.
    Each result's settings are those of ``suite`` (:func:`settings_record`).

    The runs the claims need are built first, ``workers`` processes at a time
    (see :func:`~matsense.experiments.runs.compute_runs`); the analysis then
    runs here.
    """
    from .._files import is_disk_full

    settings = settings.resolve()
    log = _runs.stderr_log if progress else None
    runs = [_runs.SeedRuns(settings, s, log) for s in seeds]
    # a run two claims read is built once
    names = list(dict.fromkeys(name for cid in ids for name in run_names(CLAIMS[cid])))
    used = _runs.compute_runs(runs, names, workers, progress)
    if log and used > 1:
        log(f"built {len(names) * len(runs)} runs in {used} worker processes")
    results = []
    record = settings_record(settings, suite)
    for cid in ids:
        start = time.perf_counter()
        if log:
            log(f"{cid}: {TITLES[cid]}")
        try:
            res = CLAIMS[cid](runs, settings, out_dir)
        except Exception as exc:  # an experiment bug must not hide the other claims
            if not catch or is_disk_full(exc):  # a full disk is no claim's failure: stop
                raise
            res = _failed(cid, exc)
        res.seconds = time.perf_counter() - start
        res.seeds = list(seeds)
        res.settings = dict(record)
        results.append(res)
        if log:
            log(f"{cid}: {'holds' if res.holds else 'does NOT hold'} ({res.seconds:.1f} s)")
    return results


def _publish(out_dir, results, settings, suite: str, seconds: float) -> None:
    """The suite's section of out_dir/report.html (the paper's first, under the anchor 'claims')."""
    from .. import report

    paper = suite == DEFAULT_SUITE
    key = "claims" if paper else f"claims-{suite}"
    family = settings.as_dict()
    if not paper:  # GD's η and the α grid are the paper suite's; its claims name their own
        family = {k: v for k, v in family.items() if k not in ("eta", "alphas")}
    section = report.claims_section(
        results,
        settings=family,
        seconds=seconds,
        title=SUITE_TITLES.get(suite, f"Claims of the suite {suite}"),
        docs=SUITE_DOCS.get(suite, "the suite's documentation"),
        anchor=key,
    )
    report.publish_section(out_dir, key, section, order=1 if paper else 2)


def reproduce(
    out_dir,
    *,
    quick: bool = False,
    seeds=None,
    progress: bool = False,
    claims=None,
    settings: ClaimSettings | None = None,
    workers: int | None = None,
    setting: str = "default",
    overrides=None,
    ensemble: str = "gaussian",
    suite: str = DEFAULT_SUITE,
) -> list[ClaimResult]:
    """Reproduce a suite of claims (the paper's C1–C8 by default); write summary.json, figures
    and report.html; return the list of ClaimResult, in claim order.

    Parameters
    ----------
    out_dir : path
        Output directory (created). Figures go to ``out_dir/figures`` as PNG and SVG;
        ``summary.json`` and ``report.html`` to ``out_dir``.
    quick : bool
        Quick mode (2 seeds, two α where a claim sweeps α, shorter horizons) instead of full
        mode (3 seeds).
    setting : str
        A preset of :data:`~matsense.experiments.settings.PRESETS`: 'default', 'paper'
        (50×50, rank 3), 'ill-conditioned' (κ = 10), 'rectangular'.
    overrides : dict or sequence of 'key=value', optional
        Changes to the preset (``ClaimSettings.with_overrides``), e.g.
        ``["n1=40", "n2=25", "singular_values=1,0.2"]``; budgets and α follow.
    seeds : None, int or sequence of int
        ``None``: the mode's default count; ``N``: seeds 0…N−1; a sequence: those seeds. Seed
        s draws problem s and the initial factors from (s, role), see
        :func:`~matsense.experiments.settings.init_seed`.
    progress : bool
        Log each run and verdict to stderr.
    claims : sequence of str or str, optional
        A subset of the suite's claims (default all), e.g. ``["C4", "C7"]`` or ``"C4,C7"``.
    suite : str
        'paper' (C1–C8 and the plugins' claims, the default) or 'robust' (R1–R5:
        docs/robust.md), or a suite a plugin's claims name
        (:func:`~matsense.experiments.claims.suite_names`). ``summary.json`` names it.
    ensemble : str
        The measurement ensemble of every problem (:data:`matsense.problems.ENSEMBLES`; sizes
        in :mod:`~matsense.experiments.settings`, docs/ensembles.md), named in the outputs.
    settings : ClaimSettings, optional
        Override every setting (then ``quick``, ``setting``, ``ensemble`` and ``overrides``
        are ignored); e.g. ``ClaimSettings.quick().replace(eta=50.0)`` to see a diverging run.
    workers : int, optional
        Processes that build the runs, one (seed, run) at a time (default: the usable cores,
        at most the number of runs; 1: all in this process). Every run uses one BLAS / kernel
        thread wherever it runs, so the results are bitwise the same for any ``workers``.
        Workers are spawned: a script calling this with ``workers`` ≠ 1 needs an
        ``if __name__ == "__main__":`` guard (the CLI has one).
    """
    settings = _settings(settings, setting, quick, ensemble, overrides)
    return _reproduce(out_dir, settings, claims, seeds, progress, workers, suite)


def _settings(settings, setting, quick, ensemble, overrides) -> ClaimSettings:
    """:func:`reproduce`'s resolved settings (``settings``, or the preset with ``overrides``);
    refused in a worker process's bootstrap."""
    from .._validate import not_in_worker_bootstrap

    not_in_worker_bootstrap("matsense.experiments.reproduce()")
    if settings is None:
        settings = ClaimSettings.preset(setting, quick=quick, ensemble=ensemble)
        if overrides:
            settings = settings.with_overrides(overrides)
    return settings.resolve()


def _reproduce(out_dir, settings, claims, seeds, progress, workers, suite) -> Verdicts:
    """:func:`reproduce` with its settings resolved: run the claims, write the summary and
    publish the figures and report."""
    ids = claim_ids(claims, settings, suite)
    seeds = seed_list(seeds, settings.n_seeds)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = run_claims(
        ids, settings, seeds, out_dir, progress=progress, workers=workers, suite=suite
    )
    write_summary(results, out_dir / "summary.json", ensemble=settings.ensemble, suite=suite)
    _publish(out_dir, results, settings, suite, time.perf_counter() - start)
    return Verdicts(results)
