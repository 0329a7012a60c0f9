"""The paper's claims C1–C8 (docs/claims.md) as experiments with a measured verdict.

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

:data:`CLAIMS` maps each id to its claim (C1–C8, then the claims other packages
add through the entry-point group ``matsense.claims``: :mod:`matsense.plugins`,
docs/plugins.md); each claim's parameters and runs are declared when it joins
(the built-ins here, a plugin's when it is loaded). ``claim_c1(runs, settings,
out_dir)`` … are the paper's claims called as functions. A criterion is checked on *every* trajectory (every seed
and α); a diverged run, a failed fit or a missing event (no rebalancing
switch) makes the claim not hold, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping

from ... import plugins
from .. import declare
from .alpha import C4
from .base import Claim, Verdict
from .exact import C1, C3
from .imbalance import C8
from .rebalancing import C7
from .sublinear import C2, isotropic_prediction
from .symmetry import C5, C6

#: The paper's claims, in its order.
PAPER_CLAIMS = (C1, C2, C3, C4, C5, C6, C7, C8)

for _claim in PAPER_CLAIMS:
    declare.declare(_claim)

#: id -> claim: the paper's, then the installed plugins' (read on first use).
CLAIMS = plugins.Registry("claim", {c.id: c for c in PAPER_CLAIMS}, plugins.check_claim)
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

claim_c1, claim_c2, claim_c3, claim_c4 = C1, C2, C3, C4
claim_c5, claim_c6, claim_c7, claim_c8 = C5, C6, C7, C8


__all__ = ["CLAIMS", "PAPER_CLAIMS", "TITLES", "Claim", "Verdict", "isotropic_prediction",
           "claim_c1", "claim_c2", "claim_c3", "claim_c4", "claim_c5", "claim_c6", "claim_c7",
           "claim_c8"]
