"""The comparison's section of the HTML report: an intro, the results table and the figures."""

from __future__ import annotations

from pathlib import Path

from .. import ensembles, report
from .outputs import TABLE_HEADER, table_row

TITLE = "Peer comparison"
ANCHOR = "peer-comparison"


def compare_section(records, figure_paths=()) -> report.Section:
    """The comparison as a :class:`matsense.report.Section`.

    ``figure_paths`` are used verbatim as image sources (pass paths relative
    to the report); when a PNG and an SVG share a stem only the SVG is shown.
    """
    tol = records[0]["tol"] if records else 1e-10
    # records of before the key existed are of the default ensemble
    ensemble = records[0].get("ensemble", ensembles.DEFAULT) if records else ensembles.DEFAULT
    intro = (
        f"Iterations and wall time to relative error {tol:g} (medians over seeds, "
        f"{ensemble} measurements), for the "
        "paper's GD and rebalanced GD next to ScaledGD, ScaledGD(λ), PrecGD, alternating "
        "preconditioned GD and SVP. Reference figures are those of docs/methods.md."
    )
    figures = [
        report.Figure(
            p, caption=Path(p).stem, alt=f"relative error vs iteration and time: {Path(p).stem}"
        )
        for p in report.pick_figures(figure_paths, prefer="svg")
    ]
    return report.Section(
        TITLE,
        intro=intro,
        table=report.Table(list(TABLE_HEADER), [table_row(r) for r in records]),
        figures=figures,
        anchor=ANCHOR,
    )


def compare_html_section(records, figure_paths=()) -> str:
    """The comparison's ``<section>`` as HTML (see :func:`compare_section`)."""
    return report.section_html(compare_section(records, figure_paths))
