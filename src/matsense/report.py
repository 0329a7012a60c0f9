"""A static, self-contained HTML report built from sections.

The report is a list of :class:`Section` s rendered in order by
:func:`write_report`: each has a title, an optional intro paragraph, an
optional :class:`Table`, a list of :class:`Figure` s (paths relative to the
report, each with a caption) and optional raw HTML. The claims C1–C8 make one
section (:func:`claims_section`); another module appends its own, e.g. a peer
comparison::

    from matsense import report
    from matsense.compare import compare_section
    from matsense.experiments import load_summary

    sections = [report.claims_section(load_summary("out/summary.json")),
                compare_section(compare_records, figure_paths)]
    report.write_report("out", sections)

The page has no external resources: CSS is inline and figures are referenced
by relative path (the PNG/SVG files sit next to the page), so the directory
can be copied or zipped as a whole.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._files import atomic_write_text, folder_lock

REPORT_NAME = "report.html"
SECTIONS_DIR = "report_sections"

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
h3 { font-size: 1.05em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .35em .6em; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
td.holds { color: #17692a; font-weight: 600; } td.fails { color: #b00020; font-weight: 600; }
figure { margin: 1em 0 2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; margin-top: .3em; }
p.meta, p.reason { font-size: .9em; color: #555; } p.reason { color: #b00020; }
code { background: #f6f6f6; padding: 0 .2em; }
"""


@dataclass
class Figure:
    """A figure file (path relative to the report) and its caption."""

    path: str
    caption: str = ""
    alt: str = ""


@dataclass
class Table:
    """A table of strings; ``cell_classes`` optionally gives a CSS class per cell."""

    header: list
    rows: list
    cell_classes: list | None = None


@dataclass
class Section:
    """One section of the report, rendered as: title, intro, table, raw html, figures."""

    title: str
    intro: str = ""
    table: Table | None = None
    figures: list = field(default_factory=list)
    html: str = ""
    anchor: str | None = None
    subsections: list = field(default_factory=list)


def _slug(text: str) -> str:
    out = "".join(ch.lower() if ch.isalnum() else "-" for ch in text)
    return "-".join(filter(None, out.split("-"))) or "section"


def table_html(table: Table) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(h))}</th>" for h in table.header)
    body = []
    for i, row in enumerate(table.rows):
        classes = table.cell_classes[i] if table.cell_classes else [None] * len(row)
        cells = "".join(
            f'<td class="{esc(c)}">{esc(str(v))}</td>' if c else f"<td>{esc(str(v))}</td>"
            for v, c in zip(row, classes)
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


def figure_html(fig: Figure) -> str:
    esc = html.escape
    alt = fig.alt or fig.caption or Path(fig.path).stem
    cap = f"<figcaption>{esc(fig.caption)}</figcaption>" if fig.caption else ""
    return f'<figure><img src="{esc(fig.path)}" alt="{esc(alt)}">{cap}</figure>'


def section_html(section: Section, level: int = 2) -> str:
    anchor = section.anchor or _slug(section.title)
    parts = [
        f'<section id="{html.escape(anchor)}">',
        f"<h{level}>{html.escape(section.title)}</h{level}>",
    ]
    if section.intro:
        parts.append(f"<p>{html.escape(section.intro)}</p>")
    if section.table is not None:
        parts.append(table_html(section.table))
    if section.html:
        parts.append(section.html)
    parts += [figure_html(f) for f in section.figures]
    parts += [section_html(sub, min(level + 1, 6)) for sub in section.subsections]
    parts.append("</section>")
    return "\n".join(parts)


def _entry(section) -> tuple[str, str, str]:
    """(title, anchor, html) of a :class:`Section` or of an already rendered triple."""
    if isinstance(section, Section):
        return section.title, section.anchor or _slug(section.title), section_html(section)
    title, anchor, body = section
    return str(title), str(anchor), str(body)


def render(sections, title: str = "matsense report", subtitle: str = "") -> str:
    """The whole page as a string; ``sections`` are Sections or (title, anchor, html) triples."""
    esc = html.escape
    entries = [_entry(s) for s in sections]
    toc = "".join(f'<li><a href="#{esc(anchor)}">{esc(t)}</a></li>' for t, anchor, _ in entries)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    body = "\n".join(b for _, _, b in entries)
    sub = f"<p>{esc(subtitle)}</p>" if subtitle else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<h1>{esc(title)}</h1>\n{sub}<p class="meta">Generated {stamp} by matsense.</p>\n'
        f"<ul>{toc}</ul>\n{body}\n</body>\n</html>\n"
    )


