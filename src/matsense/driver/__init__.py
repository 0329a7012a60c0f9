"""The driver: :func:`run` (one method, one start, possibly a batch of them) and
:func:`run_together` (several runs sharing one operator pass per iteration).

One job a module: :mod:`~.start` (checks before a run starts, the memory
estimate), :mod:`~.batch` (the trajectories still advancing), :mod:`~.stopping`
(the stopping rule), :mod:`~.record` (the history rows), :mod:`~.info` (what a
callback sees), :mod:`~.loop` (the loop) and :mod:`~.together` (the lock-step
coordinator). The driver knows methods and operators only by their contracts:
a method's ``init``/``step`` (and, to share a pass, ``request``/``advance``),
an operator's ``stack_key``/``evaluate_stacked``.
"""

from .info import IterateInfo
from .loop import run
from .record import RECORDABLE
from .start import state_bytes
from .together import run_together

__all__ = ["run", "run_together", "IterateInfo", "RECORDABLE", "state_bytes"]
