"""Bad input at the public boundary → ValueError naming the value and the accepted range."""

from __future__ import annotations

import numpy as np
import pytest

import matsense as ms
from matsense.config import RunConfig


@pytest.fixture(scope="module")
def problem():
    return ms.Problem.gaussian(6, 5, r=2, m=40, seed=0)


@pytest.fixture(scope="module")
def square():
    return ms.Problem.gaussian(6, r=2, m=40, seed=0)


def _arrays(m=10, n1=4, n2=3):
    rng = np.random.default_rng(0)
    return rng.standard_normal((m, n1, n2)), rng.standard_normal(m), rng.standard_normal((n1, n2))


# ------------------------------------------------------------------ problems
def test_y_length_must_match_A():
    A, y, _ = _arrays()
    with pytest.raises(ValueError, match=r"A has m=10, y has 9"):
        ms.Problem.from_arrays(A, y[:9])


def test_A_must_be_3d():
    A, y, _ = _arrays()
    with pytest.raises(ValueError, match=r"A must have 3 dimensions, got shape \(10, 12\)"):
        ms.Problem.from_arrays(A.reshape(10, 12), y)


def test_M_star_shape_must_match_A():
    A, y, M = _arrays()
    with pytest.raises(ValueError, match=r"M_star must have shape \(n1, n2\) = \(4, 3\).*\(3, 4\)"):
        ms.Problem.from_arrays(A, y, M.T)


@pytest.mark.parametrize("which", ["A", "y", "M_star"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_arrays_are_rejected(which, bad):
    A, y, M = _arrays()
    arrays = {"A": A.copy(), "y": y.copy(), "M_star": M.copy()}
    arrays[which].flat[3] = bad
    with pytest.raises(ValueError, match=rf"{which} must be finite"):
        ms.Problem.from_arrays(arrays["A"], arrays["y"], arrays["M_star"])


def test_non_numeric_arrays_are_rejected():
    A, y, _ = _arrays()
    with pytest.raises(ValueError, match="y must be an array of real numbers"):
        ms.Problem.from_arrays(A, ["a"] * 10)
    with pytest.raises(ValueError, match="A must be real"):
        ms.Problem.from_arrays(A + 1j, y)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n1=5, r=6, m=10), r"r must be in \[1, 5\], got 6"),
        (dict(n1=5, n2=3, r=4, m=10), r"r must be in \[1, 3\], got 4"),
        (dict(n1=5, r=0, m=10), r"r must be in \[1, 5\], got 0"),
        (dict(n1=0, r=1, m=10), r"n1 must be >= 1, got 0"),
        (dict(n1=5, r=2, m=0), r"m must be >= 1, got 0"),
        (dict(n1=5, r=2, m=10, kappa=0.5), r"kappa must be >= 1, got 0.5"),
        (dict(n1=5, r=2, m=10, noise=-1), r"noise must be a finite number >= 0, got -1"),
        (dict(n1=5, r=2, m=10, seed=-3), r"seed must be >= 0, got -3"),
        (dict(n1=5, r=2, m=10, singular_values=[1.0]), r"singular_values must have r=2 entries"),
        (
            dict(n1=5, r=2, m=10, singular_values=[1.0, -1.0]),
            r"singular_values must be finite and > 0",
        ),
        (dict(n1=5, n2=4, r=2, m=10, symmetric=True), r"n1 == n2, got n1=5, n2=4"),
        (dict(n1=5.0, r=2, m=10), r"n1 must be an integer, got 5.0"),
        (
            dict(n1=5, r=2, m=10, spacing="cubic"),
            r"spacing must be 'geometric' or 'linear', got 'cubic'",
        ),
    ],
)
def test_gaussian_problem_arguments(kwargs, message):
    n1 = kwargs.pop("n1")
    with pytest.raises(ValueError, match=message):
        ms.Problem.gaussian(n1, **kwargs)


