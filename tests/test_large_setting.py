"""``matsense reproduce --setting large``: the asymmetric claims at scale (issue #19 part 3)."""

from __future__ import annotations

import json

import pytest

from matsense import cli
from matsense.experiments import ClaimSettings, reproduce
from matsense.experiments.settings import LARGE, LARGE_CLAIMS


@pytest.mark.parametrize(
    "ensemble, n, m", [("completion", 10_000, 1_000_000), ("rank-one", 2000, 100_000)]
)
def test_large_preset_sizes(ensemble, n, m):
    s = ClaimSettings.preset("large", ensemble=ensemble).resolve()
    assert s.shape == (n, n) and s.measurements(n, n) == m
    assert (s.r, s.k, s.eta) == (5, 10, 0.5)
    assert max(s.singular_values) == 1.0 and min(s.singular_values) == 0.5
    assert s.c7_kappas == () and s.n_seeds == 2
    assert len(s.c4_alphas) == 2 and s.c4_alphas == s.c8_alphas


@pytest.mark.parametrize("ensemble", ["gaussian", "symmetric-gaussian"])
def test_large_preset_refused_where_it_has_no_size(ensemble):
    with pytest.raises(
        ValueError, match="setting 'large' is defined for the ensembles completion, rank-one, not"
    ):
        ClaimSettings.preset("large", ensemble=ensemble)
    assert set(LARGE) == {"completion", "rank-one"}


def test_cli_refuses_large_gaussian_in_one_line(tmp_path, capsys):
    code = cli.main(
        ["reproduce", "--setting", "large", "--out", str(tmp_path / "r"), "--no-progress"]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "setting 'large' is defined for the ensembles" in err[0]


@pytest.mark.slow
def test_large_runs_the_asymmetric_claims_by_default(tmp_path):
    """The 'large' path end to end, shrunk by --set to a CI size (same claims, same criteria)."""
    out = tmp_path / "large"
    results = reproduce(
        out,
        setting="large",
        ensemble="completion",
        quick=True,
        seeds=1,
        overrides={"n": 200, "p": 0.5},
    )
    assert [r.id for r in results] == list(LARGE_CLAIMS)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ensemble"] == "completion"
    ids = [c["id"] for c in summary["claims"]]
    assert ids == list(LARGE_CLAIMS)
    assert (out / "report.html").exists()


def test_all_ensembles_at_large_runs_those_with_a_large_size(monkeypatch, tmp_path):
    from matsense.experiments import ensembles as E

    seen = []

    def fake(out, *, seeds, settings, progress, workers, claims):
        seen.append((settings.ensemble, settings.shape))
        return []

    monkeypatch.setattr(E, "reproduce", fake)
    E.reproduce_ensembles(tmp_path, setting="large")
    assert seen == [("rank-one", (2000, 2000)), ("completion", (10_000, 10_000))]


def test_drift_checkpoints_where_m_star_is_kept_as_factors():
    """C8 at the large sizes: M* is not dense there (its relative error came out as
    ``float - None`` and the claim failed with a TypeError)."""
    import numpy as np

    import matsense as ms
    from matsense.experiments.drift import run_checkpoints

    p = ms.Problem.completion(3000, r=3, m=180_000, seed=0)
    assert p.M_star is None
    init = ms.init.small_random(p, 6, [0.01, 0.005], seed=[1, 1])
    d = run_checkpoints(p, init, 0.3, [5, 20])
    ref = ms.run(p, ms.GD(0.3), init, iters=20, record_every=20)
    np.testing.assert_allclose(d.rel_error[-1], ref.history["rel_error"][-1], rtol=1e-12)
