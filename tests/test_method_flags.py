"""`matsense run`'s method flags: each takes its type and help from the methods that declare the
parameter (matsense.flags), also when two methods declare one name differently."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from matsense import cli, flags, plugins
from matsense.driver import cli as run_cli
from matsense.methods import GD, METHODS
from matsense.methods.base import param


@dataclass(frozen=True)
class IntTau(GD):
    """A toy method whose ``tau`` is an int (rebalanced_gd's is a float)."""

    name = "int_tau"
    tau: int = param(2, None, "toy: how many taus")


@dataclass(frozen=True)
class SwitchTau(GD):
    """A toy method whose ``tau`` is a switch."""

    name = "switch_tau"
    tau: bool = param(False, None, "toy: tau or not")


@pytest.fixture
def int_tau():
    METHODS["int_tau"] = IntTau
    yield IntTau
    del METHODS["int_tau"]


def _run_action(option: str):
    parser = cli.build_parser()
    run = parser._subparsers._group_actions[0].choices["run"]
    return next(a for a in run._actions if option in a.option_strings)


def _config(*argv):
    args = cli.build_parser().parse_args(["run", *argv])
    return run_cli.config_from_args(args)


@pytest.mark.parametrize(
    ("annotation", "kind"),
    [
        ("float", float),
        ("int | None", int),
        ("bool", bool),
        ("str", str),
        ("None | float", float),
        ("Point", str),
        ("int | float", str),
        (float, float),
        (int, int),
    ],
)
def test_flag_kind(annotation, kind):
    assert flags.flag_kind(annotation) is kind


def test_each_method_keeps_its_own_help():
    step = _run_action("--step-size").help
    assert "gd, scaledgd" in step and ": step size η;" in step
    assert "rebalanced_gd: step size η (before and after the switch)" in step
    assert "apgd: step size η, in (0, 2)" in step
    damping = _run_action("--damping").help
    assert "scaledgd: damping λ of the Gram matrices (>= 0)" in damping
    assert "scaledgd_lambda: damping λ of the Gram matrices (> 0)" in damping
    rcond = _run_action("--rcond").help  # one text when the owners agree
    assert rcond.startswith("pseudo-inverse cutoff, in [0, 1) (scaledgd, scaledgd_lambda, ")


def test_built_in_flags_are_typed_by_their_methods():
    assert _run_action("--switch-at").type is int
    assert _run_action("--tau").type is float
    assert isinstance(_run_action("--diagnostics"), argparse.BooleanOptionalAction)
    assert _run_action("--transform").type is str
    assert _config("--method", "rebalanced_gd", "--switch-at", "7").method_params == {
        "switch_at": 7
    }


def test_differently_typed_parameter_is_read_by_the_running_method(int_tau, tmp_path):
    tau = flags.method_flags()["tau"]
    assert tau.kind is None and tau.methods == ["rebalanced_gd", "int_tau"]
    assert "int_tau: toy: how many taus" in _run_action("--tau").help
    got = _config("--method", "int_tau", "--tau", "3").method_params["tau"]
    assert got == 3 and type(got) is int
    got = _config("--method", "rebalanced_gd", "--tau", "0.5").method_params["tau"]
    assert got == 0.5 and type(got) is float
    run_file = tmp_path / "run.toml"
    run_file.write_text('[method]\nmethod = "int_tau"\n')
    assert _config("--config", str(run_file), "--tau", "4").method_params["tau"] == 4
    with pytest.raises(ValueError, match=r"--tau '0.5': tau of method int_tau is an int"):
        _config("--method", "int_tau", "--tau", "0.5")


def test_switch_and_value_of_one_name_are_refused_at_registration():
    with pytest.raises(
        ValueError,
        match="tau is a bool here but a float of method "
        "rebalanced_gd: --tau cannot be both a switch",
    ):
        plugins.check_method("switch_tau", SwitchTau)
    plugins.check_method("int_tau", IntTau)  # int against float: both take a value


def test_a_switch_and_a_value_that_still_meet_take_a_value():
    mixed = flags.method_flags({"switch_tau": SwitchTau, "int_tau": IntTau})["tau"]
    parser = argparse.ArgumentParser()
    mixed.add_to(parser)
    assert parser.parse_args(["--tau", "yes"]).tau == "yes"
    assert mixed.value("switch_tau", "yes") is True
    assert mixed.value("switch_tau", "off") is False
    assert mixed.value("int_tau", "5") == 5
    with pytest.raises(ValueError, match="tau of method switch_tau is true or false"):
        mixed.value("switch_tau", "maybe")
