"""One command-line vocabulary: a flag shared by several commands has the same spelling,
metavar and meaning on each; old spellings still work, with a one-line deprecation warning
naming the release that drops them (matsense.cli.DEPRECATED_FLAGS, the one list of them)."""

from __future__ import annotations

import argparse

import pytest

from matsense import cli


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _option(parser, flag):
    return next((a for a in parser._actions if flag in a.option_strings), None)


# Flags whose metavar is the same wherever they appear (--out names a file on some commands
# and a folder on others, so it is checked by kind below).
SHARED = {"--workers": "N", "--seeds": "N", "--max-memory": "SIZE", "--ensemble": "NAME"}


@pytest.mark.parametrize("flag", list(SHARED))
def test_shared_flags_have_one_metavar(flag):
    seen = {name: _option(p, flag) for name, p in _commands().items()}
    seen = {name: action.metavar for name, action in seen.items() if action is not None}
    assert len(seen) >= 2, seen
    assert set(seen.values()) == {SHARED[flag]}, seen


def test_folder_outputs_say_dir():
    commands = _commands()
    for name in ("reproduce", "compare", "sweep"):
        assert _option(commands[name], "--out").metavar == "DIR", name


def test_every_long_command_takes_no_progress():
    commands = _commands()
    for name in ("run", "reproduce", "compare", "sweep"):
        action = _option(commands[name], "--no-progress")
        assert action is not None and action.nargs == 0, name
    for name in ("run", "reproduce", "compare"):
        assert _option(commands[name], "--no-progress").help == cli.NO_PROGRESS_HELP, name


def test_compare_no_progress_turns_progress_off():
    args = cli.build_parser().parse_args(["compare", "--quick", "--no-progress"])
    assert args.no_progress and cli._show_progress(args) is False


def test_compare_progress_still_works_with_a_deprecation_line(capsys):
    args = cli.build_parser().parse_args(["compare", "--quick", "--progress"])
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("matsense: warning: ")
    assert "--progress is deprecated" in err and "0.3.0" in err and "--no-progress" in err
    assert cli._show_progress(args) is True  # on even when stderr is not a terminal
    both = cli.build_parser().parse_args(["compare", "--progress", "--no-progress"])
    assert cli._show_progress(both) is False  # an explicit --no-progress wins


def test_every_deprecated_flag_is_registered_and_parses(capsys):
    commands = _commands()
    for (command, flag), (_, removal) in cli.DEPRECATED_FLAGS.items():
        assert _option(commands[command], flag) is not None, (command, flag)
        cli.build_parser().parse_args([command, flag])
        assert removal in capsys.readouterr().err
