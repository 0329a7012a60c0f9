"""Checking a sweep store: read every part, compare each run's history rows with its runs row.

The check behind :meth:`matsense.sweep.store.Store.inspect` (and so
:func:`~matsense.sweep.store.verify`, :meth:`~matsense.sweep.store.Store.repair`
and :func:`~matsense.sweep.store.load`), and the :class:`StoreReport` it
returns. See :mod:`matsense.sweep.store` for the layout and the guarantees.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

QUARANTINE = "quarantine"
#: Columns of a runs part that the check needs.
_CHECK_COLUMNS = ("run_id", "status", "history_rows")


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
    """Rows per run id of a history part, reading ``columns`` (None: all: checks every page)."""
    import pyarrow.parquet as pq

    counts: Counter = Counter()
    with pq.ParquetFile(path, page_checksum_verification=True) as pf:
        for batch in pf.iter_batches(columns=columns):  # one batch at a time: bounded memory
            _add_counts(counts, batch.column("run_id"))
    return counts


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


# ------------------------------------------------------------------- report
@dataclass
class StoreReport:
    """What a check of a store found (:func:`~matsense.sweep.store.verify`,
    :meth:`~matsense.sweep.store.Store.repair`, :func:`~matsense.sweep.store.load`).

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
        resume skips and :func:`~matsense.sweep.store.load` returns.
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
    missing: list | set = field(default_factory=list)  # a set until the store orders it
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
        lines = [
            head,
            f"  read {self.runs_parts} runs parts and {self.history_parts} history parts",
            (
                f"  {self.runs} runs: {len(self.finished)} with intact history, "
                f"{len(self.damaged)} with missing or damaged history"
            ),
        ]
        for label, items in (
            ("unreadable", self.unreadable),
            ("history does not match its runs part", self.mismatched),
        ):
            lines += [f"  {label}: {self._rel(p)} ({why})" for p, why in items]
        lines += [f"  missing: history/{name}" for name in self.missing]
        lines += [
            f"  uncommitted (no readable runs part): {self._rel(p)}" for p in self.uncommitted
        ]
        if self.damaged:
            ids = sorted(self.damaged)
            more = f" (+{len(ids) - 10} more)" if len(ids) > 10 else ""
            lines.append(f"  runs to re-run: {', '.join(ids[:10])}{more}")
        lines += [
            f"  moved to {self._rel(dest)}: {self._rel(src)} ({why})"
            for src, dest, why in self.moved
        ]
        if self.quarantined:
            lines.append(
                f"  {QUARANTINE}/ holds {len(self.quarantined)} file(s) set aside by "
                f"sweeps (see {QUARANTINE}/log.txt); delete them once inspected"
            )
        if not self.healthy:
            lines.append(
                "  running the sweep again re-runs the damaged runs and moves the "
                f"unusable files to {QUARANTINE}/"
            )
        return "\n".join(lines)


# -------------------------------------------------------------------- check
def check_parts(
    root: Path,
    runs_dir: Path,
    history_dir: Path,
    parts,
    *,
    history: str,
    live_only: bool,
    keep: bool,
) -> StoreReport:
    """The report on a store's parts (``parts(directory)`` lists a folder's parts in order).

    Everything :meth:`~matsense.sweep.store.Store.inspect` reports but
    ``quarantined``; ``missing`` is a set here (the store orders it).
    """
    report = StoreReport(root)
    columns = None if (keep or history == "full") else _CHECK_COLUMNS
    runs_parts = _read_runs_parts(report, parts(runs_dir), columns, keep)
    current: dict = {}  # run id -> (part, status, history_rows), latest part
    for name, (ids, statuses, expected) in runs_parts.items():
        current.update((rid, (name, st, e)) for rid, st, e in zip(ids, statuses, expected))
    live = {name for name, _, _ in current.values()}
    bad, counts = _check_history_parts(
        report, parts(history_dir), runs_parts, live if live_only else None, history, keep
    )
    report.missing = _sort_runs(report, current, bad, counts)
    report.runs = len(current)
    return report


def _read_runs_parts(report: StoreReport, paths, columns, keep: bool) -> dict[str, tuple]:
    """Part name -> (ids, statuses, history_rows) of every readable runs part, in order."""
    runs_parts: dict[str, tuple] = {}
    for p in paths:
        try:
            t = _read_table(p, columns)
            ids = t.column("run_id").to_pylist()
            statuses = t.column("status").to_pylist()
        except Exception as exc:  # noqa: BLE001 - any reason a part cannot be used
            report.unreadable.append((p, _why(exc)))
            continue
        expected = (
            t.column("history_rows").to_pylist()
            if "history_rows" in t.column_names
            else [None] * len(ids)
        )  # a part written before the column existed
        runs_parts[p.name] = (ids, statuses, expected)
        report.runs_parts += 1
        if keep:
            report._runs_tables.append((p.name, t))
    return runs_parts


def _check_history_parts(
    report: StoreReport, paths, runs_parts: dict, live, history: str, keep: bool
) -> tuple[dict[str, str], dict[str, Counter]]:
    """Read the history parts (only those in ``live`` unless it is None) and count their rows.

    Returns (history part -> why it cannot be used, history part -> rows per run id).
    """
    bad: dict[str, str] = {}
    counts: dict[str, Counter] = {}
    for p in paths:
        if p.name not in runs_parts:
            report.uncommitted.append(p)
            continue
        if live is not None and p.name not in live:
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
    return bad, counts


def _sort_runs(report: StoreReport, current: dict, bad: dict, counts: dict) -> set:
    """Each run to ``report.finished`` or ``report.damaged``; the missing history parts."""
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
    return missing


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


__all__ = ["StoreReport", "check_parts", "QUARANTINE"]
