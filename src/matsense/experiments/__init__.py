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

from .. import compat
from .claims import CLAIMS, TITLES
from .reproduction import reproduce, run_claims
from .results import ClaimResult, Verdicts, format_table, load_summary, write_summary
from .settings import ClaimSettings, init_seed

__all__ = [
    "reproduce",
    "run_claims",
    "format_table",
    "ClaimResult",
    "Verdicts",
    "ClaimSettings",
    "CLAIMS",
    "TITLES",
    "load_summary",
    "write_summary",
    "init_seed",
]


def __getattr__(name):  # deprecated names (matsense.compat): CRITERIA
    return compat.attribute(__name__, name)
