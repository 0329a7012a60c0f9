"""Cache sizes and the NumPy loop's block size.

Block size: big enough that the two BLAS calls per block amortize their fixed
cost (a few µs), small enough that a block stays in the last-level cache
between the two calls. The default is a quarter of the L3 size read from
sysfs, clamped to 1–8 MiB, see :func:`default_block_bytes`.
"""

from __future__ import annotations

import functools
import os

_FALLBACK_L3 = 8 * 2**20


def _parse_size(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * mult


@functools.lru_cache(maxsize=1)
def last_level_cache_bytes() -> int:
    """Size of the largest CPU cache (Linux sysfs); 8 MiB when it cannot be read."""
    best = 0
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(base):
            try:
                with open(os.path.join(base, entry, "size")) as fh:
                    best = max(best, _parse_size(fh.read()))
            except (OSError, ValueError):
                continue
    except OSError:
        pass
    return best or _FALLBACK_L3


def default_block_bytes() -> int:
    """Bytes of A per block: L3/4, clamped to [1 MiB, 8 MiB]."""
    return int(min(max(last_level_cache_bytes() // 4, 2**20), 8 * 2**20))


def block_rows_for(d: int, itemsize: int, block_bytes: int | None = None) -> int:
    """Rows of an (m × d) matrix per block."""
    block_bytes = default_block_bytes() if block_bytes is None else block_bytes
    return max(1, int(block_bytes) // (d * itemsize))
