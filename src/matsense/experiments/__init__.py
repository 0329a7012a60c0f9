"""The paper's claims C1–C8 (docs/claims.md) as experiments with measured verdicts.

>>> from matsense.experiments import reproduce, format_table
>>> results = reproduce("results", quick=True)          # doctest: +SKIP
>>> print(format_table(results))                         # doctest: +SKIP

Modules: :mod:`.settings` (the settings), :mod:`.runs` (the shared, batched
runs per seed), :mod:`.claims` (one module per claim: runs, typed criteria,
measurement, verdict, figure), :mod:`.reproduction` (:func:`reproduce`,
:func:`run_claims`), :mod:`.drift` (the imbalance-drift bound of C8),
:mod:`.results` (:class:`ClaimResult`, summary.json, the table), :mod:`.ensembles`
(the claims on every measurement ensemble: ``reproduce --ensemble all``).
"""

import dataclasses as _dc

from .claims import CLAIMS, PAPER_CLAIMS, TITLES
from .reproduction import reproduce, run_claims
from .results import ClaimResult, Verdicts, format_table, load_summary, write_summary
from .settings import ClaimSettings, init_seed


def _criteria_table() -> dict:
    """Every claim's criteria as one flat dict ('c4_slope': (2.0, 0.3), ...) — read-only view
    for code written before the criteria became typed (``CLAIMS[cid].criteria``)."""
    out = {"min_r2": CLAIMS["C1"].criteria.min_r2}
    for claim in PAPER_CLAIMS:  # not the plugins': no import reads the entry points
        cid = claim.id
        values = {f.name: getattr(claim.criteria, f.name) for f in _dc.fields(claim.criteria)}
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


#: Deprecated flat view of the criteria; use ``CLAIMS[cid].criteria``.
CRITERIA = _criteria_table()

__all__ = [
    "reproduce",
    "run_claims",
    "format_table",
    "ClaimResult",
    "Verdicts",
    "ClaimSettings",
    "CRITERIA",
    "CLAIMS",
    "TITLES",
    "load_summary",
    "write_summary",
    "init_seed",
]
