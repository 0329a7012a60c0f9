"""Sweeps on Dask distributed: a loopback LocalCluster, equality with the local executor,
and a worker killed mid-sweep."""

# No ``from __future__ import annotations`` here: the dataclass below is rebuilt by value
# on Dask workers, where string annotations could not be resolved against this module.
import os
import signal
import sys
from dataclasses import dataclass

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from matsense.methods import METHODS  # noqa: E402
from matsense.sweep import load, load_spec, run_sweep  # noqa: E402
from matsense.sweep.executors import DaskExecutor  # noqa: E402

RUN_VOLATILE = [
    "part",
    "batch_id",
    "batch_size",
    "wall_time",
    "batch_wall_time",
    "host",
    "finished_at",
]

# Big enough (m·n² = 400·20²) that a batched product would change the last bits.
SPEC = {
    "sweep": {"name": "dask", "max_batch": 3},
    "base": {
        "n1": 20,
        "r": 2,
        "m": 400,
        "singular_values": [1.0, 0.5],
        "method": "gd",
        "step_size": 0.3,
        "iters": 120,
        "record_every": 4,
    },
    "grid": {"k": [2, 4], "alpha": [0.1, 0.05, 9.0], "init_seed": [0, 1]},
}


def comparable(out_dir):
    runs, hist = load(out_dir)
    runs = runs.drop(columns=[c for c in RUN_VOLATILE if c in runs]).sort_values("run_id")
    hist = hist.drop(columns=["part", "time"]).sort_values(["run_id", "iteration"])
    return runs.reset_index(drop=True), hist.reset_index(drop=True)


def test_local_cluster_on_loopback_matches_local_executor(tmp_path):
    local = run_sweep(SPEC, tmp_path / "local", executor="local", workers=1, progress="off")
    dask = run_sweep(SPEC, tmp_path / "dask", executor="dask", workers=2, progress="off")
    assert local.complete and dask.complete and dask.diverged == local.diverged == 4
    assert "127.0.0.1" in dask.executor
    a, b = comparable(tmp_path / "local"), comparable(tmp_path / "dask")
    assert len(a[0]) == len(load_spec(SPEC))
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    pd.testing.assert_frame_equal(a[1], b[1], check_exact=True)


def test_local_cluster_listens_on_loopback_only():
    with DaskExecutor(workers=1) as ex:
        assert ex.cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        workers = ex.client.scheduler_info()["workers"]
        assert workers and all(addr.startswith("tcp://127.0.0.1:") for addr in workers)


# ------------------------------------------------------- a worker that dies
def install_killer(marker: str):
    """Register 'killer_gd': GD whose first step anywhere SIGKILLs its own process.

    The marker file makes it happen once: the retried batch then runs plain GD.
    """
    # Imported here, not at module level: this function is shipped by value, and a global
    # METHODS would arrive as a copy instead of the workers' own registry.
    from matsense.methods import GD, METHODS

    @dataclass(frozen=True)
    class KillerGD(GD):
        name: str = "killer_gd"

        def step(self, problem, state):
            if not os.path.exists(marker):
                with open(marker, "w") as fh:
                    fh.write(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            return GD.step(self, problem, state)

    METHODS["killer_gd"] = KillerGD
    return KillerGD


class KillerPlugin(distributed.WorkerPlugin):
    name = "matsense-test-killer"

    def __init__(self, marker: str):
        self.marker = marker

    def setup(self, worker):  # runs on every worker, including restarted ones
        install_killer(self.marker)


def test_worker_killed_mid_sweep_is_retried_and_nothing_is_lost(tmp_path, monkeypatch):
    import cloudpickle

    # Ship this module's helpers by value: the workers cannot import the test module.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setitem(METHODS, "killer_gd", None)  # restored afterwards
    install_killer(str(tmp_path / "never-used-here"))  # the client validates the method name
    marker = tmp_path / "killed"
    spec = {
        "base": {
            "n1": 10,
            "m": 200,
            "singular_values": [1.0, 0.5],
            "method": "killer_gd",
            "iters": 200,
            "k": 3,
        },
        "grid": {"alpha": [0.1, 0.05], "init_seed": [0, 1, 2, 3]},
        "sweep": {"max_batch": 2},
    }
    try:
        with distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster:
            with distributed.Client(cluster) as client:
                client.register_plugin(KillerPlugin(str(marker)))
                summary = run_sweep(
                    spec,
                    tmp_path / "store",
                    executor="dask",
                    scheduler=cluster.scheduler_address,
                    progress="off",
                )
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert marker.exists()  # a worker did die mid-sweep
    assert int(marker.read_text()) != os.getpid()
    assert summary.complete and summary.failed == 0 and summary.lost == 0
    runs, hist = load(tmp_path / "store")
    assert len(runs) == 8 and runs["run_id"].is_unique
    assert set(runs["status"]) <= {"converged", "max_iters"}
    assert not hist.duplicated(["run_id", "iteration"]).any()
    assert (hist.groupby("run_id").size() == runs.set_index("run_id")["iterations"] + 1).all()
    # the retried batch computed the same numbers as plain GD
    plain = dict(spec, base=dict(spec["base"], method="gd"))
    run_sweep(plain, tmp_path / "plain", workers=0, progress="off")
    _, ref = load(tmp_path / "plain")
    metrics = ["alpha", "init_seed", "iteration", "residual_norm", "error", "sv_1"]
    key = ["alpha", "init_seed", "iteration"]
    pd.testing.assert_frame_equal(
        hist[metrics].sort_values(key).reset_index(drop=True),
        ref[metrics].sort_values(key).reset_index(drop=True),
        check_exact=True,
    )


def test_fast_mode_gives_the_same_bits_for_any_worker_count(tmp_path):
    """exact=False: a run's last bits depend on its batch, so batches must not depend on workers."""
    from matsense.sweep import plan_batches

    configs = load_spec(SPEC).configs  # exact mode would split differently for 2 workers:
    assert len(plan_batches(configs, max_batch=128, workers=1)) != len(
        plan_batches(configs, max_batch=128, workers=2)
    )
    a = run_sweep(SPEC, tmp_path / "w1", workers=1, progress="off", exact=False, max_batch=128)
    b = run_sweep(SPEC, tmp_path / "w2", workers=2, progress="off", exact=False, max_batch=128)
    assert a.complete and b.complete and a.batches == b.batches
    x, y = comparable(tmp_path / "w1"), comparable(tmp_path / "w2")
    pd.testing.assert_frame_equal(x[0], y[0], check_exact=True)
    pd.testing.assert_frame_equal(x[1], y[1], check_exact=True)
