"""Sweeps: declarative grids of runs, batched execution, a resumable Parquet store.

>>> from matsense.sweep import run_sweep, load, plot_store
>>> summary = run_sweep("examples/c4_sweep.toml", "out/c4")      # doctest: +SKIP
>>> runs, history = load("out/c4")                               # doctest: +SKIP
>>> plot_store("out/c4", "alpha", "rate", hue="k", logx=True, logy=True,
...            out="out/c4/rate.png")                            # doctest: +SKIP

* :mod:`~matsense.sweep.spec` — the TOML spec ([base], [grid], [[zip]], [sweep]).
* :mod:`~matsense.sweep.engine` — one batch on a worker (bitwise equal to single runs).
* :mod:`~matsense.sweep.executors` — local processes, or Dask distributed.
* :mod:`~matsense.sweep.store` — atomic Parquet parts, resume, :func:`load`.
* :mod:`~matsense.sweep.plot` — :func:`plot_store`.

See docs/sweeps.md.
"""

from .plot import plot_store
from .runner import SweepSummary, describe_sweep, plan_batches, run_sweep
from .spec import SweepOptions, SweepSpec, load_spec
from .store import StoreReport, SweepResults, load, verify

__all__ = [
    "run_sweep",
    "describe_sweep",
    "plan_batches",
    "SweepSummary",
    "SweepSpec",
    "verify",
    "StoreReport",
    "SweepOptions",
    "load_spec",
    "load",
    "SweepResults",
    "plot_store",
]
