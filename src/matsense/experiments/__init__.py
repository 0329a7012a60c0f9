"""The paper's claims C1–C8 (PAPER.md §5) as experiments with measured verdicts.

>>> from matsense.experiments import reproduce, format_table
>>> results = reproduce("results", quick=True)          # doctest: +SKIP
>>> print(format_table(results))                         # doctest: +SKIP

Modules: :mod:`.settings` (the settings and the verdict criteria),
:mod:`.runs` (the shared, batched runs per seed), :mod:`.claims` (one
function per claim and :func:`reproduce`), :mod:`.drift` (the imbalance-drift
bound of C8), :mod:`.results` (:class:`ClaimResult`, summary.json, the table).
"""

from .claims import CLAIMS, TITLES, reproduce, run_claims
from .results import ClaimResult, format_table, load_summary, write_summary
from .settings import CRITERIA, ClaimSettings, init_seed

__all__ = ["reproduce", "run_claims", "format_table", "ClaimResult", "ClaimSettings", "CRITERIA",
           "CLAIMS", "TITLES", "load_summary", "write_summary", "init_seed"]
