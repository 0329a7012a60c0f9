"""Your own data from files: :func:`load_problem` reads a data set into a Problem.

Three kinds of data, told apart by the file's suffix and, for ``.npz``, by its fields:

========================  ==========================================================
observed entries          ``.csv`` or ``.parquet`` with columns ``row``, ``col``,
                          ``value`` (the shape is one more than the largest row and
                          column index); or ``.npz`` with ``rows``, ``cols``,
                          ``values``, ``shape`` (and optionally ``M_star``)
dense measurements        ``.npz`` with ``A`` (m, n1, n2) — the raw A_i — and ``y`` (m,)
                          on the operator's scale, y_i = ⟨A_i, M*⟩/√m (optionally
                          ``M_star``)
rank-one measurements     ``.npz`` with ``a`` (m, n1), ``b`` (m, n2) and ``y`` (m,),
                          y_i = a_iᵀ M* b_i/√m (optionally ``M_star``)
========================  ==========================================================

The problem is the one the Python constructors build from the same arrays
(:meth:`~matsense.Problem.from_entries`, :meth:`~matsense.Problem.from_arrays`,
:meth:`~matsense.Problem.from_rank_one`): a run on it is bitwise the run on theirs.
A file that cannot be used — missing, truncated, a missing column or field, a value that is
not finite, a wrong dtype, an index out of range — raises one ``ValueError`` whose message
names the file and the field (what ``matsense run --data`` prints as its one-line error).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .problems import Problem

#: Suffixes :func:`load_problem` reads.
SUFFIXES = (".csv", ".parquet", ".npz")
TABLE_COLUMNS = ("row", "col", "value")
#: The fields of each kind of ``.npz`` data set (``M_star`` is optional in every kind).
NPZ_KINDS = {
    "entries": ("rows", "cols", "values", "shape"),
    "dense": ("A", "y"),
    "rank-one": ("a", "b", "y"),
}


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and the field."""


