"""Loading a sweep's results store (:func:`load`), re-exported by :mod:`matsense.sweep.store`.

:func:`load` checks what it reads as a resume would, keeps one row per run id (the most recent
part) and leaves out, with a warning, every part it cannot read and every run whose history is
missing or damaged.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, NamedTuple

from .store_check import StoreReport, _examples

if TYPE_CHECKING:
    from .store import Store


class SweepResults(NamedTuple):
    """What :func:`load` returns: unpack it (``runs, history = load(d)``) or use the fields.

    Attributes
    ----------
    runs : pandas.DataFrame
        One row per run (see docs/sweeps.md for the columns), sorted by run id.
    history : pandas.DataFrame or None
        One row per recorded iteration per run, sorted by run id and
        iteration; ``None`` when loaded with ``history=False``.
    """

    runs: Any  # pandas.DataFrame (pandas is imported only when loading)
    history: Any  # pandas.DataFrame or None


# --------------------------------------------------------------------- load
def _concat(tables):
    import pyarrow as pa

    if not tables:
        return None
    return pa.concat_tables([t for _, t in tables], promote_options="permissive")


def _with_part(name: str, table):
    import pyarrow as pa

    return table.append_column("part", pa.array([name] * table.num_rows, pa.string()))


def load(out_dir, *, history: bool = True) -> SweepResults:
    """Load a sweep's results store.

    Parameters
    ----------
    out_dir : path
        The directory given to :func:`run_sweep`.
    history : bool
        Also load the per-iteration history (can be large).

    Returns
    -------
    SweepResults
        ``(runs, history)`` pandas DataFrames; ``runs`` has one row per run id
        (the most recent if written more than once), ``history`` the rows of
        those runs only. Temporary files and uncommitted history parts are
        ignored. Parts that cannot be read, and runs whose history is missing
        or damaged (the runs a resumed sweep would run again), are left out
        with a warning; with ``history=False`` the history parts are checked
        by their run ids and row counts only.
    """
    from .store import Store  # store imports this module

    store = Store(out_dir)
    report = store.inspect(history="full" if history else "run_id", live_only=True, keep=True)
    _warn_left_out(store, report)
    runs = _runs_frame(report)
    if runs is None:
        import pandas as pd

        empty = pd.DataFrame({"run_id": pd.Series([], dtype=object)})
        return SweepResults(empty, empty.copy() if history else None)
    if not history:
        return SweepResults(runs, None)
    return SweepResults(runs, _history_frame(report, runs))


def _warn_left_out(store: Store, report: StoreReport) -> None:
    """Warn about the parts and runs :func:`load` leaves out."""
    for p, why in report.unreadable:
        warnings.warn(f"skipping unreadable part {p}: {why}", stacklevel=3)
    if report.damaged:
        warnings.warn(
            f"left out {len(report.damaged)} run(s) of {store.root} whose history is "
            f"missing or damaged ({_examples(report.damaged)}); running the sweep again "
            f"re-runs them (`matsense sweep --verify {store.root}` lists them)",
            stacklevel=3,
        )


def _runs_frame(report: StoreReport):
    """The latest runs row of each finished run, sorted by run id (None: no runs part)."""
    import pandas as pd
    import pyarrow as pa

    runs_t = _concat([(name, _with_part(name, t)) for name, t in report._runs_tables])
    if runs_t is None:
        return None
    # Nullable integers: a failed run has no 'iterations', yet the column stays integral.
    runs = runs_t.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    runs = runs.drop_duplicates("run_id", keep="last")  # parts are read oldest first
    runs = runs[runs["run_id"].isin(report.finished)]
    return runs.sort_values("run_id", kind="stable").reset_index(drop=True)


def _history_frame(report: StoreReport, runs):
    """The history rows of ``runs`` (each from its run's part), sorted by run id and iteration."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = runs.groupby("part")["run_id"].agg(list).to_dict()
    tables = []
    for name, t in report._history_tables.items():
        if name in keep:
            mask = pc.is_in(t.column("run_id"), value_set=pa.array(keep[name], pa.string()))
            tables.append((name, _with_part(name, t.filter(mask))))
    hist_t = _concat(tables)
    if hist_t is None:
        return pd.DataFrame({"run_id": pd.Series([], dtype=object)})
    hist = hist_t.to_pandas()
    return hist.sort_values(["run_id", "iteration"], kind="stable").reset_index(drop=True)


__all__ = ["SweepResults", "load"]
