"""Notebook-friendly results: ``Trajectory.plot()`` / ``BatchTrajectory.plot()`` (through
matsense.plots) and the ``_repr_html_`` summaries of trajectories, fits and verdicts."""

from __future__ import annotations

import html

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import matsense as ms  # noqa: E402
from matsense import display, plots  # noqa: E402
from matsense.experiments import ClaimResult, Verdicts, load_summary, write_summary  # noqa: E402


@pytest.fixture(scope="module")
def problem():
    return ms.Problem.gaussian(10, r=1, m=200, seed=0)


@pytest.fixture(scope="module")
def rebalanced(problem):
    init = ms.init.small_random(problem, k=2, alpha=0.05, seed=1)
    return ms.run(problem, ms.RebalancedGD(step_size=0.3, tau=1e-2), init=init, iters=300)


@pytest.fixture(scope="module")
def batch(problem):
    init = ms.init.small_random(problem, k=2, alpha=[0.05, 0.1, 0.2], seed=1)
    return ms.run(problem, ms.RebalancedGD(step_size=0.3, tau=1e-2), init=init, iters=300)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _vlines(ax):
    """x positions of the vertical lines (axvline: two equal x values)."""
    return [
        line.get_xdata()[0]
        for line in ax.lines
        if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]
    ]


def test_plot_draws_the_error_curve_and_marks_the_switch(rebalanced):
    switch = rebalanced.extras["switch_iteration"]
    assert 0 < switch < 300
    ax = rebalanced.plot()
    curve = ax.lines[0]
    h = rebalanced.history
    np.testing.assert_array_equal(curve.get_xdata(), h["iteration"])
    np.testing.assert_array_equal(curve.get_ydata(), h["rel_error"])
    assert _vlines(ax) == [switch]
    assert ax.get_yscale() == "log"
    assert "rebalancing switch" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_plot_of_plain_gd_has_no_phase_marks(problem):
    init = ms.init.small_random(problem, k=2, alpha=0.05, seed=1)
    traj = ms.run(problem, ms.GD(step_size=0.3), init=init, iters=50)
    ax = traj.plot()
    assert len(ax.lines) == 1 and _vlines(ax) == []


def test_plot_on_given_axes_and_other_quantities(rebalanced):
    fig, (a, b) = plt.subplots(1, 2)
    assert rebalanced.plot(a, y="residual_norm") is a
    np.testing.assert_array_equal(a.lines[0].get_ydata(), rebalanced.history["residual_norm"])
    rebalanced.plot(b, y="singular_values")
    k = rebalanced.history["singular_values"].shape[1]
    assert len(b.lines) - len(_vlines(b)) == k
    with pytest.raises(ValueError, match="y must be one of"):
        rebalanced.plot(y="no_such_key")


def test_batch_plot_has_one_curve_and_one_switch_per_trajectory(batch):
    ax = batch.plot()
    switches = sorted(batch.extras["switch_iteration"].tolist())
    assert sorted(_vlines(ax)) == switches
    curves = [line for line in ax.lines if line.get_xdata()[0] != line.get_xdata()[-1]]
    assert len(curves) == len(batch)
    for b, line in enumerate(curves):
        np.testing.assert_array_equal(line.get_ydata(), batch[b].history["rel_error"])


def test_method_phases_for_a_method_of_your_own_is_one_phase():
    (phase,) = plots.method_phases({"method": "my_method", "eta": 1.0}, {})
    assert phase.start == 0 and phase.event is None


def test_trajectory_html_names_status_iterations_and_phases(rebalanced):
    out = rebalanced._repr_html_()
    switch = rebalanced.extras["switch_iteration"]
    assert out.startswith("<div") and out.endswith("</div>")
    assert "rebalanced_gd(" in out and ">max_iters</span>" in out
    assert ">300<" in out
    assert f"before switch [0, {switch}); after switch [{switch}, end)" in out
    assert f"{rebalanced.history['rel_error'][-1]:.4g}" in out
    assert "<script" not in out and "http" not in out


def test_batch_html_one_row_per_trajectory_and_truncation(problem, batch, monkeypatch):
    out = batch._repr_html_()
    assert "3 trajectories" in out and out.count("<tr>") == 1 + 3
    monkeypatch.setattr(display, "MAX_ROWS", 2)
    out = batch._repr_html_()
    assert out.count("<tr>") == 1 + 2 + 1 and "… 1 more" in out


def test_fit_html_shows_the_window_or_the_reason(rebalanced):
    h = rebalanced.history
    fit = ms.rates.linear_rate(h["iteration"], h["error"])
    out = fit._repr_html_()
    assert f"{fit.value:.4g}" in out and f"[{fit.t_start:g}, {fit.t_end:g}]" in out
    empty = ms.rates.linear_rate(np.arange(2), np.ones(2))
    assert np.isnan(empty.value)
    assert html.escape(empty.reason) in empty._repr_html_()


def _claim(cid, holds, title="rate ∝ α² <check>"):
    return ClaimResult(
        cid, title, "2.01 [1.9, 2.1]", "2", holds, reason=None if holds else "slope & fit off"
    )


def test_verdicts_html_escapes_and_counts(tmp_path):
    results = Verdicts([_claim("C4", True), _claim("C7", False)])
    out = results._repr_html_()
    assert "1 of 2 claims hold" in out
    assert "&lt;check&gt;" in out and "<check>" not in out
    assert "slope &amp; fit off" in out
    assert ">does not hold<" in out and ">holds<" in out
    assert "C7" in _claim("C7", False)._repr_html_()
    write_summary(results, tmp_path / "summary.json")
    loaded = load_summary(tmp_path / "summary.json")
    assert isinstance(loaded, Verdicts) and loaded == list(results)
    assert loaded._repr_html_() == out


def test_plot_without_truth_draws_the_residual_with_glyphs_the_font_has(tmp_path):
    import warnings

    rng = np.random.default_rng(0)
    A = rng.standard_normal((120, 8, 6))
    M = rng.standard_normal((8, 1)) @ rng.standard_normal((1, 6))
    problem = ms.Problem.from_arrays(
        A, np.einsum("kij,ij->k", A, M / np.linalg.norm(M, 2)) / np.sqrt(120)
    )
    traj = ms.run(problem, ms.GD(), ms.init.small_random(problem, k=1, alpha=0.1), iters=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph … missing from font(s)" is a UserWarning
        ax = traj.plot()
        ax.figure.savefig(tmp_path / "residual.png")
    assert ax.get_ylabel() == plots.ERROR_KEYS["residual_norm"]
