"""The history of a run: which quantities are recorded (:data:`RECORDABLE`) and the
:class:`Recorder` that measures and collects its rows.

A row is measured by one public call, :meth:`Recorder.row`; whether the numbers
come from one compiled call (:func:`~matsense.diagnostics.row_stats`, NumPy
float64 factors) or from separate array calls (any backend) is the recorder's
private business.
"""

from __future__ import annotations

import numpy as np

from .. import backend, diagnostics
from .batch import Batch
from .stopping import scale

#: History quantities ``run(record=...)`` can select; 'iteration', 'time' and
#: 'residual_norm' are always recorded.
RECORDABLE = ("loss", "error", "rel_error", "off_subspace", "imbalance_drift", "singular_values")


def record_selection(record) -> frozenset:
    if record is None:
        return frozenset(RECORDABLE)
    if isinstance(record, str):
        record = [record]
    try:
        chosen = frozenset(record)
    except TypeError:
        raise ValueError(
            f"record must be a list of names from {', '.join(RECORDABLE)}, got {record!r}"
        ) from None
    unknown = sorted(str(x) for x in chosen - set(RECORDABLE) - {"residual_norm"})
    if unknown:
        raise ValueError(
            f"record: unknown quantities {unknown}; choose from "
            f"{', '.join(RECORDABLE)} (iteration, time and residual_norm are "
            "always recorded)"
        )
    return chosen


