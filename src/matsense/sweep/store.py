"""The results store of a sweep: a directory of Parquet part files, crash-safe.

Layout of ``out_dir``::

    store.json                 format marker {"format": "matsense-sweep-store", "version": 1}
    specs/<hash>.toml          every spec run into this store (for the record)
    runs/part-<seq>-<batch>.parquet       one row per run of one finished batch
    history/part-<seq>-<batch>.parquet    one row per recorded iteration of those runs
    .lock                      held (flock) by the sweep writing to the store

Guarantees:

* **Atomic parts.** A part is written to a hidden temporary file in the same
  directory, flushed and fsync'ed, then renamed over its final name
  (``os.replace``) and the directory fsync'ed. A reader sees a whole part or
  none. Loading ignores anything that is not ``part-*.parquet`` (stray
  ``.part-*.tmp`` files of an interrupted write) and, with a warning, a part
  it cannot read.
* **Commit order.** The history part of a batch is written first; the runs
  part is the commit record. A history part without its runs part (a crash
  in between) is ignored and removed by the next sweep; its runs run again.
* **Finished = has a runs row.** Resuming skips every run with a row
  (converged, max_iters, diverged, or failed unless ``retry_failed``).
* **No duplicates.** :func:`load` keeps one row per run id — the most recent
  part — and only that part's history rows, so even a run written twice
  (e.g. a failed run retried) appears once.
* **One writer.** A sweep holds an exclusive ``flock`` on ``.lock`` while it
  writes; a second sweep on the same directory is refused (the lock dies with
  its process, so a killed sweep never leaves the store locked).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
import warnings
from pathlib import Path
from typing import NamedTuple

FORMAT = "matsense-sweep-store"
VERSION = 1
_PART = re.compile(r"^part-(\d{8})-([0-9a-f]+)\.parquet$")


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

    runs: object
    history: object


# ------------------------------------------------------------ atomic writes
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path, write) -> None:
    """Call ``write(fh)`` on a temp file beside ``path``, fsync, rename over ``path``, fsync dir."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, fsync dir)."""
    _atomic_write(path, lambda fh: fh.write(data))


def atomic_write_table(path: Path, table) -> None:
    """Write a pyarrow Table as Parquet to ``path`` atomically."""
    import pyarrow.parquet as pq

    _atomic_write(path, lambda fh: pq.write_table(table, fh, compression="zstd"))