def load_problem(path) -> Problem:
    """The :class:`~matsense.Problem` of the data set in ``path`` (see the module docstring)."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise DataError(
            f"{path}: unknown data format {path.suffix or '(no suffix)'!r}; "
            f"use {', '.join(SUFFIXES)}"
        )
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix == ".npz":
        return _from_npz(path)
    return _from_table(path)


# -------------------------------------------------------------------- tables
def _read_table(path: Path):
    import pandas as pd

    try:
        if path.suffix == ".csv":
            # The shortest repr pandas writes reads back to the same float64: by default from
            # pandas 3 on, with round_trip before (tests/test_data.py: the round trip is bitwise).
            modern = int(pd.__version__.split(".")[0]) >= 3
            return pd.read_csv(path, **({} if modern else {"float_precision": "round_trip"}))
        return pd.read_parquet(path)
    except Exception as exc:  # pandas' and pyarrow's errors for an empty, cut or damaged file
        raise DataError(
            f"{path}: not a readable {path.suffix} table (truncated or damaged?): "
            f"{_first_line(exc)}"
        ) from None


def _from_table(path: Path) -> Problem:
    table = _read_table(path)
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(
            f"{path}: no column {missing[0]!r}; a table of observed entries needs "
            f"the columns {', '.join(TABLE_COLUMNS)} (it has "
            f"{', '.join(map(str, table.columns)) or 'none'})"
        )
    if len(table) == 0:
        raise DataError(f"{path}: no observed entries")
    rows = _indices(path, "row", table["row"].to_numpy())
    cols = _indices(path, "col", table["col"].to_numpy())
    values = _reals(path, "value", table["value"].to_numpy())
    shape = (int(rows.max()) + 1, int(cols.max()) + 1)
    return _build(path, Problem.from_entries, rows, cols, values, shape)


# ----------------------------------------------------------------------- npz
def _from_npz(path: Path) -> Problem:
    try:
        with np.load(path, allow_pickle=False) as npz:
            fields = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise DataError(
            f"{path}: not a readable .npz file (truncated or damaged?): {_first_line(exc)}"
        ) from None
    kinds = [kind for kind, names in NPZ_KINDS.items() if names[0] in fields]
    if len(kinds) != 1:
        found = ", ".join(sorted(fields)) or "none"
        raise DataError(
            f"{path}: cannot tell the kind of data from its fields ({found}); "
            "expected rows, cols, values, shape (observed entries), A, y (dense "
            "measurements) or a, b, y (rank-one measurements)"
        )
    kind = kinds[0]
    for name in NPZ_KINDS[kind]:
        if name not in fields:
            raise DataError(
                f"{path}: no field {name!r}; {kind} data needs {', '.join(NPZ_KINDS[kind])}"
            )
    M_star = _reals(path, "M_star", fields["M_star"]) if "M_star" in fields else None
    if kind == "entries":
        rows = _indices(path, "rows", fields["rows"])
        cols = _indices(path, "cols", fields["cols"])
        values = _reals(path, "values", fields["values"])
        shape = tuple(int(v) for v in _indices(path, "shape", fields["shape"]).ravel())
        if len(shape) != 2 or min(shape) < 1:
            raise DataError(f"{path}: shape must be two positive integers (n1, n2), got {shape}")
        for name, idx, bound in (("rows", rows, shape[0]), ("cols", cols, shape[1])):
            if idx.size and idx.max() >= bound:
                i = int(np.argmax(idx >= bound))
                raise DataError(
                    f"{path}: {name}[{i}] = {int(idx[i])} is out of range for shape "
                    f"{shape} (0 … {bound - 1})"
                )
        return _build(path, Problem.from_entries, rows, cols, values, shape, M_star)
    y = _reals(path, "y", fields["y"])
    if kind == "dense":
        return _build(path, Problem.from_arrays, _reals(path, "A", fields["A"]), y, M_star)
    return _build(
        path,
        Problem.from_rank_one,
        _reals(path, "a", fields["a"]),
        _reals(path, "b", fields["b"]),
        y,
        M_star,
    )


# -------------------------------------------------------------------- checks
def _indices(path: Path, name: str, values) -> np.ndarray:
    """Non-negative integers: an integer dtype (a float column is refused, not rounded)."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            i = int(np.argmin(np.isfinite(arr)))
            raise DataError(f"{path}: {name} has a missing or non-finite value at position {i}")
        raise DataError(f"{path}: {name} must hold integers, got dtype {arr.dtype}{_example(arr)}")
    if arr.size and arr.min() < 0:
        i = int(np.argmax(arr < 0))
        raise DataError(f"{path}: {name}[{i}] = {int(arr[i])} is out of range (indices are >= 0)")
    return arr.astype(np.int64, copy=False)


def _reals(path: Path, name: str, values) -> np.ndarray:
    """Finite real numbers (float32/float64 kept, integers become float64)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.float64)
    elif arr.dtype not in (np.float32, np.float64):
        raise DataError(
            f"{path}: {name} must hold real numbers, got dtype {arr.dtype}{_example(arr)}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.unravel_index(int(np.argmax(bad)), arr.shape)
        at = where[0] if arr.ndim == 1 else where
        raise DataError(
            f"{path}: {name} has a missing or non-finite value ({arr[where]!r}) at position {at}"
        )
    return arr


def _build(path: Path, constructor, *args) -> Problem:
    """``constructor(*args)``, its ValueError (shapes that do not match, duplicate entries)
    prefixed with the file."""
    try:
        return constructor(*args)
    except ValueError as exc:
        raise DataError(f"{path}: {_first_line(exc)}") from None


def _example(arr) -> str:
    flat = arr.ravel()
    return f" (e.g. {flat[0]!r})" if flat.size else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = ["load_problem", "DataError", "SUFFIXES", "TABLE_COLUMNS", "NPZ_KINDS"]
