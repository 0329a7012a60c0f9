"""SubGM, ScaledSM and the trimmed spectral start (issue #22 part 3)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import matsense as ms
from matsense.init import small_random, spectral, spectral_trimmed, symmetric_random
from matsense.losses import Loss
from matsense.methods import METHODS, ScaledSM, SubGM, get_method


def _problem(**kw):
    base = dict(r=2, m=600, seed=0, outlier_fraction=0.1)
    base.update(kw)
    return ms.Problem.generate("gaussian", 20, **base)


def test_registered_with_their_parameters():
    assert METHODS["subgm"] is SubGM and METHODS["scaledsm"] is ScaledSM
    m = get_method("subgm", loss="huber", schedule="diminishing", step_size=0.2)
    assert m.params()["schedule"] == "diminishing" and ScaledSM().schedule == "polyak"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(schedule="cosine"),
            (
                r"schedule must be one of constant, geometric, diminishing, "
                r"polyak, got 'cosine'"
            ),
        ),
        (dict(loss="l0"), r"loss must be one of l2, l1, huber, got 'l0'"),
        (dict(decay=1.5), r"decay must be in \(0, 1\], got 1.5"),
        (dict(step_size=-1), r"step_size must be a finite number > 0, got -1"),
    ],
)
def test_bad_values_are_one_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_method("subgm", **kwargs)


def test_subgm_recovers_under_outliers_on_both_parameterizations():
    p = _problem(symmetric=True)
    F0, G0 = small_random(p, 2, 1e-3, seed=0)
    tr = ms.run(p, SubGM(step_size=0.5, decay=0.97), (F0, G0), iters=700)
    assert tr.history["rel_error"][-1] <= 1e-8
    X0 = symmetric_random(p, 2, 1e-3, seed=0)
    tr = ms.run(p, SubGM(step_size=1.0, decay=0.97), X0, iters=700)
    assert tr.history["rel_error"][-1] <= 1e-8
    f_star = tr.extras["f_star"]
    assert f_star == pytest.approx(p.meta["l1_at_truth"], rel=1e-12)
    assert tr.extras["last_loss"] == pytest.approx(f_star, rel=1e-6)


def test_one_step_by_hand():
    """F − η D G, G − η Dᵀ F with the Polyak η = (f − f*)/(‖DG‖² + ‖DᵀF‖²), D from the dense A."""
    p = _problem()
    F0, G0 = small_random(p, 3, 0.3, seed=1)
    method = SubGM(schedule="polyak")
    state = method.init(p, (F0[None], G0[None]))
    new, rn = method.step(p, state)
    A = np.asarray(p.operator.as_matrix())
    r = A @ (F0 @ G0.T).ravel() - p.y
    D = ((np.sign(r) / math.sqrt(p.m)) @ A).reshape(20, 20)
    f = np.abs(r).sum() / math.sqrt(p.m)
    f_star = Loss("l1").value((A @ np.asarray(p.dense_M_star()).ravel() - p.y)[None])[0]
    eta = (f - f_star) / (np.sum((D @ G0) ** 2) + np.sum((D.T @ F0) ** 2))
    assert new.eta[0] == pytest.approx(eta, rel=1e-12)
    assert np.allclose(new.F[0], F0 - eta * D @ G0, rtol=0, atol=1e-13)
    assert np.allclose(new.G[0], G0 - eta * D.T @ F0, rtol=0, atol=1e-13)
    assert rn[0] == pytest.approx(np.linalg.norm(r), rel=1e-12)


def test_symmetric_direction_is_the_gradient_of_half_f():
    p = _problem(symmetric=True, outlier_fraction=0.0)
    rng = np.random.default_rng(3)
    X, V = rng.standard_normal((2, 20, 3))
    loss = Loss("l1")
    method = SubGM()
    state = method.init(p, (X[None],))
    _, (g,), _ = method.subgradient(p, state)

    def h(t):
        Y = X + t * V
        r, _, _ = p.operator.residual_and_grads(Y[None], Y[None], p.y)
        return loss.value(r)[0] / 2

    eps = 1e-7
    assert (h(eps) - h(-eps)) / (2 * eps) == pytest.approx(np.sum(g[0] * V), rel=1e-6)


def test_polyak_refuses_without_truth_and_accepts_a_given_f_star():
    p = _problem(outlier_fraction=0.0)
    data = ms.Problem.from_arrays(
        np.asarray(p.operator.as_matrix()).reshape(p.m, 20, 20) * math.sqrt(p.m), p.y
    )
    F0, G0 = small_random(data, 2, 0.1, seed=0)
    with pytest.raises(
        ValueError,
        match=r"^schedule 'polyak' needs f\* = f\(M\*\), and this "
        r"problem has no ground truth M\*: pass f_star",
    ):
        ms.run(data, SubGM(schedule="polyak"), (F0, G0), iters=2)
    tr = ms.run(data, SubGM(schedule="polyak", f_star=0.0), (F0, G0), iters=2)
    assert tr.extras["f_star"] == 0.0
    tr = ms.run(data, SubGM(), (F0, G0), iters=2)  # other schedules need no f*
    assert math.isnan(tr.extras["f_star"])


@pytest.mark.parametrize("kappa", [1.0, 20.0])
def test_scaledsm_from_the_trimmed_spectral_start(kappa):
    p = _problem(kappa=kappa, outlier_fraction=0.2, m=800)
    tr = ms.run(p, ScaledSM(), spectral_trimmed(p, 2), iters=150)
    assert tr.history["rel_error"][-1] <= 1e-10


def test_trimmed_spectral_drops_the_largest_observations():
    p = _problem(outlier_fraction=0.2)
    drop = np.argsort(np.abs(p.y))[-round(0.2 * p.m) :]
    trimmed = p.replace(y=np.where(np.isin(np.arange(p.m), drop), 0.0, p.y))
    for a, b in zip(spectral_trimmed(p, 2), spectral(trimmed, 2)):
        assert np.array_equal(a, b)
    for a, b in zip(spectral_trimmed(p, 2, fraction=0.0), spectral(p, 2)):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match=r"trim fraction must be a number in \[0, 1\), got 1"):
        spectral_trimmed(p, 2, fraction=1)
    X0 = ms.init.get_init("spectral_trimmed_symmetric").build(_problem(symmetric=True), 2)
    assert X0.shape == (20, 2)


def test_every_ensemble_runs_subgm():
    for ensemble, m in [("rank-one", 400), ("completion", 150), ("symmetric-gaussian", 400)]:
        p = ms.Problem.generate(ensemble, 16, r=2, m=m, seed=1, outlier_fraction=0.05)
        F0, G0 = small_random(p, 3, 1e-3, seed=0)
        tr = ms.run(p, SubGM(), (F0, G0), iters=50)
        assert np.isfinite(tr.history["rel_error"][-1])


def test_cli_and_run_files(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text(
        'n1 = 12\nr = 1\nm = 300\noutlier_fraction = 0.1\ninit = "spectral_trimmed"\n'
        'k = 1\n[method]\nmethod = "scaledsm"\nloss = "l1"\n[run]\niters = 60\n'
    )
    out = subprocess.run(
        [sys.executable, "-m", "matsense", "run", "--config", str(f), "--no-figure"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "matsense",
            "run",
            "--method",
            "subgm",
            "--schedule",
            "cosine",
            "--iters",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
    assert "schedule must be one of constant, geometric, diminishing, polyak" in bad.stderr


def test_a_sweep_over_outliers_and_methods(tmp_path):
    from matsense.sweep import load, run_sweep

    spec = tmp_path / "robust.toml"
    spec.write_text(
        '[sweep]\nname = "robust"\n[base]\nn1 = 12\nr = 1\nm = 300\nk = 2\n'
        'alpha = 0.001\nmethod = "subgm"\niters = 200\nrecord_every = 10\n'
        "[grid]\noutlier_fraction = [0.0, 0.1]\ninit_seed = [0, 1]\n"
        'schedule = ["geometric", "diminishing"]\n'
    )
    run_sweep(str(spec), str(tmp_path / "out"), workers=0, progress="off")
    runs, history = load(str(tmp_path / "out"))
    assert len(runs) == 8 and set(runs["status"]) <= {"max_iters", "converged"}
    # runs that share a problem advance as one batch: each still equals its run alone
    cfg = ms.config.RunConfig.from_dict(
        dict(
            n1=12,
            r=1,
            m=300,
            k=2,
            alpha=0.001,
            method="subgm",
            iters=200,
            outlier_fraction=0.1,
            init_seed=1,
            schedule="geometric",
        )
    )
    problem = cfg.build_problem()
    alone = ms.run(problem, cfg.build_method(), cfg.build_init(problem), iters=200)
    row = runs[
        (runs.outlier_fraction == 0.1) & (runs.init_seed == 1) & (runs.schedule == "geometric")
    ]
    assert row["final_error"].iloc[0] == pytest.approx(alone.history["error"][-1], rel=1e-9)


def _phase_example(tmp_path, *args):
    """examples/robust_phase.py at its quick size in this process's Python (``args``: e.g.
    another ``--spec``): its stdout and the three methods' phase.json."""
    import json
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "robust_phase.py"
    argv = [sys.executable, str(script), *args, "--quick", "--workers", "0"]
    out = subprocess.run(
        [*argv, "--out", str(tmp_path / "phase")], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads((tmp_path / "phase" / "phase.json").read_text())
    assert set(data) == {"ℓ2 GD", "ℓ1 SubGM (geometric)", "ScaledSM (Polyak)"}
    return out.stdout, data


def test_the_phase_diagram_example_quick(tmp_path):
    _, data = _phase_example(tmp_path)
    for d in data.values():
        assert d["p_s"] == [0.0, 0.1, 0.3] and d["m_over_nr"] == [4.0, 10.0]
        assert np.asarray(d["error"]).shape == (3, 2)
    # ℓ2 GD breaks down under any outliers; ScaledSM recovers at p_s = 0.3 with m = 10nr
    assert min(data["ℓ2 GD"]["error"][1]) >= 0.5
    assert data["ScaledSM (Polyak)"]["error"][2][1] <= 1e-8
    assert (tmp_path / "phase" / "phase.png").stat().st_size > 0


def test_phase_diagram_over_k_quick(tmp_path):
    from pathlib import Path

    spec = Path(__file__).resolve().parents[1] / "examples" / "robust_phase_k.toml"
    stdout, data = _phase_example(tmp_path, "--spec", str(spec))
    for d in data.values():
        assert d["p_s"] == [0.0, 0.1, 0.3] and d["k"] == [2, 4] and "m_over_nr" not in d
        assert np.asarray(d["error"]).shape == (3, 2)
    assert min(data["ℓ2 GD"]["error"][1]) >= 0.5  # ℓ2 breaks at p_s = 0.1, any k
    assert data["ScaledSM (Polyak)"]["error"][2][0] <= 1e-8  # k = r recovers at p_s = 0.3
    assert data["ℓ1 SubGM (geometric)"]["error"][0][1] >= 1e-4  # k > r stalls (R1)
    assert "factor width k" in stdout and (tmp_path / "phase" / "phase.png").stat().st_size