# -------------------------------------------------------------------- store
class Store:
    """A results directory (see the module docstring). ``create=True`` makes it if needed."""

    def __init__(self, root, *, create: bool = False):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.history_dir = self.root / "history"
        marker = self.root / "store.json"
        if create:
            if self.root.exists() and not self.root.is_dir():
                raise ValueError(f"{self.root} exists and is not a directory")
            if self.root.is_dir() and not marker.exists() and any(self.root.iterdir()):
                raise ValueError(f"{self.root} is not empty and is not a matsense sweep store "
                                 "(no store.json); choose a new or empty directory")
            for d in (self.root, self.runs_dir, self.history_dir, self.root / "specs"):
                d.mkdir(parents=True, exist_ok=True)
            if not marker.exists():
                atomic_write_bytes(marker, json.dumps({"format": FORMAT, "version": VERSION}).encode())
        check_store(self.root)
        self._seq = max([0] + [self._seq_of(p) for p in self._parts(self.runs_dir)]
                        + [self._seq_of(p) for p in self._parts(self.history_dir)])

    # ------------------------------------------------------------- helpers
    @staticmethod
    def _parts(directory: Path) -> list[Path]:
        if not directory.is_dir():
            return []
        return sorted(p for p in directory.iterdir() if _PART.match(p.name))

    @staticmethod
    def _seq_of(path: Path) -> int:
        return int(_PART.match(path.name).group(1))

    @contextlib.contextmanager
    def lock(self):
        """Hold the store's exclusive lock; ``ValueError`` if another sweep holds it."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no locking
            yield
            return
        fh = open(self.root / ".lock", "a+")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise ValueError(f"another sweep is writing to {self.root} "
                                 "(its .lock is held); wait for it or use another directory") from None
            yield
        finally:
            fh.close()

    def cleanup(self) -> int:
        """Remove temporary files and uncommitted history parts (call under :meth:`lock`)."""
        removed = 0
        for d in (self.runs_dir, self.history_dir, self.root, self.root / "specs"):
            if d.is_dir():
                for p in d.iterdir():
                    if p.name.startswith(".") and p.name.endswith(".tmp"):
                        p.unlink(missing_ok=True)
                        removed += 1
        committed = {p.name for p in self._parts(self.runs_dir)}
        for p in self._parts(self.history_dir):
            if p.name not in committed:
                p.unlink(missing_ok=True)
                removed += 1
        return removed

    def finished(self) -> dict[str, str]:
        """Run id -> status of every run with a committed row (latest part wins)."""
        import pyarrow.parquet as pq

        out = {}
        for p in self._parts(self.runs_dir):
            try:
                t = pq.read_table(p, columns=["run_id", "status"])
            except Exception as exc:
                warnings.warn(f"skipping unreadable part {p}: {exc}", stacklevel=2)
                continue
            out.update(zip(t.column("run_id").to_pylist(), t.column("status").to_pylist()))
        return out

    def save_spec(self, text: str, name: str = "spec", suffix: str = ".toml") -> Path:
        """Keep a copy of a spec run into this store (``specs/<name>-<hash><suffix>``)."""
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "spec"
        path = self.root / "specs" / f"{safe}-{digest}{suffix}"
        if not path.exists():
            atomic_write_bytes(path, text.encode())
        return path

    def write_batch(self, result) -> str:
        """Commit one :class:`~matsense.sweep.engine.BatchResult`: history part, then runs part."""
        self._seq += 1
        name = f"part-{self._seq:08d}-{result.batch_id}.parquet"
        if result.history is not None and result.history.num_rows:
            atomic_write_table(self.history_dir / name, result.history)
        atomic_write_table(self.runs_dir / name, rows_to_table(result.runs))
        return name


def rows_to_table(rows: list[dict]):
    """A pyarrow Table from dicts that may have different keys (missing → null)."""
    import pyarrow as pa

    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return pa.table({k: pa.array([row.get(k) for row in rows]) for k in keys})


def check_store(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"no sweep results at {root}: not a directory")
    marker = root / "store.json"
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        raise ValueError(f"{root} is not a matsense sweep store (no readable store.json)") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{root} is not a matsense sweep store (store.json format "
                         f"{meta.get('format')!r})")
    if int(meta.get("version", 0)) > VERSION:
        raise ValueError(f"{root} was written by a newer matsense (store version "
                         f"{meta.get('version')}; this one reads <= {VERSION})")
    return root


# --------------------------------------------------------------------- load
def _read_parts(paths, columns=None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for p in paths:
        try:
            t = pq.read_table(p, columns=columns)
        except Exception as exc:
            warnings.warn(f"skipping unreadable part {p}: {exc}", stacklevel=3)
            continue
        tables.append((p.name, t.append_column("part", pa.array([p.name] * t.num_rows, pa.string()))))
    return tables


def _concat(tables):
    import pyarrow as pa

    if not tables:
        return None
    return pa.concat_tables([t for _, t in tables], promote_options="permissive")


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
        those runs only. Temporary and unreadable part files are ignored.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    store = Store(out_dir)
    runs_tables = _read_parts(Store._parts(store.runs_dir))
    runs_t = _concat(runs_tables)
    if runs_t is None:
        empty = pd.DataFrame({"run_id": pd.Series([], dtype=object)})
        return SweepResults(empty, empty.copy() if history else None)
    # Nullable integers: a failed run has no 'iterations', yet the column stays integral.
    runs = runs_t.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    runs = runs.drop_duplicates("run_id", keep="last")  # parts are read oldest first
    runs = runs.sort_values("run_id", kind="stable").reset_index(drop=True)
    if not history:
        return SweepResults(runs, None)

    keep = runs.groupby("part")["run_id"].agg(list).to_dict()
    committed = set(keep)
    hist_paths = [p for p in Store._parts(store.history_dir) if p.name in committed]
    tables = []
    for name, t in _read_parts(hist_paths):
        ids = pa.array(keep[name], pa.string())
        mask = pc.is_in(t.column("run_id"), value_set=ids)
        tables.append((name, t.filter(mask)))
    hist_t = _concat(tables)
    if hist_t is None:
        hist = pd.DataFrame({"run_id": pd.Series([], dtype=object)})
    else:
        hist = hist_t.to_pandas()
        hist = hist.sort_values(["run_id", "iteration"], kind="stable").reset_index(drop=True)
    return SweepResults(runs, hist)


__all__ = ["Store", "SweepResults", "load", "check_store", "atomic_write_table",
           "atomic_write_bytes"]
