"""The trajectories still advancing, as one batched method state (:class:`Batch`)."""

from __future__ import annotations

import numpy as np

from .. import backend


def _select(mask_np, new_state, old_state, xp, dev):
    """Per-trajectory choice between two states (NamedTuples with batch-first arrays)."""
    if mask_np.all():
        return new_state
    mask = xp.asarray(mask_np, device=dev)
    fields = []
    for new, old in zip(new_state, old_state):
        if backend.is_array(new) and new.ndim >= 1:
            fields.append(backend.where_batch(mask, new, old))
        else:
            fields.append(new)
    return type(new_state)(*fields)


def _take(state, idx, xp, dev):
    """Rows ``idx`` (numpy ints) of every batch-first array field of a state."""
    ind = xp.asarray(idx, device=dev)
    return type(state)(
        *[xp.take(f, ind, axis=0) if backend.is_array(f) and f.ndim >= 1 else f for f in state]
    )


class Batch:
    """The trajectories still advancing, as one batched method state.

    ``rows[i]`` is the original index of row i of ``state``. Trajectories that
    have stopped are frozen (their rows keep the stopping iterate) and dropped
    once they are at least half of the batch, their final state kept aside, so
    no work is spent stepping them further. :meth:`final` puts everything back
    in the original order.
    """

    def __init__(self, method, state):
        self.method = method
        self.state = self.prev = state
        self.xp = backend.namespace(method.factors(state)[0])
        self.dev = backend.device_of(method.factors(state)[0])
        self.rows = np.arange(method.factors(state)[0].shape[0])
        self._pieces = []  # (original indices, final factors, extras) of dropped rows

    def factors(self) -> tuple:
        return self.method.factors(self.state)

    def rollback(self, bad):
        """Trajectories ``bad`` (mask over the original B, or None: none) go back to the
        previous iterate."""
        if bad is not None:
            self.state = _select((~bad)[self.rows], self.state, self.prev, self.xp, self.dev)

    def advance(self, new_state, active, all_active: bool = False):
        """Take ``new_state`` for the ``active`` trajectories (mask over B); freeze the others.
        ``all_active``: every trajectory is active (then no mask needs to be read)."""
        self.prev = self.state
        if all_active:
            self.state = new_state
            return
        live = active[self.rows]
        self.state = _select(live, new_state, self.state, self.xp, self.dev)
        if 2 * live.sum() <= self.rows.size:
            gone, keep = np.flatnonzero(~live), np.flatnonzero(live)
            done = _take(self.state, gone, self.xp, self.dev)
            self._pieces.append(
                (self.rows[gone], self.method.factors(done), self.method.extras(done))
            )
            self.state = _take(self.state, keep, self.xp, self.dev)
            self.prev = _take(self.prev, keep, self.xp, self.dev)
            self.rows = self.rows[keep]

    def scatter(self, values):
        """A length-B float array holding ``values`` (one per row) at the rows' original indices."""
        if not self._pieces:  # never compacted: rows is arange(B)
            return values
        B = self.rows.size + sum(p[0].size for p in self._pieces)
        out = np.full((B,) + values.shape[1:], np.nan)
        out[self.rows] = values
        return out

    def final(self):
        """Final factors and extras (numpy) of all B trajectories, in the original order."""
        pieces = self._pieces + [(self.rows, self.factors(), self.method.extras(self.state))]
        if len(pieces) == 1:
            _, final, extras = pieces[0]
            return final, {k: backend.to_numpy(v) for k, v in extras.items()}
        xp = self.xp
        perm = np.argsort(np.concatenate([p[0] for p in pieces]))
        ind = xp.asarray(perm, device=self.dev)
        final = tuple(
            xp.take(xp.concat([p[1][i] for p in pieces], axis=0), ind, axis=0)
            for i in range(len(pieces[0][1]))
        )
        extras = {
            k: np.concatenate([backend.to_numpy(p[2][k]) for p in pieces])[perm]
            for k in pieces[0][2]
        }
        return final, extras


__all__ = ["Batch"]
