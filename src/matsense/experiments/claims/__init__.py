"""The paper's claims C1–C8 (docs/claims.md) as experiments with a measured verdict.

One module per claim or group of claims, each a :class:`~.base.Claim` with its
runs, its typed criteria, its measurement, its verdict and its figure:

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
docs/plugins.md); ``claim_c1(runs, settings, out_dir)`` … are the same objects
called as functions. A criterion is checked on *every* trajectory (every seed
and α); a diverged run, a failed fit or a missing event (no rebalancing
switch) makes the claim not hold, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping

from ... import plugins
from .alpha import C4
from .base import Claim, Verdict
from .exact import C1, C3
from .imbalance import C8
from .rebalancing import C7
from .sublinear import C2, isotropic_prediction
from .symmetry import C5, C6

#: The paper's claims, in its order.
PAPER_CLAIMS = (C1, C2, C3, C4, C5, C6, C7, C8)

#: id -> claim: the paper's, then the installed plugins' (read on first use).
CLAIMS = plugins.Registry("claim", {c.id: c for c in PAPER_CLAIMS}, plugins.check_claim)


class _Titles(Mapping):
    """id -> title of every claim in :data:`CLAIMS` (a live view: plugins' claims too)."""

    def __getitem__(self, cid):
        return CLAIMS[cid].title

    def __iter__(self):
        return iter(CLAIMS)

    def __len__(self):
        return len(CLAIMS)


TITLES = _Titles()

claim_c1, claim_c2, claim_c3, claim_c4, claim_c5, claim_c6, claim_c7, claim_c8 = PAPER_CLAIMS


def __getattr__(name):
    # reproduce() and friends moved to matsense.experiments.reproduction; keep the old spelling.
    if name in ("reproduce", "run_claims", "seed_list"):
        from .. import reproduction

        return getattr(reproduction, name)
    raise AttributeError(name)


__all__ = ["CLAIMS", "PAPER_CLAIMS", "TITLES", "Claim", "Verdict", "isotropic_prediction",
           "claim_c1", "claim_c2", "claim_c3", "claim_c4", "claim_c5", "claim_c6", "claim_c7",
           "claim_c8"]
