"""The paper's claims C1–C8 (docs/claims.md) and the robust suite R1–R5
(docs/robust.md) as experiments with a measured verdict.

One module per claim or group of claims, each a :class:`~.base.Claim` that
declares its parameters and runs (:mod:`matsense.experiments.declare`) and has
its typed criteria, its measurement, its verdict and its figure:

=============================  ==================================================
:mod:`.exact`                  C1, C3 — k = r: linear convergence
:mod:`.sublinear`              C2 — X Xᵀ, k > r: error ∝ 1/t
:mod:`.alpha`                  C4 — F Gᵀ, k > r: linear, rate ∝ α²
:mod:`.symmetry`               C5, C6 — the curse of symmetry (shared setup)
:mod:`.rebalancing`            C7 — one-step rebalancing
:mod:`.imbalance`              C8 — the imbalance is nearly conserved
=============================  ==================================================

:data:`CLAIMS` maps each id to its claim (C1–C8, R1–R5, then the claims other
packages add through the entry-point group ``matsense.claims``: :mod:`matsense.plugins`,
docs/plugins.md); each claim's parameters and runs are declared when it joins
(the built-ins here, a plugin's when it is loaded). ``claim_c1(runs, settings,
out_dir)`` … are the paper's claims called as functions. A criterion is checked on *every* trajectory (every seed
and α); a diverged run, a failed fit or a missing event (no rebalancing
switch) makes the claim not hold, with the reason.

*Suites.* A suite is a named group of claims that ``matsense reproduce --suite NAME`` runs
together: ``paper`` (C1–C8, the default) and ``robust`` (R1–R5, :mod:`.robust`: the ℓ1 loss,
outliers and sub-gradient methods of the neighbouring papers). A claim names its suite in
its ``suite`` attribute (``"paper"`` when it has none): a plugin's claim joins the paper's
suite, or the one it names — a new name makes a new suite (:func:`suite_names`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ... import plugins
from .. import declare
from .alpha import C4
from .base import Claim, Verdict
from .exact import C1, C3
from .imbalance import C8
from .rebalancing import C7
from .robust import ROBUST_CLAIMS
from .sublinear import C2, isotropic_prediction
from .symmetry import C5, C6

#: The paper's claims, in its order.
PAPER_CLAIMS = (C1, C2, C3, C4, C5, C6, C7, C8)

for _claim in PAPER_CLAIMS + ROBUST_CLAIMS:
    declare.declare(_claim)

#: id -> claim: the paper's, the robust suite's, then the installed plugins' (read on first use).
CLAIMS = plugins.Registry(
    "claim",
    {c.id: c for c in PAPER_CLAIMS + ROBUST_CLAIMS},
    plugins.check_claim,
    forget=declare.forget,  # a reset takes the plugin claims' parameters and runs out too
)
# A parameter or run nobody built in declares may be a plugin claim's: load them, then look.
declare.on_unknown(CLAIMS.plugins)


class _Titles(Mapping):
    """id -> title of every claim in :data:`CLAIMS` (a live view: plugins' claims too)."""

    def __getitem__(self, cid):
        return CLAIMS[cid].title

    def __iter__(self):
        return iter(CLAIMS)

    def __len__(self):
        return len(CLAIMS)


TITLES = _Titles()

#: The suite ``matsense reproduce`` runs unless told otherwise.
DEFAULT_SUITE = "paper"
#: The built-in suites' headings (the report's section title); a plugin's suite gets its name.
SUITE_TITLES = {
    "paper": "Claims C1–C8 of Xiong, Ding & Du (ICLR 2024)",
    "robust": "Robust suite R1–R5: the ℓ1 loss, outliers and sub-gradient methods",
}
#: Where each built-in suite's criteria are explained.
SUITE_DOCS = {"paper": "docs/claims.md", "robust": "docs/robust.md"}


def suite_of(claim) -> str:
    """The suite a claim belongs to: its ``suite`` attribute, ``"paper"`` when it has none."""
    return str(getattr(claim, "suite", DEFAULT_SUITE))


def suite_names() -> list[str]:
    """Every suite: the built-in ones, then those the installed plugins' claims name."""
    return list(dict.fromkeys([*SUITE_TITLES, *(suite_of(CLAIMS[cid]) for cid in CLAIMS)]))


def suite_ids(name: str) -> list[str]:
    """The ids of suite ``name``'s claims, in :data:`CLAIMS` order; ValueError naming the known
    suites when there is no such suite."""
    known = suite_names()
    if name not in known:
        raise ValueError(f"unknown suite {name!r}; known: {', '.join(known)}")
    return [cid for cid in CLAIMS if suite_of(CLAIMS[cid]) == name]


claim_c1, claim_c2, claim_c3, claim_c4 = C1, C2, C3, C4
claim_c5, claim_c6, claim_c7, claim_c8 = C5, C6, C7, C8


__all__ = [
    "CLAIMS",
    "PAPER_CLAIMS",
    "ROBUST_CLAIMS",
    "TITLES",
    "DEFAULT_SUITE",
    "SUITE_TITLES",
    "SUITE_DOCS",
    "suite_of",
    "suite_names",
    "suite_ids",
    "Claim",
    "Verdict",
    "isotropic_prediction",
    "claim_c1",
    "claim_c2",
    "claim_c3",
    "claim_c4",
    "claim_c5",
    "claim_c6",
    "claim_c7",
    "claim_c8",
]


def flat_criteria() -> dict:
    """Every claim's criteria as one flat dict ('c4_slope': (2.0, 0.3), ...) — read-only view
    for code written before the criteria became typed (``CLAIMS[cid].criteria``)."""
    out = {"min_r2": CLAIMS["C1"].criteria.min_r2}
    for claim in PAPER_CLAIMS:  # not the plugins': no import reads the entry points
        cid = claim.id
        values = {
            f.name: getattr(claim.criteria, f.name) for f in dataclasses.fields(claim.criteria)
        }
        for name, value in values.items():
            if name != "min_r2":
                out[f"{cid.lower()}_{name}"] = value
        # the (centre, tolerance) and (low, high) pairs under their old keys
        for name in values:
            if name + "_tol" in values:
                out[f"{cid.lower()}_{name}"] = (values[name], values[name + "_tol"])
            if name.endswith("_low") and name[:-4] + "_high" in values:
                out[f"{cid.lower()}_{name[:-4]}"] = (values[name], values[name[:-4] + "_high"])
    return out
