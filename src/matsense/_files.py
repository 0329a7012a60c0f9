"""Files that are whole or absent: atomic writes, a full disk named, output folders locked.

* :func:`atomic_write` writes to a hidden temporary file beside the target, flushes and
  fsyncs it, renames it over the target (``os.replace``) and fsyncs the folder: a reader —
  or a user looking after a crash, a SIGKILL or a full disk — sees the old file or the new
  one, never a truncated one that looks complete. The temporary file is removed when the
  write fails.
* A write that fails because the disk (or the quota, or the file-size limit) is full
  raises :class:`DiskFullError`: an ``OSError`` with the same errno whose message names the
  file, so that the command line can say in one line which path could not be written.
* :func:`folder_lock` holds an exclusive ``flock`` on a lock file in an output folder, so
  that a second command writing the same files there is refused with one line instead of
  mixing its results with the first one's. The lock dies with its process.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from pathlib import Path

#: errnos of a full disk: no space, file-size limit (RLIMIT_FSIZE), quota.
DISK_FULL_ERRNOS = frozenset(
    e for e in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None)) if e is not None
)


class DiskFullError(OSError):
    """A write failed for lack of space; ``filename`` is the file that could not be written."""

    def __str__(self) -> str:
        return disk_full_message(self)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def disk_full_message(exc: OSError, fallback=None) -> str:
    """One line: which file could not be written and why (``fallback``: the folder, when the
    error does not name a file)."""
    reasons: dict[int | None, str] = {
        errno.ENOSPC: "no space left on device",
        errno.EFBIG: "file too large (the file-size limit, RLIMIT_FSIZE / ulimit -f)",
    }
    reason = reasons.get(exc.errno, "disk quota exceeded")
    where = exc.filename or ("an output file" + (f" (--out {fallback})" if fallback else ""))
    return f"could not write {where}: {reason}; free space and rerun"


@contextlib.contextmanager
def naming(path):
    """A full disk inside the block is raised as :class:`DiskFullError` naming ``path`` (for
    files written in place, such as an append-only log)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS and not isinstance(exc, DiskFullError):
            raise DiskFullError(exc.errno, os.strerror(exc.errno), str(path)) from exc
        raise


def fsync_dir(path: Path) -> None:
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


def atomic_write(path, write) -> None:
    """Call ``write(fh)`` on a binary temp file beside ``path``, fsync, rename over ``path``,
    fsync the folder. A full disk raises :class:`DiskFullError` naming ``path``; the temp file
    is removed whatever fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with naming(path), open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            if tmp.exists():
                tmp.unlink()
    fsync_dir(path.parent)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, fsync dir)."""
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write_bytes(path, text.encode(encoding))


@contextlib.contextmanager
def folder_lock(folder, name: str, what: str, *, blocking: bool = False):
    """Hold an exclusive lock on ``folder/name`` for the block.

    ``blocking=False``: ``ValueError`` (one line, naming ``what`` — the command holding it —
    and the folder) when another process holds it. ``blocking=True``: wait for it (for short
    critical sections such as rebuilding a report). Without ``fcntl`` (not POSIX), or in a
    folder where no lock file can be created, the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    folder = Path(folder)
    try:
        fh = open(folder / name, "a+")
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError:
            raise ValueError(
                f"another {what} is writing to {folder} (its {name} is held); "
                "wait for it to finish or use another --out"
            ) from None
        yield
    finally:
        fh.close()


__all__ = [
    "atomic_write",
    "naming",
    "atomic_write_bytes",
    "atomic_write_text",
    "DiskFullError",
    "disk_full_message",
    "is_disk_full",
    "folder_lock",
    "fsync_dir",
    "DISK_FULL_ERRNOS",
]
