"""The results store of a sweep: a directory of Parquet part files, crash-safe and checked.

Layout of ``out_dir``::

    store.json                 format marker {"format": "matsense-sweep-store", "version": 1}
    specs/<name>-<hash>.toml   every spec run into this store (for the record)
    runs/part-<seq>-<batch>.parquet       one row per run of one finished batch
    history/part-<seq>-<batch>.parquet    one row per recorded iteration of those runs
    quarantine/runs/, quarantine/history/ parts moved aside by a sweep (never deleted)
    quarantine/log.txt         one line per moved file: when, from where, why
    .lock                      held (flock) by the sweep writing to the store

``<seq>`` is a decimal sequence number, zero-padded to 8 digits and longer
when it needs to be; parts are ordered by its value.

Guarantees:

* **Atomic parts.** A part is written to a hidden temporary file in the same
  directory, flushed and fsync'ed, then renamed over its final name
  (``os.replace``) and the directory fsync'ed. A reader sees a whole part or
  none. Stray ``.part-*.tmp`` files of an interrupted write are ignored, and
  removed by the next sweep.
* **Commit order.** The history part of a batch is written first; the runs
  part is the commit record. A history part without its runs part (a crash
  in between) is ignored; the next sweep moves it to ``quarantine/`` and its
  runs run again. SIGINT and SIGTERM wait until both parts of a batch are
  written, so only a SIGKILL or a crash leaves one.
* **Checked parts.** Parts are written with Parquet page checksums, and every
  runs row records ``history_rows``, its number of rows in the batch's
  history part. Before running anything a sweep checks the store
  (:meth:`Store.repair`): it reads every part in full (verifying the
  checksums) and compares each run's history rows with ``history_rows``
  (parts written before that column: a run that did not fail must have at
  least one row). A part that cannot be read, a history part whose rows do
  not match its runs part, and a history part without a runs part are moved
  to ``quarantine/`` with a warning naming them.
* **Finished = a runs row and its history.** Resuming skips every run whose
  latest runs row is there and whose history checks out (converged,
  max_iters, diverged, or failed unless ``retry_failed``); a run whose
  history is missing or damaged runs again.
* **No duplicates.** :func:`load` keeps one row per run id — the most recent
  part — and only that part's history rows, so even a run written twice
  (e.g. a failed run retried) appears once.
* **Nothing damaged is loaded silently.** :func:`load` runs the same check on
  what it reads and leaves out, with a warning, every run whose history is
  missing or damaged (the runs a resume would run again) and every part it
  cannot read. :func:`verify` reports on a store without changing it.
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
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from .._files import atomic_write, atomic_write_bytes, fsync_dir

FORMAT = "matsense-sweep-store"
VERSION = 1
#: A committed part: any number of digits (ordered by value), then the batch id.
_PART = re.compile(r"^part-(\d+)-([0-9a-f]+)\.parquet$")
#: The sequence number of any part-like name (quarantined copies may carry a suffix).
_SEQ = re.compile(r"^part-(\d+)-")
QUARANTINE = "quarantine"
#: Columns of a runs part that the check needs.
_CHECK_COLUMNS = ("run_id", "status", "history_rows")


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
# The writer (temp file, fsync, rename, fsync dir; a full disk raised as DiskFullError naming
# the part) is shared with the reports: matsense._files.
_fsync_dir = fsync_dir
_atomic_write = atomic_write


def atomic_write_table(path: Path, table) -> None:
    """Write a pyarrow Table as Parquet (zstd, page checksums) to ``path`` atomically."""
    import pyarrow.parquet as pq

    _atomic_write(path, lambda fh: pq.write_table(table, fh, compression="zstd",
                                                  write_page_checksum=True))


# ------------------------------------------------------------------ reading
def _read_table(path: Path, columns=None):
    """Read a part, verifying its page checksums; requested columns it lacks are skipped."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path, page_checksum_verification=True) as pf:
        if columns is not None:
            names = set(pf.schema_arrow.names)
            columns = [c for c in columns if c in names]
        return pf.read(columns=columns)


def _add_counts(counts: Counter, column) -> Counter:
    import pyarrow.compute as pc

    for item in pc.value_counts(column).to_pylist():
        counts[item["values"]] += item["counts"]
    return counts


