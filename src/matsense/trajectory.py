"""The result of a run: plain data, never a live object.

:func:`matsense.run` returns a :class:`Trajectory` when it was started from
unbatched factors and a :class:`BatchTrajectory` when the factors had a
leading batch axis B. Both read the same batched record (:class:`RunRecord`);
a :class:`Trajectory` is the view of one of its trajectories, so every
attribute has one type: ``Trajectory.status`` is a :class:`Status`,
``BatchTrajectory.status`` an array of them; ``batch[b]`` is the
:class:`Trajectory` of trajectory b.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._files import atomic_write
from .backend import to_numpy

SCALAR_METRICS = (
    "time",
    "residual_norm",
    "loss",
    "error",
    "rel_error",
    "imbalance_drift",
    "off_subspace",
)

#: History keys shared by the whole batch (one value per record, not per trajectory).
SHARED_KEYS = ("iteration", "time")


class Status(enum.StrEnum):
    """How a trajectory ended. A ``str``: ``Status.CONVERGED == "converged"``."""

    CONVERGED = "converged"
    MAX_ITERS = "max_iters"
    DIVERGED = "diverged"
    STOPPED = "stopped"

    @property
    def message(self) -> str:
        """One sentence on what the status means and which iterate the factors are."""
        return _MESSAGES[self]


_MESSAGES = {
    Status.CONVERGED: "met the tolerance; the factors are the first iterate that did",
    Status.MAX_ITERS: "ran every iteration without meeting the tolerance; the factors are the last iterate",
    Status.DIVERGED: (
        "the residual or the error became non-finite or grew past the divergence "
        "bound; the factors are the last finite iterate"
    ),
    Status.STOPPED: "a callback stopped the run; the factors are the iterate it stopped at",
}


@dataclass(frozen=True)
class RunRecord:
    """Everything a run produced, for all B trajectories (what both result types read).

    ``history[key]`` has shape (n_records,) for :data:`SHARED_KEYS` and
    (n_records, B[, k]) otherwise, NaN where a trajectory was not recorded;
    ``recorded`` (n_records, B) says where it was. ``phases[b]`` are the phases of
    trajectory b (:class:`~matsense.methods.Phase`: e.g. before and after rebalanced GD's
    switch), as its method declared them; ``start_imbalance`` is Δ₀ = F₀ᵀF₀ − G₀ᵀG₀ of
    the starts (B, k, k), None for X Xᵀ runs.
    """

    factors: tuple
    status: np.ndarray  # (B,) object array of Status
    iterations: np.ndarray  # (B,) int
    wall_time: float
    history: dict
    recorded: np.ndarray  # (n_records, B) bool
    extras: dict  # name -> (B,) numpy array
    config: dict = field(default_factory=dict)
    phases: tuple = ()  # (B,) tuples of Phase; empty: not known (one phase "run")
    start_imbalance: np.ndarray | None = None  # (B, k, k) Δ₀ of F Gᵀ starts

    def __post_init__(self):
        # A record without rows (every trajectory ended before its first record, or a record
        # built by hand) is still well-formed: ``recorded`` (0, B), and the keys that every
        # history has, with no rows — never a 1-d ``recorded`` that views cannot index.
        B = int(np.shape(self.status)[0])
        recorded = np.asarray(self.recorded, dtype=bool)
        if recorded.ndim != 2 or recorded.shape[1] != B:
            if recorded.size:
                raise ValueError(
                    f"recorded must have shape (n_records, B) with B = {B}, got {recorded.shape}"
                )
            recorded = np.zeros((0, B), dtype=bool)
        object.__setattr__(self, "recorded", recorded)
        if not self.history:
            object.__setattr__(
                self,
                "history",
                {
                    "iteration": np.zeros(0, dtype=int),
                    "time": np.zeros(0),
                    "residual_norm": np.zeros((0, B)),
                },
            )

    @property
    def batch_size(self) -> int:
        return int(self.status.shape[0])


class _Result:
    """What both result types share: the long table, the summary, saving."""

    _record: RunRecord
    batched: bool  # set by each subclass

    @property
    def wall_time(self) -> float:
        """Seconds for the whole run (shared by the batch)."""
        return self._record.wall_time

    @property
    def config(self) -> dict:
        """Method name and hyper-parameters, and the run settings."""
        return self._record.config

    def _indices(self) -> range:
        raise NotImplementedError

    def _phases(self, b: int) -> tuple:
        phases = self._record.phases
        if not phases:
            from .methods.base import Phase

            return (Phase("run"),)
        return tuple(phases[b])

    def to_frame(self):
        """Long-format pandas DataFrame: one row per trajectory per recorded iteration."""
        import pandas as pd

        rec = self._record
        h = rec.history
        it = h["iteration"]
        frames = []
        for b in self._indices():
            rows = rec.recorded[:, b]
            cols = {"trajectory": b, "iteration": it[rows]}
            for key in SCALAR_METRICS:
                if key in h:
                    cols[key] = (h[key] if key in SHARED_KEYS else h[key][:, b])[rows]
            if "singular_values" in h:
                for j in range(h["singular_values"].shape[-1]):
                    cols[f"sv_{j + 1}"] = h["singular_values"][rows, b, j]
            frames.append(pd.DataFrame(cols))
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> list[dict]:
        """One dict per trajectory: status, iterations, final metrics, extras."""
        rec = self._record
        out = []
        for b in self._indices():
            rows = np.flatnonzero(rec.recorded[:, b])
            row = {
                "trajectory": b,
                "status": str(rec.status[b]),
                "iterations": int(rec.iterations[b]),
            }
            for key in ("error", "rel_error", "residual_norm", "loss"):
                if key in rec.history:  # NaN for a trajectory without records
                    row[f"final_{key}"] = (
                        float(rec.history[key][rows[-1], b]) if rows.size else float("nan")
                    )
            for key, val in rec.extras.items():
                row[key] = val[b].item()
            row["phases"] = [phase_dict(ph) for ph in self._phases(b)]
            out.append(row)
        return out

    def save(self, path) -> Path:
        """Write the history to ``path`` (.csv or .parquet), by its suffix."""
        path = Path(path)
        if path.suffix not in (".csv", ".parquet"):
            raise ValueError(f"trajectory file must end in .csv or .parquet, got {path.name!r}")
        df = self.to_frame()
        # Atomic (temp file, then rename): a kill or a full disk (reported naming the file)
        # never leaves a truncated history.
        if path.suffix == ".csv":
            atomic_write(path, lambda fh: df.to_csv(fh, index=False))
        else:
            atomic_write(path, lambda fh: df.to_parquet(fh, index=False))
        return path

    def plot(self, ax=None, *, y: str | None = None, title: str | None = None):
        """The error curve on a log scale, each phase's start marked (e.g. the rebalancing
        switch); one curve per trajectory of a batch. Returns the matplotlib axes.

        ``y``: the history key to draw (default ``rel_error``, else ``error``, else
        ``residual_norm``); without ``ax`` a new figure is made through pyplot. See
        :func:`matsense.plots.plot_trajectory`.
        """
        from .plots import plot_trajectory

        return plot_trajectory(self, ax, y=y, title=title)

    def _repr_html_(self) -> str:
        """Jupyter's summary (:mod:`matsense.display`)."""
        from .display import batch_html, trajectory_html

        return batch_html(self) if self.batched else trajectory_html(self)


