"""The robust suite R1–R5 (``matsense reproduce --suite robust``; docs/robust.md): the
claims of the ℓ1 / outlier papers next to the paper's, on the same problem family.

=============================  ==================================================
:mod:`.recovery`               R1 — small-init SubGM, k > r, recovers M* under outliers
:mod:`.overspecified`          R2 — k > r sublinear, k = r linear (Ding et al.)
:mod:`.noise`                  R3 — under dense noise, k > r does not overfit
:mod:`.kappa`                  R4 — ScaledSM's rate does not depend on κ, SubGM's does
:mod:`.symmetry`               R5 — the curse of symmetry under ℓ1 (ours)
=============================  ==================================================

:mod:`.common` holds their problems, runs and shared parameters.
"""

from __future__ import annotations

from .kappa import R4
from .noise import R3
from .overspecified import R2
from .recovery import R1
from .symmetry import R5

#: The robust claims, in order.
ROBUST_CLAIMS = (R1, R2, R3, R4, R5)

__all__ = ["ROBUST_CLAIMS", "R1", "R2", "R3", "R4", "R5"]
