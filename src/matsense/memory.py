"""Memory estimates checked before anything large is allocated.

:func:`check` compares the bytes an allocation will take with the memory
this machine has available (``MemAvailable`` of /proc/meminfo, or psutil),
or with a limit the user sets (``max_memory=`` arguments, ``--max-memory``
on the command line, or the ``MATSENSE_MAX_MEMORY`` environment variable,
e.g. ``8G``), and refuses with one line naming the size, the limit and how to
override it — instead of a ``MemoryError`` traceback, or the machine swapping.
"""

from __future__ import annotations

import os

#: Share of the available memory one allocation may take.
AVAILABLE_SHARE = 0.9

#: Without an explicit limit, allocations up to this size are not checked.
SMALL = 32 * 2**20

_UNITS = {
    "": 1,
    "B": 1,
    "K": 2**10,
    "KB": 2**10,
    "KIB": 2**10,
    "M": 2**20,
    "MB": 2**20,
    "MIB": 2**20,
    "G": 2**30,
    "GB": 2**30,
    "GIB": 2**30,
    "T": 2**40,
    "TB": 2**40,
    "TIB": 2**40,
}


def parse_size(text, name: str = "max_memory") -> int:
    """Bytes from an int or a string like '8G', '512M', '2.5GiB' (ValueError otherwise)."""
    if isinstance(text, bool):
        raise ValueError(f"{name} must be a size such as 8G or 512M, got {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = str(text).strip().upper().replace(" ", "")
        digits = raw.rstrip("KMGTIB")
        unit = raw[len(digits) :]
        try:
            value = float(digits) * _UNITS[unit]
        except (ValueError, KeyError):
            raise ValueError(f"{name} must be a size such as 8G or 512M, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"{name} must be a positive size such as 8G or 512M, got {text!r}")
    return int(value)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil is optional
        return None


def _cgroup_headroom() -> int | None:
    """memory.max − memory.current of this process's cgroup (v2), when it sets a limit."""
    try:
        with open("/proc/self/cgroup") as fh:
            rel = next((ln.split("::", 1)[1].strip() for ln in fh if ln.startswith("0::")), None)
        if rel is None:
            return None
        base = "/sys/fs/cgroup" + rel.rstrip("/")
        with open(base + "/memory.max") as fh:
            cap = fh.read().strip()
        if cap == "max":
            return None
        with open(base + "/memory.current") as fh:
            used = int(fh.read().strip())
        return max(int(cap) - used, 0)
    except (OSError, ValueError, StopIteration):
        return None


def _rlimit_headroom() -> int | None:
    """Address space left under RLIMIT_AS (``ulimit -v``), when one is set."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft < 0:
            return None
        with open("/proc/self/status") as fh:
            size = next(int(ln.split()[1]) * 1024 for ln in fh if ln.startswith("VmSize:"))
        return max(soft - size, 0)
    except (ImportError, OSError, ValueError, StopIteration):
        return None


def available_bytes() -> int | None:
    """Memory available to new allocations of this process, or None when unknown.

    The least of MemAvailable (/proc/meminfo, or psutil), the headroom of the
    process's cgroup (memory.max − memory.current) and the address space left
    under RLIMIT_AS: a container or ``ulimit -v`` limit counts, not only the
    machine's free memory.
    """
    known = [
        v for v in (_meminfo_available(), _cgroup_headroom(), _rlimit_headroom()) if v is not None
    ]
    return min(known) if known else None


def limit(max_memory=None) -> tuple[int | None, str]:
    """The byte limit in force and where it comes from."""
    if max_memory is not None:
        return parse_size(max_memory), "max_memory"
    env = os.environ.get("MATSENSE_MAX_MEMORY", "").strip()
    if env:
        return (
            parse_size(env, "MATSENSE_MAX_MEMORY"),
            "set by --max-memory or MATSENSE_MAX_MEMORY",
        )
    avail = available_bytes()
    if avail is None:
        return None, "unknown"
    return int(avail * AVAILABLE_SHARE), "available memory"


def fmt(nbytes: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{int(nbytes)} B"


def check(what: str, nbytes: int, max_memory=None) -> None:
    """ValueError (one line) when ``nbytes`` for ``what`` exceed the limit in force."""
    if max_memory is None and nbytes <= SMALL and not os.environ.get("MATSENSE_MAX_MEMORY"):
        return  # small: not worth reading /proc (runs of tiny problems call this often)
    cap, source = limit(max_memory)
    if cap is None or nbytes <= cap:
        return
    hint = (
        "raise it with max_memory= / --max-memory / MATSENSE_MAX_MEMORY"
        if source != "available memory"
        else "free memory, use a smaller problem, or set a limit with max_memory= / "
        "--max-memory / MATSENSE_MAX_MEMORY (e.g. 32G) to try anyway"
    )
    raise ValueError(
        f"{what} would take {fmt(nbytes)}, more than the {fmt(cap)} allowed ({source}); {hint}"
    )


__all__ = ["check", "limit", "parse_size", "available_bytes", "fmt"]
