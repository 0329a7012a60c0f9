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
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from .._files import atomic_write, atomic_write_bytes, fsync_dir
from .store_check import QUARANTINE, StoreReport, _add_counts, _examples, check_parts
from .store_load import SweepResults, load

FORMAT = "matsense-sweep-store"
VERSION = 1
#: A committed part: any number of digits (ordered by value), then the batch id.
_PART = re.compile(r"^part-(\d+)-([0-9a-f]+)\.parquet$")
#: The sequence number of any part-like name (quarantined copies may carry a suffix).
_SEQ = re.compile(r"^part-(\d+)-")


# ------------------------------------------------------------ atomic writes
# The writer (temp file, fsync, rename, fsync dir; a full disk raised as DiskFullError naming
# the part) is shared with the reports: matsense._files.
_fsync_dir = fsync_dir
_atomic_write = atomic_write


def atomic_write_table(path: Path, table) -> None:
    """Write a pyarrow Table as Parquet (zstd, page checksums) to ``path`` atomically."""
    import pyarrow.parquet as pq

    _atomic_write(
        path, lambda fh: pq.write_table(table, fh, compression="zstd", write_page_checksum=True)
    )


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
                raise ValueError(
                    f"{self.root} is not empty and is not a matsense sweep store "
                    "(no store.json); choose a new or empty directory"
                )
            for d in (self.root, self.runs_dir, self.history_dir, self.root / "specs"):
                d.mkdir(parents=True, exist_ok=True)
            if not marker.exists():
                atomic_write_bytes(
                    marker, json.dumps({"format": FORMAT, "version": VERSION}).encode()
                )
        check_store(self.root)
        # Past every part ever written, quarantined ones included: a name is never reused.
        names = [
            p.name
            for d in (
                self.runs_dir,
                self.history_dir,
                self.quarantine_dir / "runs",
                self.quarantine_dir / "history",
            )
            if d.is_dir()
            for p in d.iterdir()
        ]
        self._seq = max([0] + [int(m.group(1)) for m in map(_SEQ.match, names) if m])

    # ------------------------------------------------------------- helpers
    @staticmethod
    def _parts(directory: Path) -> list[Path]:
        """The committed-looking parts of ``directory``, in sequence order (by value, not text)."""
        if not directory.is_dir():
            return []
        parts = [
            (int(m.group(1)), p.name, p) for p in directory.iterdir() if (m := _PART.match(p.name))
        ]
        return [p for _, _, p in sorted(parts)]

    @staticmethod
    def _seq_of(path: Path) -> int:
        match = _SEQ.match(path.name)  # only part files' names come here: always a match
        return int(cast(re.Match, match).group(1))

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
                raise ValueError(
                    f"another sweep is writing to {self.root} "
                    "(its .lock is held); wait for it or use another directory"
                ) from None
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
    def inspect(
        self, *, history: str = "full", live_only: bool = False, keep: bool = False
    ) -> StoreReport:
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
        report = check_parts(
            self.root,
            self.runs_dir,
            self.history_dir,
            self._parts,
            history=history,
            live_only=live_only,
            keep=keep,
        )
        report.missing = sorted(report.missing, key=lambda n: (self._seq_of(Path(n)), n))
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
        moves += [
            (
                p,
                "its runs part is unreadable (moved too)"
                if p.name in unreadable_runs
                else "no runs part: a sweep stopped between a batch's two writes, or the runs "
                "part was removed",
            )
            for p in report.uncommitted
        ]
        for path, why in moves:
            report.moved.append((path, self._quarantine(path, why), why))
        if report.moved:
            listed = "; ".join(f"{report._rel(src)} ({why})" for src, _, why in report.moved)
            warnings.warn(
                f"sweep store {self.root}: moved {len(report.moved)} file(s) to "
                f"{QUARANTINE}/: {listed}",
                stacklevel=2,
            )
        if report.damaged:
            warnings.warn(
                f"sweep store {self.root}: {len(report.damaged)} run(s) have missing or "
                f"damaged history and run again ({_examples(report.damaged)})",
                stacklevel=2,
            )
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
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with open(self.quarantine_dir / "log.txt", "a", encoding="utf-8") as log:
            log.write(
                f"{stamp}\t{path.relative_to(self.root)}\t{dest.relative_to(self.root)}\t{why}\n"
            )
        return dest

    def _quarantined(self) -> list[Path]:
        if not self.quarantine_dir.is_dir():
            return []
        return sorted(
            p for p in self.quarantine_dir.rglob("*") if p.is_file() and p.name != "log.txt"
        )

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
        counts: Counter = Counter()
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
        raise ValueError(
            f"{root} is not a matsense sweep store (store.json format {meta.get('format')!r})"
        )
    if int(meta.get("version", 0)) > VERSION:
        raise ValueError(
            f"{root} was written by a newer matsense (store version "
            f"{meta.get('version')}; this one reads <= {VERSION})"
        )
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
            raise ValueError(
                f"a sweep is writing to {store.root} (its .lock is held); verify it "
                "when that sweep has finished"
            ) from None
        raise


__all__ = [
    "Store",
    "StoreReport",
    "SweepResults",
    "load",
    "verify",
    "check_store",
    "atomic_write_table",
    "atomic_write_bytes",
]