class Recorder:
    """Measures and collects history rows; each row is one iteration, NaN for trajectories
    not recorded.

    A row keeps the residual norms and one (B, 3 [+ k]) array of the other base
    quantities (columns :data:`~matsense.diagnostics.ROW_COLUMNS`, then σ(P) when recorded);
    loss, relative error and the NaN of trajectories not recorded are applied
    once, in :meth:`history`. Everything is computed from the factors and k×k
    (or (k + r)×k) matrices (:class:`~matsense.diagnostics.Truth`), never an
    n1 × n2 product when M* is known as factors; for NumPy float64 factors in
    one compiled call per row (:func:`~matsense.diagnostics.row_stats`): inside
    a run every separate NumPy call pays cold caches after the operator pass.
    """

    def __init__(self, truth, factors, record_every: int, iters: int, record):
        self.every = record_every
        self.iters = iters
        self.want = record_selection(record)
        self.symmetric = len(factors) == 1
        self.truth = truth
        self.off = truth is not None and truth.U is not None and "off_subspace" in self.want
        self.sv = "singular_values" in self.want
        self.width = len(diagnostics.ROW_COLUMNS) + (factors[0].shape[-1] if self.sv else 0)
        self.Delta0 = None
        if not self.symmetric and "imbalance_drift" in self.want:
            # Δ₀ by the code that will compute Δ_t (so that the drift at t = 0 is exactly 0):
            # the compiled kernel where rows use it (see _compiled), else NumPy.
            got = diagnostics.row_stats(factors, delta=True)
            self.Delta0 = got[1] if got is not None else diagnostics.imbalance(*factors)
        self.iteration: list = []
        self.time: list = []
        self.rn: list = []
        self.stats: list = []
        self.masks: list = []

    def on_grid(self, t: int) -> bool:
        return t % self.every == 0 or t == self.iters

    def row(self, fac, rnorm, batch: Batch, need_err: bool, full: bool):
        """(rn, err, stats) of iterate ``fac`` over the original B trajectories.

        rn = ‖r‖ from ``rnorm`` (None: not asked, returned as None); err = ‖P − M*‖_F
        when ``need_err`` and M* is known, else None; stats the row's (B, 3 [+ k])
        quantities when ``full``, else None (err is their column 0).
        """
        need_err = need_err and self.truth is not None
        if not (need_err or full):
            return self._rn(rnorm, batch), None, None
        stats = None
        if isinstance(fac[0], np.ndarray):
            stats = self._compiled(fac, batch, need_err, full)
        if stats is None:  # NumPy calls, or another backend
            stats = np.full((fac[0].shape[0], self.width if full else 1), np.nan)
            if need_err and rnorm is not None:
                # One device→host copy for both norms: one GPU sync per iteration, not two.
                xp = backend.namespace(rnorm)
                rnorm, stats[:, 0] = backend.to_numpy(xp.stack([rnorm, self.truth.error(fac)]))
            elif need_err:
                stats[:, 0] = backend.to_numpy(self.truth.error(fac))
            if full:
                self._numpy(fac, batch, stats)
        stats = batch.scatter(stats)
        return (self._rn(rnorm, batch), stats[:, 0] if need_err else None, stats if full else None)

    @staticmethod
    def _rn(rnorm, batch):
        return None if rnorm is None else batch.scatter(backend.to_numpy(rnorm).astype(float))

    def _delta0(self, batch: Batch):
        """Δ₀ of the batch's rows."""
        Delta0 = self.Delta0
        if Delta0 is not None and batch.rows.size < Delta0.shape[0]:
            xp = backend.namespace(Delta0)
            Delta0 = xp.take(
                Delta0, xp.asarray(batch.rows, device=backend.device_of(Delta0)), axis=0
            )
        return Delta0

    def _compiled(self, fac, batch, need_err: bool, full: bool):
        """The row in one compiled call (diagnostics.row_stats), or None where it does not apply."""
        truth = self.truth
        dense = need_err and not truth.factored
        off = full and self.off
        got = diagnostics.row_stats(
            fac,
            M_star=truth.dense if dense else None,
            U=truth.U if off else None,
            V=truth.V if off else None,
            Delta0=self._delta0(batch) if full else None,
            singular_values=full and self.sv,
        )
        if got is None:
            return None
        stats = got[0]
        if need_err and not dense:  # M* known as factors: the QR formula (O((n1 + n2)(k + r)²))
            stats[:, 0] = self.truth.error(fac)
        return stats

    def _numpy(self, fac, batch, stats):
        """Columns 1: of the row by NumPy (or the factors' backend) calls."""
        if self.off:
            stats[:, 1] = backend.to_numpy(self.truth.off_subspace(fac))
        if self.Delta0 is not None:
            stats[:, 2] = backend.to_numpy(diagnostics.imbalance_drift(*fac, self._delta0(batch)))
        if self.sv:
            stats[:, 3:] = backend.to_numpy(diagnostics.product_singular_values(fac))

    def _add(self, t, elapsed, rn, stats, mask):
        """Record iteration t for the trajectories ``mask`` (rn, stats from :meth:`row`)."""
        self.iteration.append(t)
        self.time.append(elapsed)
        self.rn.append(rn)
        self.stats.append(stats)
        self.masks.append(mask.copy())

    def history(self) -> tuple[dict, np.ndarray]:
        masks = np.asarray(self.masks, dtype=bool)
        if not self.iteration:
            return {}, masks
        nan = np.where(masks, 1.0, np.nan)
        rn, stats = np.asarray(self.rn), np.asarray(self.stats)
        rows = {
            "iteration": np.asarray(self.iteration),
            "time": np.asarray(self.time),
            "residual_norm": rn * nan,
        }
        want = self.want
        if "loss" in want:
            rows["loss"] = diagnostics.loss(rn, self.symmetric) * nan
        if self.truth is not None:
            if "error" in want:
                rows["error"] = stats[..., 0] * nan
            if "rel_error" in want:
                rows["rel_error"] = stats[..., 0] / scale(self.truth.norm) * nan
            if self.off:
                rows["off_subspace"] = stats[..., 1] * nan
        if self.Delta0 is not None:
            rows["imbalance_drift"] = stats[..., 2] * nan
        if self.sv:
            rows["singular_values"] = stats[..., 3:] * nan[..., None]
        return rows, masks

    def keep(self, elapsed, t, batch: Batch, fac, rn, stats, active, done, stop) -> None:
        """Record iterate t for the active trajectories on the grid, converging (``done``), or
        stopped now (``stop``); ``stats`` None: measured here (off the grid)."""
        on_grid = self.on_grid(t) or stop
        if done is None and not on_grid:
            return
        mask = active & (on_grid | done) if done is not None else active & on_grid
        if mask.any():
            if stats is None:  # off the grid: a trajectory converged or the callback stopped
                stats = self.row(fac, None, batch, True, True)[2]
            self._add(t, elapsed, rn, stats, mask)


__all__ = ["RECORDABLE", "Recorder", "record_selection"]
