"""The claims on every measurement ensemble: one reproduction each, then one verdict table.

:func:`reproduce_ensembles` runs :func:`~matsense.experiments.reproduce` once per
ensemble (``OUT/<ensemble>/``: summary.json, figures, report.html), with the
same setting, seeds and criteria, and writes ``OUT/ensembles.json`` and the
section "Claims across ensembles" of ``OUT/report.html``: a table ensemble ×
claim, each cell the verdict and the claim's key measured number. The CLI:
``matsense reproduce --ensemble all [--quick] --out OUT``.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

from .. import ensembles as _ensembles
from .. import report
from .._files import atomic_write_text
from .claims import TITLES
from .reproduction import reproduce
from .results import jsonable
from .settings import ClaimSettings

TITLE = "Claims across ensembles"
ANCHOR = "ensembles"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def key_number(result) -> str:
    """A claim's headline number: the first clause of its measured text (and the next one
    while that says n/a), then, when it does not hold, the first reason given."""
    clauses = [c.strip() for c in str(result.measured or "n/a").split(";") if c.strip()]
    key = clauses[:1] or ["n/a"]
    for clause in clauses[1:]:
        if "n/a" not in key[-1]:
            break
        key.append(clause)
    text = _clip("; ".join(key), 120)
    if not result.holds and result.reason:
        text += " — " + _clip(str(result.reason).split(";")[0].strip(), 120)
    return text


def reproduce_ensembles(
    out_dir,
    ensembles=_ensembles.NAMES,
    *,
    quick: bool = False,
    setting: str = "default",
    overrides=(),
    seeds=None,
    claims=None,
    progress: bool = False,
    workers: int | None = None,
    echo=None,
) -> dict:
    """Reproduce the claims on each of ``ensembles``; write ensembles.json and the report section.

    Returns the table as written to ``ensembles.json``: ``{"ensembles": [{"ensemble",
    "setting", "seconds", "claims": {id: {"holds", "key", "measured", "reason"}}}], ...}``.
    ``echo`` (e.g. ``print``) receives one line per finished ensemble.
    """
    out = Path(out_dir)
    rows = []
    for ensemble, settings in _plan(ensembles, setting, quick, overrides):
        start = time.perf_counter()
        results = reproduce(
            out / ensemble,
            seeds=seeds,
            settings=settings,
            progress=progress,
            workers=workers,
            claims=claims,
        )
        seconds = time.perf_counter() - start
        rows.append(_row(ensemble, settings, results, seconds))
        if echo is not None:
            n_hold = sum(bool(r.holds) for r in results)
            echo(
                f"{ensemble}: {n_hold}/{len(results)} claims hold ({seconds:.0f} s) -> "
                f"{out / ensemble}"
            )
    table = {
        "ensembles": rows,
        "claims": {cid: TITLES[cid] for row in rows for cid in row["claims"]},
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "ensembles.json", json.dumps(jsonable(table), indent=2) + "\n")
    report.publish_section(out, "ensembles", ensembles_section(table), order=3)
    return table


def _plan(ensembles, setting: str, quick: bool, overrides) -> list:
    """(ensemble, resolved settings) for each ensemble to run: every ensemble's settings first,
    so that a bad override fails before anything runs ('large': only the ensembles whose
    record has a large size)."""
    if setting == "large":
        ensembles = [e for e in ensembles if e in _ensembles.with_large()]
    return [
        (
            ensemble,
            ClaimSettings.preset(setting, quick=quick, ensemble=ensemble)
            .with_overrides(list(overrides or ()))
            .resolve(),
        )
        for ensemble in ensembles
    ]


def _row(ensemble: str, settings, results, seconds: float) -> dict:
    """One ensemble's row of ``ensembles.json``: its setting, time and each claim's verdict."""
    return {
        "ensemble": ensemble,
        "setting": settings.describe(),
        "mode": settings.mode,
        "seconds": seconds,
        "claims": {
            r.id: {
                "holds": bool(r.holds),
                "key": key_number(r),
                "measured": r.measured,
                "expected": r.expected,
                "reason": r.reason,
            }
            for r in results
        },
    }


def _claim_ids(table: dict) -> list[str]:
    return list(dict.fromkeys(cid for row in table["ensembles"] for cid in row["claims"]))


def _cell(entry) -> tuple[str, str | None]:
    if entry is None:
        return "not run", None
    verdict = "holds" if entry["holds"] else "does not hold"
    return f"{verdict}: {entry['key']}", "holds" if entry["holds"] else "fails"


def ensembles_section(table: dict) -> report.Section:
    """The verdict table ensemble × claim as a :class:`matsense.report.Section`."""
    rows_in = table["ensembles"]
    ids = _claim_ids(table)
    rows, classes = [], []
    for cid in ids:
        cells = [_cell(row["claims"].get(cid)) for row in rows_in]
        rows.append([cid, TITLES.get(cid, cid), *(text for text, _ in cells)])
        classes.append([None, None, *(cls for _, cls in cells)])
    totals = [
        f"{sum(c['holds'] for c in row['claims'].values())}/{len(row['claims'])} hold, "
        f"{row['seconds']:.0f} s"
        for row in rows_in
    ]
    rows.append(["", "total", *totals])
    classes.append([None] * (2 + len(rows_in)))
    links = ", ".join(
        f'<a href="{html.escape(row["ensemble"])}/report.html">'
        f"{html.escape(row['ensemble'])}</a> ({html.escape(row['setting'])})"
        for row in rows_in
    )
    intro = (
        "The claims C1–C8 measured on each measurement ensemble with the same family of "
        "settings, seeds and criteria (docs/ensembles.md gives the sizes and what each "
        "ensemble can recover). A claim that does not hold on an ensemble is a finding "
        "about that ensemble, reported with its numbers; the criteria are never changed "
        "per ensemble."
    )
    return report.Section(
        TITLE,
        intro=intro,
        table=report.Table(
            ["claim", "statement", *(row["ensemble"] for row in rows_in)], rows, classes
        ),
        html=f'<p class="meta">Per-ensemble reports: {links}.</p>',
        anchor=ANCHOR,
    )


def format_verdicts(table: dict) -> str:
    """Plain text: one line per claim, a yes/NO column per ensemble, then the totals."""
    rows_in = table["ensembles"]
    names = [row["ensemble"] for row in rows_in]
    width = max([len(n) for n in names] + [5])
    lines = ["claim  " + "  ".join(n.ljust(width) for n in names)]
    for cid in _claim_ids(table):
        cells = []
        for row in rows_in:
            entry = row["claims"].get(cid)
            cells.append("-" if entry is None else ("yes" if entry["holds"] else "NO"))
        lines.append(cid.ljust(7) + "  ".join(c.ljust(width) for c in cells))
    lines.append("time   " + "  ".join(f"{row['seconds']:.0f} s".ljust(width) for row in rows_in))
    return "\n".join(lines)


__all__ = ["reproduce_ensembles", "ensembles_section", "format_verdicts", "key_number"]
