"""The zero-padded, cache-line-aligned factor buffers of :mod:`matsense.operators.completion`.

The entry kernels (:mod:`.kernels.entries`) read the factors' rows zero-padded to whole 4-lane
registers, starting on 64-byte boundaries; these helpers build such buffers and undo the padding.
"""

from __future__ import annotations

import numpy as np


def _unpad(Xp: np.ndarray, n: int, k: int, kp: int) -> np.ndarray:
    """(B, n, k) from padded rows (B, n·kp): a copy, unless there is no padding."""
    X = Xp.reshape(Xp.shape[0], n, kp)
    return X if k == kp else np.ascontiguousarray(X[:, :, :k])


def _index_dtype(n: int):
    return np.int32 if n <= np.iinfo(np.int32).max else np.int64


def _aligned_empty(shape) -> np.ndarray:
    """An uninitialised float64 array whose data starts on a 64-byte (cache line) boundary."""
    size = int(np.prod(shape))
    buf = np.empty(size + 8)
    skip = (-buf.ctypes.data % 64) // 8
    return buf[skip : skip + size].reshape(shape)


def _padded(X: np.ndarray, kp: int) -> np.ndarray:
    """(B, n·kp): the rows of X (B, n, k) zero-padded to kp columns, cache-line aligned."""
    B, n, k = X.shape
    if k == kp and X.dtype == np.float64 and X.flags.c_contiguous:
        return X.reshape(B, n * kp)
    out = _aligned_empty((B, n, kp))
    out[:, :, :k] = X
    out[:, :, k:] = 0.0
    return out.reshape(B, n * kp)


def _zeros_padded(B: int, n: int, kp: int) -> np.ndarray:
    out = _aligned_empty((B, n * kp))
    out.fill(0.0)
    return out