def _history_counts(path: Path, columns) -> Counter:
    """Rows per run id of a history part, reading ``columns`` (None: all, which checks every page)."""
    import pyarrow.parquet as pq

    counts = Counter()
    with pq.ParquetFile(path, page_checksum_verification=True) as pf:
        for batch in pf.iter_batches(columns=columns):  # one batch at a time: bounded memory
            _add_counts(counts, batch.column("run_id"))
    return counts


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


# ------------------------------------------------------------------- report
@dataclass
class StoreReport:
    """What a check of a store found (:func:`verify`, :meth:`Store.repair`, :func:`load`).

    ``str(report)`` is a readable summary (what ``matsense sweep --verify``
    prints).

    Attributes
    ----------
    root : Path
        The store.
    runs_parts, history_parts : int
        Parts read without error.
    runs : int
        Distinct run ids with a readable runs row.
    finished : dict
        Run id -> status of every run whose history checks out: what a
        resume skips and :func:`load` returns.
    damaged : dict
        Run id -> why its history is missing or damaged (it runs again).
    unreadable : list of (Path, str)
        Parts that cannot be read (truncated, overwritten, checksum error).
    mismatched : list of (Path, str)
        Readable history parts whose rows do not match their runs part.
    missing : list of str
        History parts that runs rows need but that are not there.
    uncommitted : list of Path
        History parts without a (readable) runs part.
    moved : list of (Path, Path, str)
        Files moved to ``quarantine/`` by this check: from, to, why.
    quarantined : list of Path
        Every file in ``quarantine/`` (moved there by this or earlier sweeps).
    """

    root: Path
    runs_parts: int = 0
    history_parts: int = 0
    runs: int = 0
    finished: dict = field(default_factory=dict)
    damaged: dict = field(default_factory=dict)
    unreadable: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    uncommitted: list = field(default_factory=list)
    moved: list = field(default_factory=list)
    quarantined: list = field(default_factory=list)
    _runs_tables: list = field(default_factory=list, repr=False, compare=False)
    _history_tables: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def healthy(self) -> bool:
        """Every part readable and committed, every run's history intact."""
        return not (self.damaged or self.unreadable or self.mismatched or self.uncommitted)

    def _rel(self, path) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)

    def __str__(self) -> str:
        head = f"store {self.root}: " + ("healthy" if self.healthy else "NOT healthy")
        lines = [head,
                 f"  read {self.runs_parts} runs parts and {self.history_parts} history parts",
                 f"  {self.runs} runs: {len(self.finished)} with intact history, "
                 f"{len(self.damaged)} with missing or damaged history"]
        for label, items in (("unreadable", self.unreadable),
                             ("history does not match its runs part", self.mismatched)):
            lines += [f"  {label}: {self._rel(p)} ({why})" for p, why in items]
        lines += [f"  missing: history/{name}" for name in self.missing]
        lines += [f"  uncommitted (no readable runs part): {self._rel(p)}" for p in self.uncommitted]
        if self.damaged:
            ids = sorted(self.damaged)
            more = f" (+{len(ids) - 10} more)" if len(ids) > 10 else ""
            lines.append(f"  runs to re-run: {', '.join(ids[:10])}{more}")
        lines += [f"  moved to {self._rel(dest)}: {self._rel(src)} ({why})"
                  for src, dest, why in self.moved]
        if self.quarantined:
            lines.append(f"  {QUARANTINE}/ holds {len(self.quarantined)} file(s) set aside by "
                         f"sweeps (see {QUARANTINE}/log.txt); delete them once inspected")
        if not self.healthy:
            lines.append("  running the sweep again re-runs the damaged runs and moves the "
                         f"unusable files to {QUARANTINE}/")
        return "\n".join(lines)


