"""What a callback sees: :class:`IterateInfo`, the norms of iterate t and the iterate itself."""

from __future__ import annotations

from collections.abc import Mapping

from .batch import Batch


class IterateInfo(Mapping):
    """What ``callback(t, info)`` receives: the norms of iterate t and the iterate itself.

    ``info["residual_norm"]`` and ``info["error"]`` are NumPy arrays over the
    B trajectories (NaN for trajectories that have stopped; ``error`` is None
    when not computed at t); ``info["active"]`` (B,) says which trajectories
    are still running (not yet converged, diverged or stopped);
    ``info["factors"]`` are the factors of iterate t of the trajectories still
    in the batch, whose original indices are ``info["rows"]`` (a finished
    trajectory may stay in the batch, frozen, for a while: check ``active``);
    ``info["extras"]`` the method's extras of those rows (e.g. a running sum a
    method keeps in its state). Factors and extras are built on first access.
    """

    _KEYS = ("residual_norm", "error", "active", "rows", "factors", "extras")

    def __init__(self, t, rn, err, active, batch: Batch):
        self.t = t
        self._values = {
            "residual_norm": rn,
            "error": err,
            "active": active.copy(),
            "rows": batch.rows,
        }
        self._batch = batch

    def __getitem__(self, key):
        if key == "factors":
            return self._batch.factors()
        if key == "extras":
            return self._batch.method.extras(self._batch.state)
        if key not in self._KEYS:
            raise KeyError(key)
        return self._values[key]

    def __iter__(self):
        return iter(self._KEYS)

    def __len__(self) -> int:
        return len(self._KEYS)


__all__ = ["IterateInfo"]