def write_report(
    out_dir,
    sections,
    *,
    title: str = "matsense: reproducing Xiong, Ding & Du (ICLR 2024)",
    subtitle: str = "",
    filename: str = REPORT_NAME,
) -> Path:
    """Render ``sections`` into ``out_dir/filename`` and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / filename
    # Atomic (temp file, then rename): a kill or a full disk mid-write leaves the previous
    # page or none, never a truncated one that looks complete.
    atomic_write_text(path, render(list(sections), title, subtitle))
    return path


def publish_section(out_dir, key: str, section, *, order: int) -> Path:
    """Store one producer's section under ``out_dir/report_sections`` and rebuild the page.

    Every command that writes into the same folder (``matsense reproduce``,
    ``matsense compare``) publishes its own section, so the folder's
    ``report.html`` shows all of them, ordered by ``order``, whichever ran
    last. ``section`` is a :class:`Section` or a (title, anchor, html) triple.
    """
    out_dir = Path(out_dir)
    folder = out_dir / SECTIONS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    title, anchor, body = _entry(section)
    payload = {"title": title, "anchor": anchor, "html": body}
    target = folder / f"{order:02d}-{key}.json"
    # One publisher at a time (reproduce and compare may share a folder and finish together):
    # each rebuilds the page from every section, its own included, under the folder's lock.
    with folder_lock(folder, ".lock", "report writer", blocking=True):
        atomic_write_text(target, json.dumps(payload))
        for old in folder.glob(f"*-{key}.json"):
            if old != target:
                old.unlink()
        entries = [
            tuple(json.loads(f.read_text(encoding="utf-8"))[k] for k in ("title", "anchor", "html"))
            for f in sorted(folder.glob("*.json"))
        ]
        return write_report(out_dir, entries)


# ------------------------------------------------------------- the claims
def pick_figures(paths, prefer: str = "png") -> list[str]:
    """One file per stem for display: the ``prefer`` format ('png': small, renders
    everywhere; 'svg': sharp at any size), else the other one."""
    chosen: dict[str, str] = {}
    for p in paths:
        stem, _, ext = str(p).rpartition(".")
        if ext.lower() not in ("png", "svg"):
            continue
        if stem not in chosen or ext.lower() == prefer:
            chosen[stem] = str(p)
    return list(chosen.values())


def claims_section(
    results,
    *,
    settings: dict | None = None,
    seconds: float | None = None,
    title: str = "Claims C1–C8 of Xiong, Ding & Du (ICLR 2024)",
    docs: str = "docs/claims.md",
    anchor: str = "claims",
) -> Section:
    """The section of a suite of claims (``title``; C1–C8 by default): the verdict table and one
    subsection per claim; ``docs`` names where the criteria are explained."""
    rows, classes, subs = [], [], []
    for r in results:
        verdict = "holds" if r.holds else "does not hold"
        rows.append([r.id, r.title, r.measured, r.expected, verdict])
        classes.append([None, None, None, None, "holds" if r.holds else "fails"])
        subs.append(_claim_subsection(r))
    n_hold = sum(bool(r.holds) for r in results)
    intro = (
        f"{n_hold} of {len(results)} claims hold. Each claim is measured on every seed "
        "(and every α where it applies); the table gives the median and [min, max]. The "
        "criteria are fixed before any run, the same for every setting, and explained in "
        f"{docs}."
    )
    if settings:
        intro += _setting_sentence(settings)
    if seconds is not None:
        intro += f" Total time {seconds:.1f} s."
    return Section(
        title,
        intro=intro,
        table=Table(["claim", "statement", "measured", "expected", "verdict"], rows, classes),
        subsections=subs,
        anchor=anchor,
    )


def _claim_subsection(r) -> Section:
    """One claim's subsection: why it does not hold (if so), measured vs expected, its figures
    and the links to every figure file."""
    parts = []
    if not r.holds and r.reason:
        parts.append(f'<p class="reason">Does not hold: {html.escape(r.reason)}</p>')
    parts.append(
        f"<p><b>Measured:</b> {html.escape(r.measured)}<br>"
        f"<b>Expected:</b> {html.escape(r.expected)}<br>"
        f'<span class="meta">seeds {html.escape(str(r.seeds))}, '
        f"{r.seconds:.1f} s</span></p>"
    )
    figs = [Figure(p, caption=_caption(r, p)) for p in pick_figures(r.figures)]
    links = " · ".join(
        f'<a href="{html.escape(str(p))}">{html.escape(Path(p).name)}</a>' for p in r.figures
    )
    if links:
        parts.append(f'<p class="meta">Files: {links}</p>')
    return Section(f"{r.id}: {r.title}", html="\n".join(parts), figures=figs, anchor=r.id.lower())


def _setting_sentence(settings: dict) -> str:
    """The sentence of the intro that describes the setting (its record in summary.json)."""
    sv = ", ".join(f"{v:g}" for v in settings.get("singular_values", []))
    n2 = settings.get("n2") or settings.get("n1", settings.get("n"))
    ensemble = settings.get("ensemble", "gaussian")
    return (
        f" Setting '{settings.get('setting', 'default')}' ({settings.get('mode', '')} "
        f"mode), {ensemble} measurements"
        + (f" (observed fraction p = {settings['p']:.3g})" if settings.get("p") else "")
        + f": {settings.get('n1', settings.get('n'))}×{n2} (PSD problems "
        f"{settings.get('n1', settings.get('n'))}×{settings.get('n1', settings.get('n'))}), "
        f"r = {settings.get('r')}, m = {settings.get('m')}, σ = ({sv}), "
        f"k = {settings.get('k')}"
        + (f", η = {settings['eta']}, α ∈ {settings['alphas']}." if "eta" in settings else ".")
    )


def _caption(result, path) -> str:
    """The claim's own caption (``ClaimResult.caption``), prefixed with its id."""
    base = getattr(result, "caption", "")
    return f"{result.id}: {base}" if base else result.id


__all__ = [
    "Figure",
    "Table",
    "Section",
    "table_html",
    "figure_html",
    "section_html",
    "render",
    "write_report",
    "publish_section",
    "claims_section",
    "pick_figures",
    "REPORT_NAME",
]
