"""The result of a run: plain data, never a live object."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SCALAR_METRICS = ("time", "residual_norm", "loss", "error", "rel_error",
                  "imbalance_drift", "off_subspace")


@dataclass
class Trajectory:
    """Outcome of :func:`matsense.run`.

    For a run started from unbatched factors (F0 of shape (n1, k)) everything is
    per single trajectory: ``status`` is a str, ``history[name]`` 1-d. For a
    batched run (leading axis B) ``status`` has shape (B,), ``history[name]``
    shape (n_records, B) — NaN where a trajectory was not recorded (it had
    stopped, or converged off the ``record_every`` grid).

    Attributes
    ----------
    factors : tuple
        Final factors, (F, G) or (X,), on the problem's backend. For a
        converged trajectory: the first iterate that met ``tol``; for a
        diverged one: the last finite iterate.
    status : str or array of str
        'converged' (met tol), 'max_iters' (ran all iterations), 'diverged',
        or 'stopped' (a callback ended the run).
    iterations : int or array
        Iteration index of the final factors.
    wall_time : float
        Seconds for the whole run.
    history : dict of numpy arrays
        'iteration' (n_records,), and per record: 'time', 'residual_norm',
        'loss', 'error', 'rel_error' (if M* known), 'imbalance_drift' (F Gᵀ
        only), 'off_subspace' (if M* known), 'singular_values' (…, k).
    extras : dict
        Method events per trajectory, e.g. 'switch_iteration' (−1 if none).
    config : dict
        Method name and hyper-parameters, and the run settings.
    """

    factors: tuple
    status: object
    iterations: object
    wall_time: float
    history: dict
    extras: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    batched: bool = False

    @property
    def batch_size(self) -> int:
        return int(np.size(self.status)) if self.batched else 1

    def _batched_history(self) -> dict:
        if self.batched:
            return self.history
        out = {"iteration": self.history["iteration"]}
        for key, val in self.history.items():
            if key != "iteration":
                out[key] = val[:, None] if key != "singular_values" else val[:, None, :]
        return out

    def to_frame(self):
        """Long-format pandas DataFrame: one row per trajectory per recorded iteration."""
        import pandas as pd

        h = self._batched_history()
        it = h["iteration"]
        frames = []
        for b in range(self.batch_size):
            cols = {"trajectory": b, "iteration": it}
            for key in SCALAR_METRICS:
                if key in h:
                    cols[key] = h[key] if h[key].ndim == 1 else h[key][:, b]  # 'time' is shared
            if "singular_values" in h:
                for j in range(h["singular_values"].shape[-1]):
                    cols[f"sv_{j + 1}"] = h["singular_values"][:, b, j]
            df = pd.DataFrame(cols)
            frames.append(df[np.isfinite(df["residual_norm"].to_numpy())])
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> list[dict]:
        """One dict per trajectory: status, iterations, final metrics."""
        status = np.atleast_1d(self.status)
        iters = np.atleast_1d(self.iterations)
        df = self.to_frame()
        rows = []
        for b in range(self.batch_size):
            last = df[df["trajectory"] == b].iloc[-1]
            row = {"trajectory": b, "status": str(status[b]), "iterations": int(iters[b])}
            for key in ("error", "rel_error", "residual_norm", "loss"):
                if key in last:
                    row[f"final_{key}"] = float(last[key])
            for key, val in self.extras.items():
                row[key] = np.atleast_1d(val)[b].item()
            rows.append(row)
        return rows

    def save(self, path) -> Path:
        """Write the history to ``path`` (.csv or .parquet), by its suffix."""
        path = Path(path)
        df = self.to_frame()
        if path.suffix == ".csv":
            df.to_csv(path, index=False)
        elif path.suffix == ".parquet":
            df.to_parquet(path, index=False)
        else:
            raise ValueError(f"trajectory file must end in .csv or .parquet, got {path.name!r}")
        return path
