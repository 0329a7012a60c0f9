"""A damaged results store is noticed, repaired on resume and reported by ``--verify``.

Each test damages a copy of one small store the way a user, a full disk or a bad copy
would (a history part truncated, overwritten, flipped, deleted; a runs part made
unreadable; a store written before ``history_rows`` existed), then checks that ``load``
says so, that resuming re-runs exactly the damaged runs, moves unreadable files to
``quarantine/`` (never deleting them), and ends equal to a store written without damage.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from matsense.cli import main
from matsense.sweep import load, load_spec, run_sweep
from matsense.sweep import runner as sweep_runner
from matsense.sweep import store as store_module
from matsense.sweep.store import Store
from test_sweep_store import assert_same, comparable  # tests/ is on sys.path under pytest

# k = 20 > n1 fails at initialization: those batches have no history part at all.
SPEC = {
    "sweep": {"name": "repair", "max_batch": 2, "rate_window": [1e-2, 1e-8]},
    "base": {
        "n1": 8,
        "r": 2,
        "m": 120,
        "singular_values": [1.0, 0.5],
        "method": "gd",
        "step_size": 0.3,
        "iters": 150,
        "record_every": 5,
    },
    "grid": {"k": [2, 20], "alpha": [0.1, 0.05], "init_seed": [0, 1]},
}
N_RUNS = 8
N_FAILED = 4


def verify(out_dir):
    # Looked up at call time, so that this file fails test by test, not at import, on a
    # matsense without verify().
    return store_module.verify(out_dir)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    out = tmp_path_factory.mktemp("repair") / "store"
    summary = run_sweep(SPEC, out, workers=0, progress="off")
    assert summary.complete and summary.failed == N_FAILED
    return out, comparable(out)


@pytest.fixture
def store(pristine, tmp_path):
    out = tmp_path / "store"
    shutil.copytree(pristine[0], out)
    return out


def history_parts(out) -> list[Path]:
    return sorted((out / "history").glob("part-*.parquet"))


def runs_of(out, part: Path) -> set:
    return set(pd.read_parquet(out / "runs" / part.name)["run_id"])


def resume(out):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run_sweep(SPEC, out, workers=0, progress="off")
    return summary, [str(w.message) for w in caught]


def check_load_leaves_out(out, victims: set):
    """load() warns and returns neither a runs row nor history rows of the damaged runs."""
    with pytest.warns(UserWarning, match=r"missing or damaged|unreadable part"):
        runs, hist = load(out)
    assert set(runs["run_id"]).isdisjoint(victims)
    assert len(runs) == N_RUNS - len(victims)
    assert set(hist["run_id"]).isdisjoint(victims)
    with pytest.warns(UserWarning):
        runs_only, _ = load(out, history=False)
    assert set(runs_only["run_id"]).isdisjoint(victims)


def check_repaired(out, pristine_frames, victims: set, summary, *, quarantined: int):
    assert summary.repaired == len(victims) and summary.ran == len(victims)
    assert summary.skipped == N_RUNS - len(victims) and summary.quarantined == quarantined
    assert summary.complete
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing left to warn about
        assert_same(comparable(out), pristine_frames)
        report = verify(out)
    assert report.healthy and len(report.finished) == N_RUNS
    assert len(report.quarantined) == quarantined


def test_every_run_row_records_its_history_rows(pristine):
    out, _ = pristine
    runs, hist = load(out)
    counts = hist.groupby("run_id").size()
    for _, row in runs.iterrows():
        assert row["history_rows"] == counts.get(row["run_id"], 0)
    assert (runs.loc[runs["status"] == "failed", "history_rows"] == 0).all()
    report = verify(out)
    assert report.healthy and report.runs == N_RUNS and not report.damaged
    assert report.history_parts == len(history_parts(out)) == 2


def test_truncated_history_part_is_quarantined_and_its_runs_rerun(store, pristine):
    victim = history_parts(store)[0]
    victims = runs_of(store, victim)
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    check_load_leaves_out(store, victims)
    summary, warned = resume(store)
    assert any("quarantine" in w and victim.name in w for w in warned)
    moved = store / "quarantine" / "history" / victim.name
    assert moved.read_bytes() == data[: len(data) // 2]  # kept, not deleted
    assert victim.name in (store / "quarantine" / "log.txt").read_text()
    check_repaired(store, pristine[1], victims, summary, quarantined=1)


def test_history_part_overwritten_by_another_part_is_rerun(store, pristine):
    victim, other = history_parts(store)
    victims = runs_of(store, victim)
    shutil.copyfile(other, victim)  # readable Parquet, but another batch's rows
    report = verify(store)
    assert not report.healthy and set(report.damaged) == victims
    assert [p.name for p, _ in report.mismatched] == [victim.name]
    check_load_leaves_out(store, victims)
    summary, _ = resume(store)
    check_repaired(store, pristine[1], victims, summary, quarantined=1)


def test_history_part_with_a_flipped_byte_fails_its_checksum(store, pristine):
    victim = history_parts(store)[1]
    victims = runs_of(store, victim)
    data = bytearray(victim.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside a data page: the page checksum catches it
    victim.write_bytes(bytes(data))
    report = verify(store)
    assert set(report.damaged) == victims and [p.name for p, _ in report.unreadable] == [
        victim.name
    ]
    summary, _ = resume(store)
    check_repaired(store, pristine[1], victims, summary, quarantined=1)


def test_deleted_history_part_is_noticed_and_rerun(store, pristine):
    victim = history_parts(store)[0]
    victims = runs_of(store, victim)
    victim.unlink()
    report = verify(store)
    assert report.missing == [victim.name] and set(report.damaged) == victims
    check_load_leaves_out(store, victims)
    summary, _ = resume(store)
    check_repaired(store, pristine[1], victims, summary, quarantined=0)


def test_unreadable_runs_part_is_quarantined_with_its_history(store, pristine):
    victim = history_parts(store)[0]
    runs_part = store / "runs" / victim.name
    victims = runs_of(store, victim)
    runs_part.write_bytes(b"PAR1 this is not a parquet file PAR1")
    with pytest.warns(UserWarning, match="unreadable part"):
        runs, _ = load(store)
    assert set(runs["run_id"]).isdisjoint(victims)
    summary, warned = resume(store)
    assert (store / "quarantine" / "runs" / victim.name).exists()
    assert (store / "quarantine" / "history" / victim.name).exists()
    assert not runs_part.exists() and not victim.exists()
    assert any("runs/" + victim.name in w for w in warned)
    assert summary.ran == len(victims) and summary.skipped == N_RUNS - len(victims)
    assert_same(comparable(store), pristine[1])
    assert verify(store).healthy


def test_part_numbers_beyond_eight_digits_are_read_in_numeric_order(tmp_path, monkeypatch):
    class FarStore(Store):
        """A store whose sequence counter starts just below 10**8 (as after 10**8 batches)."""

        def __init__(self, root, **kw):
            super().__init__(root, **kw)
            self._seq = max(self._seq, 10**8 - 2)

    monkeypatch.setattr(sweep_runner, "Store", FarStore)
    out = tmp_path / "far"
    first = run_sweep(SPEC, out, workers=0, progress="off")
    names = sorted(p.name for p in (out / "runs").glob("part-*.parquet"))
    assert any(n.startswith("part-100000000-") for n in names), names
    assert any(n.startswith("part-99999999-") for n in names), names
    runs, hist = load(out)
    assert len(runs) == N_RUNS and first.complete
    assert set(hist["run_id"]) == set(runs.loc[runs["status"] != "failed", "run_id"])
    # resume sees every part (none re-run) ...
    assert run_sweep(SPEC, out, workers=0, progress="off").skipped == N_RUNS
    # ... and the newest part wins: retried failures land in parts numbered past 10**8,
    # which sort before 99999999 as text but after it by value.
    again = run_sweep(SPEC, out, workers=0, progress="off", retry_failed=True)
    assert again.failed == N_FAILED
    runs, _ = load(out)
    failed_parts = runs.loc[runs["status"] == "failed", "part"]
    assert len(runs) == N_RUNS and runs["run_id"].is_unique
    assert all(int(p.split("-")[1]) > 10**8 for p in failed_parts), list(failed_parts)
    assert verify(out).healthy


def test_store_written_before_history_rows_existed(store, pristine):
    """Old parts lack ``history_rows``: they load, and a weaker check still finds lost history."""
    for part in (store / "runs").glob("part-*.parquet"):
        table = pq.read_table(part)
        pq.write_table(table.drop_columns(["history_rows"]), part)  # no page checksums either
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs, _ = load(store)
    assert len(runs) == N_RUNS and "history_rows" not in runs
    assert verify(store).healthy
    victim = history_parts(store)[1]
    victims = runs_of(store, victim)
    victim.unlink()
    report = verify(store)
    assert set(report.damaged) == victims  # finished runs must have >= 1 history row
    summary, _ = resume(store)
    assert summary.repaired == len(victims) and summary.skipped == N_RUNS - len(victims)
    runs, hist = load(store)
    assert len(runs) == N_RUNS and set(hist["run_id"]) >= victims
    assert verify(store).healthy


def test_verify_command_reports_and_exits_nonzero_when_damaged(store, capsys):
    assert main(["sweep", "--verify", str(store)]) == 0
    out = capsys.readouterr().out
    assert "healthy" in out and f"{N_RUNS} runs: {N_RUNS} with intact history" in out
    victim = history_parts(store)[0]
    victims = runs_of(store, victim)
    victim.write_bytes(b"garbage")
    (store / "history" / "part-00000077-abcdef.parquet").write_bytes(
        history_parts(store)[1].read_bytes()
    )  # no runs part
    before = sorted(str(p) for p in store.rglob("*"))
    assert main(["sweep", "--verify", str(store)]) == 1
    out = capsys.readouterr().out
    assert "NOT healthy" in out and f"{len(victims)} with missing or damaged history" in out
    assert f"unreadable: history/{victim.name}" in out
    assert "uncommitted (no readable runs part): history/part-00000077-abcdef.parquet" in out
    assert all(rid in out for rid in victims)
    assert sorted(str(p) for p in store.rglob("*")) == before  # verify moves nothing
    resume(store)
    assert main(["sweep", "--verify", str(store)]) == 0
    out = capsys.readouterr().out
    assert "quarantine/ holds 2 file(s)" in out
    # usage errors: one line, exit 2
    assert main(["sweep", "--verify", str(store / "nope")]) == 2
    assert main(["sweep", "spec.toml", "--verify", str(store)]) == 2
    assert main(["sweep"]) == 2
    err = capsys.readouterr().err
    assert "not a directory" in err and "without SPEC" in err and "needs a SPEC" in err


def test_verify_refuses_while_a_sweep_writes(store):
    with Store(store).lock():
        with pytest.raises(ValueError, match="a sweep is writing"):
            verify(store)


def test_spec_runs_match_the_store(pristine):
    assert {c.run_id() for c in load_spec(SPEC).configs} == set(load(pristine[0]).runs["run_id"])