# ------------------------------------------------------------ initialization
@pytest.mark.parametrize(
    "k, message",
    [
        (0, r"k must be in \[1, 5\], got 0"),
        (6, r"k must be in \[1, 5\], got 6"),
        (2.5, r"k must be an integer, got 2.5"),
    ],
)
def test_k_range(problem, k, message):
    with pytest.raises(ValueError, match=message):
        ms.init.small_random(problem, k=k, alpha=0.1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(alpha=0.0), r"alpha must be a finite number > 0, got 0.0"),
        (dict(alpha=np.nan), r"alpha must be a finite number > 0, got nan"),
        (dict(alpha=0.1, ratio=-1), r"ratio must be a finite number > 0, got -1"),
        (dict(alpha=0.1, normalization="rows"), r"normalization must be one of .*'rows'"),
        (dict(alpha=[0.1, 0.2], seed=[1, 2, 3]), r"alpha \(2 values\) and seed \(3 values\)"),
        (dict(alpha=0.1, seed=-1), r"seed must be >= 0, got -1"),
        (dict(alpha=0.1, seed=1.5), r"seed must be a non-negative integer"),
    ],
)
def test_small_random_arguments(problem, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ms.init.small_random(problem, k=2, **kwargs)


def test_symmetric_inits_need_a_square_problem(problem):
    with pytest.raises(ValueError, match=r"square problem, got shape \(6, 5\)"):
        ms.init.symmetric_random(problem, k=2, alpha=0.1)
    with pytest.raises(ValueError, match=r"n1 == n2, got 6 and 5"):
        ms.init.balanced(problem, k=2, alpha=0.1)


# --------------------------------------------------------------------- methods
@pytest.mark.parametrize("eta", [0, -0.1, np.nan, np.inf])
@pytest.mark.parametrize("cls", [ms.GD, ms.RebalancedGD])
def test_step_size_must_be_positive(cls, eta):
    with pytest.raises(ValueError, match=r"step_size must be a finite number > 0"):
        cls(step_size=eta)


def test_step_size_must_be_a_number():
    with pytest.raises(ValueError, match=r"step_size must be a real number, got '0.1'"):
        ms.GD(step_size="0.1")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(tau=1.0), r"tau must be in \(0, 1\), got 1.0"),
        (dict(tau=0), r"tau must be a finite number > 0, got 0"),
        (dict(switch_at=-1), r"switch_at must be >= 0, got -1"),
        (dict(beta=0), r"beta must be a finite number > 0, got 0"),
    ],
)
def test_rebalanced_gd_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ms.RebalancedGD(**kwargs)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown method 'adam'; known methods: .*gd"):
        ms.get_method("adam")


# ------------------------------------------------------------------------ run
def test_wrong_init_shapes(problem, square):
    gd = ms.GD()
    F0, G0 = ms.init.small_random(problem, k=2, alpha=0.1)
    with pytest.raises(ValueError, match=r"F0 must have shape \(6, k\).*got \(5, 2\)"):
        ms.run(problem, gd, (F0[:5], G0))
    with pytest.raises(ValueError, match=r"G0 must have shape \(5, k\) with one k.*got \(5, 3\)"):
        ms.run(problem, gd, (F0, np.hstack([G0, G0[:, :1]])))
    with pytest.raises(
        ValueError, match=r"init must be X, \(X,\) or \(F, G\); got a sequence of 3"
    ):
        ms.run(problem, gd, (F0, G0, G0))
    with pytest.raises(ValueError, match=r"X Xᵀ needs a square problem"):
        ms.run(problem, gd, F0)
    with pytest.raises(ValueError, match=r"both have a batch axis or neither"):
        ms.run(problem, gd, (F0[None], G0))
    with pytest.raises(ValueError, match=r"X0 must have 2 or 3 dimensions"):
        ms.run(square, gd, np.zeros(6))


def test_non_finite_init(problem):
    F0, G0 = ms.init.small_random(problem, k=2, alpha=0.1)
    F0 = F0.copy()
    F0[0, 0] = np.nan
    with pytest.raises(ValueError, match="F0 must be finite"):
        ms.run(problem, ms.GD(), (F0, G0))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(iters=-1), r"iters must be >= 0, got -1"),
        (dict(record_every=0), r"record_every must be >= 1, got 0"),
        (dict(tol=0.0), r"tol must be a finite number > 0, got 0.0"),
        (dict(divergence_factor=-2.0), r"divergence_factor must be a finite number > 0"),
    ],
)
def test_run_arguments(problem, kwargs, message):
    init = ms.init.small_random(problem, k=2, alpha=0.1)
    with pytest.raises(ValueError, match=message):
        ms.run(problem, ms.GD(), init, **kwargs)


