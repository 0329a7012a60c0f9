"""matsense: gradient descent on low-rank matrix sensing.

Built around Xiong, Ding & Du, *How Over-Parameterization Slows Down Gradient
Descent in Matrix Sensing: The Curses of Symmetry and Initialization* (ICLR 2024).
Conventions: ``docs/conventions.md``.
"""

from . import diagnostics, init, rates
from .methods import GD, RebalancedGD, get_method
from .operators import DenseOperator
from .problems import Problem
from .run import run, run_together
from .sweep import load
from .trajectory import BatchTrajectory, Status, Trajectory

__version__ = "0.1.0"

__all__ = [
    "Problem",
    "DenseOperator",
    "GD",
    "RebalancedGD",
    "get_method",
    "run",
    "run_together",
    "Trajectory",
    "BatchTrajectory",
    "Status",
    "init",
    "diagnostics",
    "rates",
    "load",
    "__version__",
]