class Trajectory(_Result):
    """One trajectory of a run: the result of :func:`matsense.run` on unbatched factors,
    or ``batch[b]`` of a :class:`BatchTrajectory`.

    Attributes
    ----------
    factors : tuple
        Final factors, (F, G) or (X,), on the problem's backend, without batch
        axis. For a converged trajectory: the first iterate that met ``tol``;
        for a diverged one: the last finite iterate.
    status : Status
        ``converged`` (met tol), ``max_iters`` (ran all iterations),
        ``diverged`` or ``stopped`` (a callback ended the run); a ``str``.
    iterations : int
        Iteration index of the final factors.
    wall_time : float
        Seconds for the whole run (of the batch it was part of).
    history : dict of 1-d numpy arrays
        One entry per record of this trajectory: 'iteration', 'time',
        'residual_norm', 'loss', 'error', 'rel_error' (if M* known),
        'imbalance_drift' (F Gᵀ only), 'off_subspace' (if M* known),
        'singular_values' (n_records, k).
    extras : dict
        Method events, e.g. 'switch_iteration' (−1 if none), as Python scalars.
    config : dict
        Method name and hyper-parameters, and the run settings.
    """

    batched = False

    def __init__(self, record: RunRecord, index: int = 0):
        self._record = record
        self.index = int(index)

    def _indices(self) -> range:
        return range(self.index, self.index + 1)

    @property
    def batch_size(self) -> int:
        return 1

    @property
    def factors(self) -> tuple:
        return tuple(f[self.index] for f in self._record.factors)

    @property
    def status(self) -> Status:
        return self._record.status[self.index]

    @property
    def iterations(self) -> int:
        return int(self._record.iterations[self.index])

    @property
    def history(self) -> dict:
        rec, b = self._record, self.index
        rows = rec.recorded[:, b]
        return {
            key: (val[rows] if key in SHARED_KEYS else val[rows, b])
            for key, val in rec.history.items()
        }

    @property
    def extras(self) -> dict:
        return {key: val[self.index].item() for key, val in self._record.extras.items()}

    @property
    def phases(self) -> tuple:
        """The trajectory's phases (:class:`~matsense.methods.Phase`), as its method declared
        them from its extras: e.g. rebalanced GD's before and after the switch; the last one
        is the phase whose rate the CLI, sweeps and claims report."""
        return self._phases(self.index)

    @property
    def start_imbalance(self):
        """Δ₀ = F₀ᵀF₀ − G₀ᵀG₀ (k, k) of the start (None for X Xᵀ, or not recorded)."""
        delta0 = self._record.start_imbalance
        return None if delta0 is None else delta0[self.index]

    def __repr__(self) -> str:
        return (
            f"Trajectory(status={str(self.status)!r}, iterations={self.iterations}, "
            f"method={self.config.get('method')!r})"
        )


