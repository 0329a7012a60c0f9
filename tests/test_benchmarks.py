"""The benchmark scripts run (tiny sizes) and their bookkeeping is right.

Speed itself is never asserted here (benchmarks/ measures it); these tests only make
sure the scripts the README points to keep working and compare what they claim to.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import matsense as ms
from matsense.init import small_random

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_reproduce  # noqa: E402


def _script(name, *args, timeout=300):
    proc = subprocess.run(
        [sys.executable, str(BENCH / name), *args], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_bench_iteration_tiny(tmp_path):
    out = tmp_path / "it.json"
    text = _script(
        "bench_iteration.py",
        "--sizes",
        "12",
        "--dtypes",
        "float64",
        "--batch",
        "4",
        "--quick",
        "--device",
        "cpu",
        "--no-driver",
        "--json",
        str(out),
    )
    assert "ratio" in text and "local" in text
    data = json.loads(out.read_text())
    assert data["machine"]["bandwidth_Bps"] > 0 and data["machine"]["gemm_flops"]["float64"] > 0
    (group,) = data["cpu"]
    impls = [row["impl"] for row in group["rows"]]
    assert any("one-pass" in i for i in impls) and any("two-pass" in i for i in impls)
    assert any("einsum" in i for i in impls) and any("B=4" in i for i in impls)
    for row in group["rows"]:
        assert row["time_s"] > 0 and row["floor_s"] > 0
        assert np.isclose(row["ratio"], row["time_s"] / row["floor_s"])
        # local bandwidth <= the best seen, so the local floor is higher and its ratio lower
        assert row["ratio_local"] <= row["ratio"] * (1 + 1e-12)


def test_bench_kernels_tiny(tmp_path):
    out = tmp_path / "kernels.json"
    text = _script("bench_kernels.py", "--tiny", "--json", str(out))
    assert "ms.run defaults" in text and "numba first call" in text
    data = json.loads(out.read_text())
    assert [(row["n"], row["B"]) for row in data["grid"]] == [(12, 1), (12, 2)]
    for row in data["grid"]:
        assert set(row["median_s"]) == {"numba", "numpy", "two-pass", "auto"}
        assert row["pick"] in ("numba", "two-pass")
        assert np.isclose(
            row["auto_over_two_pass"], row["median_s"]["auto"] / row["median_s"]["two-pass"]
        )
    run = data["run"]
    assert run["kernel"] in ("numba", "two-pass") and run["median_s"]["one_blas_pass"] > 0
    assert np.isclose(
        run["run_default_over_blas"],
        run["median_s"]["run_default"] / run["median_s"]["one_blas_pass"],
    )
    assert data["numba_first_call"]["cold_s"] > 0 and data["numba_first_call"]["warm_s"] > 0


def test_bench_methods_tiny(tmp_path):
    out = tmp_path / "m.json"
    _script(
        "bench_methods.py",
        "--n",
        "12",
        "--r",
        "2",
        "--iters",
        "2",
        "--repeats",
        "1",
        "--out",
        str(out),
    )
    data = json.loads(out.read_text())
    rows = {row["method"]: row for row in data["rows"]}
    assert "operator pass (𝒜 and 𝒜*)" in rows and len(rows) >= 5
    assert all(row["ms_per_iter"] > 0 and row["passes_per_iter"] >= 1 for row in rows.values())


def test_baseline_stacks_single_runs_like_a_batch():
    """The baseline of bench_reproduce runs trajectories one by one and stacks them: the
    stacked result has the batched layout and the same numbers as the batched run."""
    p = ms.Problem.gaussian(10, r=2, m=150, singular_values=[1.0, 0.5], seed=0)
    F, G = small_random(p, 3, [0.1, 0.03], seed=[1, 1])
    batched = ms.run(p, ms.GD(0.3), (F, G), 300, tol=1e-6, record_every=7)
    singles = [ms.run(p, ms.GD(0.3), (F[b], G[b]), 300, tol=1e-6, record_every=7) for b in range(2)]
    stacked = bench_reproduce._stack_trajectories(singles)
    assert stacked.batched and list(stacked.status) == list(batched.status)
    assert list(stacked.iterations) == list(batched.iterations)
    assert np.array_equal(stacked.history["iteration"], batched.history["iteration"])
    for key, val in batched.history.items():
        if key in ("iteration", "time"):
            continue
        assert stacked.history[key].shape == val.shape, key
        np.testing.assert_allclose(stacked.history[key], val, rtol=1e-8, atol=1e-14)
    for a, b in zip(stacked.factors, batched.factors):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-14)


def test_same_results_lists_what_differs():
    def rec(holds, details):
        return {"claims": {"C1": {"holds": holds, "details": details}}}

    a = rec(True, {"rate": 0.1, "records": [{"err": 1e-16}, {"ratio": 2.0e12}], "name": "x"})
    b = rec(
        True,
        {"rate": 0.1 * (1 + 1e-9), "records": [{"err": 3e-16}, {"ratio": 2.2e12}], "name": "y"},
    )
    cmp = bench_reproduce.same_results(a, b)
    assert cmp["same_verdicts"] and cmp["numbers_compared"] == 3
    assert [d["number"] for d in cmp["differ"]] == ["C1.records[1].ratio"]
    assert not bench_reproduce.same_results(a, rec(False, a["claims"]["C1"]["details"]))[
        "same_verdicts"
    ]


def test_bench_sweep_tiny(tmp_path):
    out = tmp_path / "s.json"
    text = _script(
        "bench_sweep.py", "--runs", "100", "--dask-runs", "100", "--iters", "20", "--json", str(out)
    )
    assert "100 runs in" in text and "results bitwise equal: True" in text
    assert out.exists() and json.loads(out.read_text())


def test_bench_ensembles_tiny(tmp_path):
    out = tmp_path / "e.json"
    text = _script(
        "bench_ensembles.py", "--quick", "--converge-budget", "30", "--json", str(out), timeout=900
    )
    assert "rank-one GD step / its four GEMMs" in text
    data = json.loads(out.read_text())
    for case in ("rank-one", "completion", "gaussian"):
        assert "error" not in data[case], data[case]
    ro = data["rank-one"]
    assert ro["times"]["gemms"]["min"] > 0 and ro["times"]["gd_step"]["min"] > 0
    assert np.isclose(
        ro["step_over_gemms"], ro["times"]["gd_step"]["min"] / ro["times"]["gemms"]["min"]
    )
    assert ro["ab_bytes"] == 2 * ro["m"] * ro["n"] * 8
    co = data["completion"]
    assert co["data_bytes"] == co["m"] * (4 + 4 + 8) and co["step"]["min"] > 0  # int32 indices
    ck = data["completion-kernel"]
    assert "error" not in ck, ck
    assert ck["threads_bitwise_equal"] and ck["scipy_max_rel_diff"] <= 1e-12
    assert ck["stream_bytes"] == ck["m"] * 16 and ck["stream_int64_bytes"] == ck["m"] * 24
    for key in ("stream", "kernel_1t", "kernel_2t", "gd_step_1t", "scipy_sparse"):
        assert ck["times"][key]["min"] > 0
        assert np.isclose(
            ck["over_stream"][key], ck["times"][key]["min"] / ck["times"]["stream"]["min"]
        )
    (cv,) = data["converge"]
    assert cv["status"] == "converged" and cv["final_rel_error"] <= 1e-6
    for B in (1, 8):
        assert data["gaussian"][f"B{B}"]["max_rel_diff"] <= 1e-12
    assert len(data["verdicts"]) >= 7


def test_fuzz_reliability_smoke(tmp_path):
    """Ten cases of the reliability fuzz campaign (API, CLI, store), all clean, none leaking."""
    ids = [
        "api:run:method-class",
        "api:run:problem-None",
        "api:init:alpha-1j",
        "api:gaussian:symmetric='no'",
        "api:dtype:A=np.float16",
        "api:diverge:step-1e10",
        "cli:run:out-through-file",
        "cli:run:n1-100-m-1e5",
        "cli:sweep:out-file",
        "store:truncate-history:resume",
    ]
    pattern = "^(" + "|".join(i.replace("(", r"\(").replace(")", r"\)") for i in ids) + ")$"
    out = tmp_path / "fuzz.json"
    text = _script(
        "fuzz_reliability.py", "--only", pattern, "--json", str(out), "--strict", timeout=600
    )
    data = json.loads(out.read_text())
    assert sorted(r["id"] for r in data["results"]) == sorted(ids), text
    assert data["counts"]["clean"] == len(ids), text
    assert data["leaked"] == 0