# -------------------------------------------------------------------- store
class Store:
    """A results directory (see the module docstring). ``create=True`` makes it if needed."""

    def __init__(self, root, *, create: bool = False):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.history_dir = self.root / "history"
        self.quarantine_dir = self.root / QUARANTINE
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
        # Past every part ever written, quarantined ones included: a name is never reused.
        names = [p.name for d in (self.runs_dir, self.history_dir, self.quarantine_dir / "runs",
                                  self.quarantine_dir / "history") if d.is_dir() for p in d.iterdir()]
        self._seq = max([0] + [int(m.group(1)) for m in map(_SEQ.match, names) if m])

    # ------------------------------------------------------------- helpers
    @staticmethod
    def _parts(directory: Path) -> list[Path]:
        """The committed-looking parts of ``directory``, in sequence order (by value, not text)."""
        if not directory.is_dir():
            return []
        parts = [(int(m.group(1)), p.name, p) for p in directory.iterdir()
                 if (m := _PART.match(p.name))]
        return [p for _, _, p in sorted(parts)]

    @staticmethod
    def _seq_of(path: Path) -> int:
        return int(_SEQ.match(path.name).group(1))

    @contextlib.contextmanager
    def lock(self, *, read_only: bool = False):
        """Hold the store's exclusive lock; ``ValueError`` if another sweep holds it.

        ``read_only``: a reader that merely wants no writer at work; on a
        store it cannot write to (no ``.lock`` can be opened) it goes on unlocked.
        """
        try:
            import fcntl
        except ImportError:  # not POSIX: no locking
            yield
            return
        try:
            fh = open(self.root / ".lock", "a+")
        except OSError:
            if not read_only:
                raise
            yield
            return
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
        """Remove the temporary files of interrupted writes (call under :meth:`lock`)."""
        removed = 0
        for d in (self.runs_dir, self.history_dir, self.root, self.root / "specs"):
            if d.is_dir():
                for p in d.iterdir():
                    if p.name.startswith(".") and p.name.endswith(".tmp"):
                        p.unlink(missing_ok=True)
                        removed += 1
        return removed

    # -------------------------------------------------------------- checks
    def inspect(self, *, history: str = "full", live_only: bool = False,
                keep: bool = False) -> StoreReport:
        """Check the store's parts and runs (see the module docstring); changes nothing.

        Parameters
        ----------
        history : {'full', 'run_id'}
            'full' reads every column of every history part (every page
            checksum verified); 'run_id' only the column the row counts need.
        live_only : bool
            Read only the history parts that hold the latest row of some run.
        keep : bool
            Keep the runs tables (all columns) and, with ``history='full'``,
            the history tables, for :func:`load`.
        """
        if history not in ("full", "run_id"):
            raise ValueError(f"history must be 'full' or 'run_id', got {history!r}")
        report = StoreReport(self.root)
        runs_parts: dict[str, tuple] = {}      # name -> (ids, statuses, history_rows), in order
        for p in self._parts(self.runs_dir):
            try:
                t = _read_table(p, None if (keep or history == "full") else _CHECK_COLUMNS)
                ids = t.column("run_id").to_pylist()
                statuses = t.column("status").to_pylist()
            except Exception as exc:  # noqa: BLE001 - any reason a part cannot be used
                report.unreadable.append((p, _why(exc)))
                continue
            expected = (t.column("history_rows").to_pylist() if "history_rows" in t.column_names
                        else [None] * len(ids))    # a part written before the column existed
            runs_parts[p.name] = (ids, statuses, expected)
            report.runs_parts += 1
            if keep:
                report._runs_tables.append((p.name, t))
        current = {}                           # run id -> (part, status, history_rows), latest part
        for name, (ids, statuses, expected) in runs_parts.items():
            current.update((rid, (name, st, e)) for rid, st, e in zip(ids, statuses, expected))
        live = {name for name, _, _ in current.values()}

        bad: dict[str, str] = {}               # history part -> why it cannot be used
        counts: dict[str, Counter] = {}
        for p in self._parts(self.history_dir):
            if p.name not in runs_parts:
                report.uncommitted.append(p)
                continue
            if live_only and p.name not in live:
                continue
            try:
                if keep and history == "full":
                    t = _read_table(p)
                    counts[p.name] = _add_counts(Counter(), t.column("run_id"))
                    report._history_tables[p.name] = t
                else:
                    counts[p.name] = _history_counts(p, None if history == "full" else ["run_id"])
            except Exception as exc:  # noqa: BLE001
                report.unreadable.append((p, _why(exc)))
                bad[p.name] = f"history/{p.name} unreadable"
                continue
            report.history_parts += 1
            why = _mismatch(runs_parts[p.name], counts[p.name])
            if why:
                report.mismatched.append((p, why))
                bad[p.name] = f"history/{p.name} does not match its runs part"
                report._history_tables.pop(p.name, None)

        missing = set()
        for rid, (name, status, expected) in current.items():
            needs_rows = expected > 0 if expected is not None else status != "failed"
            if name in bad:
                has = counts.get(name, Counter()).get(rid, 0)
                if needs_rows or has:
                    report.damaged[rid] = bad[name]
                    continue
            elif name not in counts and needs_rows:  # a live part is read unless absent
                missing.add(name)
                report.damaged[rid] = f"history/{name} is missing"
                continue
            report.finished[rid] = status
        report.runs = len(current)
        report.missing = sorted(missing, key=lambda n: (self._seq_of(Path(n)), n))
        report.quarantined = self._quarantined()
        return report

    def repair(self) -> StoreReport:
        """Check every part in full and move what cannot be used to ``quarantine/``.

        Call under :meth:`lock`. Moves parts that cannot be read, history
        parts that do not match their runs part, and history parts without a
        readable runs part; warns once, naming them, and once more with the
        number of runs whose history is missing or damaged (they are not in
        ``report.finished``, so the sweep runs them again). Nothing is deleted.
        """
        report = self.inspect(history="full")
        unreadable_runs = {p.name for p, _ in report.unreadable if p.parent == self.runs_dir}
        moves = [(p, f"unreadable: {why}") for p, why in report.unreadable]
        moves += [(p, f"does not match its runs part: {why}") for p, why in report.mismatched]
        moves += [(p, "its runs part is unreadable (moved too)" if p.name in unreadable_runs
                   else "no runs part: a sweep stopped between a batch's two writes, or the runs "
                        "part was removed") for p in report.uncommitted]
        for path, why in moves:
            report.moved.append((path, self._quarantine(path, why), why))
        if report.moved:
            listed = "; ".join(f"{report._rel(src)} ({why})" for src, _, why in report.moved)
            warnings.warn(f"sweep store {self.root}: moved {len(report.moved)} file(s) to "
                          f"{QUARANTINE}/: {listed}", stacklevel=2)
        if report.damaged:
            warnings.warn(f"sweep store {self.root}: {len(report.damaged)} run(s) have missing or "
                          f"damaged history and run again ({_examples(report.damaged)})",
                          stacklevel=2)
        report.quarantined = self._quarantined()
        return report

    def _quarantine(self, path: Path, why: str) -> Path:
        """Move ``path`` to quarantine/<its folder>/ (never overwriting) and log why."""
        dest_dir = self.quarantine_dir / path.parent.name
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest, i = dest_dir / path.name, 1
        while dest.exists():
            dest, i = dest_dir / f"{path.name}.{i}", i + 1
        os.replace(path, dest)
        _fsync_dir(dest_dir)
        _fsync_dir(path.parent)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with open(self.quarantine_dir / "log.txt", "a", encoding="utf-8") as log:
            log.write(f"{stamp}\t{path.relative_to(self.root)}\t{dest.relative_to(self.root)}\t{why}\n")
        return dest

    def _quarantined(self) -> list[Path]:
        if not self.quarantine_dir.is_dir():
            return []
        return sorted(p for p in self.quarantine_dir.rglob("*") if p.is_file() and p.name != "log.txt")

    def finished(self) -> dict[str, str]:
        """Run id -> status of every run whose latest row and history check out (moves nothing)."""
        report = self.inspect(history="run_id", live_only=True)
        for p, why in report.unreadable:
            warnings.warn(f"skipping unreadable part {p}: {why}", stacklevel=2)
        return report.finished

    def save_spec(self, text: str, name: str = "spec", suffix: str = ".toml") -> Path:
        """Keep a copy of a spec run into this store (``specs/<name>-<hash><suffix>``)."""
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "spec"
        path = self.root / "specs" / f"{safe}-{digest}{suffix}"
        if not path.exists():
            atomic_write_bytes(path, text.encode())
        return path

    def write_batch(self, result) -> str:
        """Commit one :class:`~matsense.sweep.engine.BatchResult`: history part, then runs part.

        Each runs row gets ``history_rows``, its number of rows in the history
        part, so that a later check can tell a damaged history part.
        """
        from ..workers import deferred_signals

        self._seq += 1
        name = f"part-{self._seq:08d}-{result.batch_id}.parquet"
        counts = Counter()
        if result.history is not None and result.history.num_rows:
            _add_counts(counts, result.history.column("run_id"))
        rows = [dict(row, history_rows=counts.get(row["run_id"], 0)) for row in result.runs]
        # Ctrl-C or SIGTERM waits for the commit: a clean stop leaves no half-written batch.
        with deferred_signals():
            if counts:
                atomic_write_table(self.history_dir / name, result.history)
            try:
                atomic_write_table(self.runs_dir / name, rows_to_table(rows))
            except BaseException:
                # E.g. the disk filled up between the two parts: take the history part back,
                # so that the store stays as it was before this batch (it runs again).
                with contextlib.suppress(OSError):
                    (self.history_dir / name).unlink(missing_ok=True)
                raise
        return name


