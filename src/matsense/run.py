"""Compatibility module: the driver lives in :mod:`matsense.driver` (``from matsense.run
import run`` keeps working; ``matsense.run`` itself is the function)."""

from .driver import RECORDABLE, IterateInfo, run, run_together, state_bytes

__all__ = ["run", "run_together", "IterateInfo", "RECORDABLE", "state_bytes"]