# ---------------------------------------------------------------------- rates
def test_rate_arguments():
    t, err = np.arange(10), np.ones(10)
    with pytest.raises(ValueError, match=r"window must be \(upper, lower\)"):
        ms.rates.linear_rate(t, err, window=(1e-12, 1e-4))
    with pytest.raises(ValueError, match=r"tail must be in \[0, 1\), got 1.5"):
        ms.rates.power_law(t, err, tail=1.5)
    with pytest.raises(ValueError, match=r"equal length, got \(10,\) and \(9,\)"):
        ms.rates.linear_rate(t, err[:9])


# --------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "data, message",
    [
        ({"n3": 4}, r"unknown key 'n3'; allowed keys: .*n1"),
        ({"tau": 0.1}, r"unknown key 'tau'.*step_size \(method gd\)"),
        ({"n1": "30"}, r"n1 must be rows of M\* \(int >= 1\), got '30' \(str\)"),
        ({"k": True}, r"k must be .*got True \(bool\)"),
        ({"symmetric": 1}, r"symmetric must be PSD ground truth \(true/false\), got 1 \(int\)"),
        ({"alpha": "small"}, r"alpha must be initialization scale"),
        ({"method": "adam"}, r"unknown method 'adam'; known methods"),
        ({"init": "nope"}, r"unknown init 'nope'; known: balanced, .*small_random"),
        ({"method": "rebalanced_gd", "tau": 2.0}, r"tau must be in \(0, 1\), got 2.0"),
        ({"problem": {"n1": 5}, "n1": 6}, r"key 'n1' is given twice"),
    ],
)
def test_run_config_rejects(data, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(data)


def test_run_config_values_are_checked_when_built():
    cfg = RunConfig.from_dict({"n1": 5, "r": 6})
    with pytest.raises(ValueError, match=r"r must be in \[1, 5\], got 6"):
        cfg.build_problem()
    cfg = RunConfig.from_dict({"n1": 5, "r": 2, "k": 9, "m": 20})
    with pytest.raises(ValueError, match=r"k must be in \[1, 5\], got 9"):
        cfg.build_init(cfg.build_problem())


def _write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("[problem]\nn1 = 10\nrr = 2\n", r"run.toml:3: unknown key 'rr'"),
        (
            '[problem]\nn1 = 10\n\n[init]\nk = "four"\n',
            r"run.toml:5: k must be .*got 'four' \(str\)",
        ),
        ('[method]\nmethod = "gd"\ntau = 0.1\n', r"run.toml:3: unknown key 'tau'"),
        ("[problem]\nn1 = = 10\n", r"run.toml: invalid TOML: .*line 2"),
        ("n1 = 10\n[problem\n", r"run.toml: invalid TOML: .*line 2"),
    ],
)
def test_bad_toml_names_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_toml(_write(tmp_path, text))


def test_missing_toml_file(tmp_path):
    with pytest.raises(ValueError, match=r"cannot read .*nope.toml"):
        RunConfig.from_toml(tmp_path / "nope.toml")


def test_good_toml_round_trips(tmp_path):
    path = _write(
        tmp_path,
        "[problem]\nn1 = 10\nr = 2\nm = 150\n\n[init]\nk = 3\nalpha = 1\n\n"
        '[method]\nmethod = "rebalanced_gd"\nstep_size = 0.25\ntau = 0.05\n\n'
        "[run]\niters = 5\n",
    )
    cfg = RunConfig.from_toml(path)
    assert cfg.alpha == 1.0 and isinstance(cfg.alpha, float)
    assert cfg.method_params == {"step_size": 0.25, "tau": 0.05}
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    method = cfg.build_method()
    assert isinstance(method, ms.RebalancedGD) and method.tau == 0.05