def _mismatch(runs_part: tuple, counts: Counter) -> str | None:
    """Why a history part's rows per run disagree with its runs part, or None."""
    ids, statuses, expected = runs_part
    problems = []
    for rid, status, want in zip(ids, statuses, expected):
        have = counts.get(rid, 0)
        if want is not None and have != want:
            problems.append(f"run {rid}: {have} rows, {want} recorded")
        elif want is None and status != "failed" and have == 0:
            problems.append(f"run {rid}: no rows")
    strangers = set(counts) - set(ids)
    if strangers:
        problems.append(f"rows of {len(strangers)} run(s) not in its runs part")
    if not problems:
        return None
    more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more


def _examples(damaged: dict, n: int = 3) -> str:
    items = sorted(damaged.items())
    text = "; ".join(f"{rid}: {why}" for rid, why in items[:n])
    return text + (f"; and {len(items) - n} more" if len(items) > n else "")


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


def verify(out_dir) -> StoreReport:
    """Check a results store in full without changing it (``matsense sweep --verify DIR``).

    Reads every part (verifying its page checksums), compares every run's
    history rows with its runs row, and lists unreadable, mismatched,
    missing and uncommitted parts, the runs a resume would run again, and
    the files in ``quarantine/``. ``report.healthy`` is True when there is
    nothing to repair. Refused (``ValueError``) while a sweep writes to the
    store.

    Parameters
    ----------
    out_dir : path
        The results store.

    Returns
    -------
    StoreReport
    """
    store = Store(out_dir)
    try:
        with store.lock(read_only=True):
            return store.inspect(history="full")
    except ValueError as exc:
        if "another sweep" in str(exc):
            raise ValueError(f"a sweep is writing to {store.root} (its .lock is held); verify it "
                             "when that sweep has finished") from None
        raise


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
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    store = Store(out_dir)
    report = store.inspect(history="full" if history else "run_id", live_only=True, keep=True)
    for p, why in report.unreadable:
        warnings.warn(f"skipping unreadable part {p}: {why}", stacklevel=2)
    if report.damaged:
        warnings.warn(f"left out {len(report.damaged)} run(s) of {store.root} whose history is "
                      f"missing or damaged ({_examples(report.damaged)}); running the sweep again "
                      f"re-runs them (`matsense sweep --verify {store.root}` lists them)",
                      stacklevel=2)
    runs_t = _concat([(name, _with_part(name, t)) for name, t in report._runs_tables])
    if runs_t is None:
        empty = pd.DataFrame({"run_id": pd.Series([], dtype=object)})
        return SweepResults(empty, empty.copy() if history else None)
    # Nullable integers: a failed run has no 'iterations', yet the column stays integral.
    runs = runs_t.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    runs = runs.drop_duplicates("run_id", keep="last")  # parts are read oldest first
    runs = runs[runs["run_id"].isin(report.finished)]
    runs = runs.sort_values("run_id", kind="stable").reset_index(drop=True)
    if not history:
        return SweepResults(runs, None)

    keep = runs.groupby("part")["run_id"].agg(list).to_dict()
    tables = []
    for name, t in report._history_tables.items():
        if name in keep:
            mask = pc.is_in(t.column("run_id"), value_set=pa.array(keep[name], pa.string()))
            tables.append((name, _with_part(name, t.filter(mask))))
    hist_t = _concat(tables)
    if hist_t is None:
        hist = pd.DataFrame({"run_id": pd.Series([], dtype=object)})
    else:
        hist = hist_t.to_pandas()
        hist = hist.sort_values(["run_id", "iteration"], kind="stable").reset_index(drop=True)
    return SweepResults(runs, hist)


__all__ = ["Store", "StoreReport", "SweepResults", "load", "verify", "check_store",
           "atomic_write_table", "atomic_write_bytes"]