class BatchTrajectory(_Result):
    """The B trajectories of a batched run (factors with a leading batch axis).

    Attributes
    ----------
    factors : tuple
        Final factors with the batch axis first.
    status : numpy array (B,) of Status
    iterations : numpy int array (B,)
    wall_time : float
    history : dict of numpy arrays
        'iteration' and 'time' of shape (n_records,), every other key
        (n_records, B) ('singular_values' (n_records, B, k)), NaN where a
        trajectory was not recorded (it had stopped, or converged off the
        ``record_every`` grid).
    extras : dict of (B,) numpy arrays
    config : dict

    ``batch[b]`` is trajectory b as a :class:`Trajectory`; ``len(batch)`` is B
    and iterating gives the B trajectories.
    """

    batched = True

    def __init__(self, record: RunRecord):
        self._record = record

    def _indices(self) -> range:
        return range(self._record.batch_size)

    @property
    def batch_size(self) -> int:
        return self._record.batch_size

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, b: int) -> Trajectory:
        B = self.batch_size
        if not -B <= int(b) < B:
            raise IndexError(f"trajectory index {b} out of range for a batch of {B}")
        return Trajectory(self._record, int(b) % B)

    def __iter__(self):
        return (self[b] for b in range(self.batch_size))

    @property
    def factors(self) -> tuple:
        return self._record.factors

    @property
    def status(self) -> np.ndarray:
        return self._record.status

    @property
    def iterations(self) -> np.ndarray:
        return self._record.iterations

    @property
    def history(self) -> dict:
        return self._record.history

    @property
    def extras(self) -> dict:
        return self._record.extras

    @property
    def phases(self) -> list:
        """One tuple of :class:`~matsense.methods.Phase` per trajectory."""
        return [self._phases(b) for b in range(self.batch_size)]

    @property
    def start_imbalance(self):
        """Δ₀ = F₀ᵀF₀ − G₀ᵀG₀ (B, k, k) of the starts (None for X Xᵀ, or not recorded)."""
        return self._record.start_imbalance

    @classmethod
    def stack(cls, trajectories) -> BatchTrajectory:
        """One batch from separate single-trajectory results (e.g. runs made one at a time).

        Records are aligned on their iterations (the union of all of them);
        ``time`` is the latest elapsed time recorded at each iteration and
        ``wall_time`` the sum of the runs'.
        """
        trs = [t for t in trajectories]
        if not trs or any(not isinstance(t, Trajectory) for t in trs):
            raise ValueError("stack() needs a non-empty sequence of Trajectory objects")
        its = np.unique(np.concatenate([t.history["iteration"] for t in trs]))
        hist = {"iteration": its, "time": np.full(its.size, np.nan)}
        recorded = np.zeros((its.size, len(trs)), dtype=bool)
        for b, t in enumerate(trs):
            pos = np.searchsorted(its, t.history["iteration"])
            recorded[pos, b] = True
            hist["time"][pos] = np.fmax(hist["time"][pos], t.history["time"])
            for key, val in t.history.items():
                if key in SHARED_KEYS:
                    continue
                if key not in hist:
                    hist[key] = np.full((its.size, len(trs)) + val.shape[1:], np.nan)
                hist[key][pos, b] = val
        factors = tuple(
            np.stack([to_numpy(t.factors[i]) for t in trs]) for i in range(len(trs[0].factors))
        )
        extras = {k: np.array([t.extras[k] for t in trs]) for k in trs[0].extras}
        status = np.empty(len(trs), dtype=object)
        status[:] = [t.status for t in trs]
        starts = [t.start_imbalance for t in trs]
        record = RunRecord(
            factors,
            status,
            np.array([t.iterations for t in trs]),
            sum(t.wall_time for t in trs),
            hist,
            recorded,
            extras,
            dict(trs[0].config, batch=len(trs)),
            phases=tuple(t.phases for t in trs),
            start_imbalance=(
                None
                if any(d is None for d in starts) or len({d.shape for d in starts}) > 1
                else np.stack(starts)
            ),
        )
        return cls(record)

    def __repr__(self) -> str:
        counts = {str(s): int(np.sum(self.status == s)) for s in Status if np.any(self.status == s)}
        return f"BatchTrajectory(B={self.batch_size}, status={counts}, method={self.config.get('method')!r})"


def phase_dict(phase) -> dict:
    """A :class:`~matsense.methods.Phase` as plain data (name, start, end, event), for saved
    results."""
    return {"name": phase.name, "start": phase.start, "end": phase.end, "event": phase.event}


__all__ = ["phase_dict", "Trajectory", "BatchTrajectory", "RunRecord", "Status", "SCALAR_METRICS"]
