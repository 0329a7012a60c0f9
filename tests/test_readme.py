"""The documented examples run: the python blocks of README.md and of the general docs pages,
the TOML run files they show and the README's `matsense run` lines; and the README's test
command is the one CI runs."""

from __future__ import annotations

import re
import runpy
import shlex
import sys
import tomllib
import types
from pathlib import Path

import pytest

from matsense.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
# The pages whose examples this file runs (other pages' examples belong to their parts' tests).
DOCS = [
    ROOT / "README.md",
    *(ROOT / "docs" / name for name in ("index.md", "conventions.md", "api.md")),
]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def blocks(path: Path, lang: str) -> list[tuple[int, str]]:
    """(line number, code) of each ```lang fenced block of ``path``."""
    text = path.read_text()
    return [
        (text[: mt.start()].count("\n") + 1, mt.group(2))
        for mt in FENCE.finditer(text)
        if mt.group(1) == lang
    ]


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p, "python")], ids=_id)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    """The python blocks of one file run in order in one namespace, in an empty directory
    that holds only a link to the repository's examples/ (which docs may refer to)."""
    if (ROOT / "examples").is_dir():
        (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("doc_example")  # a real module, so dataclasses can resolve it
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for line, code in blocks(path, "python"):
        try:
            exec(compile(code, f"{_id(path)}:{line}", "exec"), module.__dict__)
        except Exception as exc:
            raise AssertionError(f"the python block at {_id(path)}:{line} failed: {exc!r}") from exc


# Pages whose TOML blocks are `matsense run` files (other pages may show other TOML, e.g. sweeps).
RUN_FILE_DOCS = [ROOT / "README.md", ROOT / "docs" / "api.md"]


@pytest.mark.parametrize("path", [p for p in RUN_FILE_DOCS if blocks(p, "toml")], ids=_id)
def test_toml_blocks_are_valid_run_files(path):
    for line, text in blocks(path, "toml"):
        cfg = RunConfig.from_dict(tomllib.loads(text), source=f"{_id(path)}:{line}")
        cfg.build_init(cfg.build_problem())


def _readme_commands() -> list[str]:
    return [
        line.strip()
        for _, code in blocks(ROOT / "README.md", "bash")
        for line in code.splitlines()
        if line.startswith("python3.11 -m venv")
    ]


def test_readme_has_the_two_setup_commands_and_the_docs_command():
    main, tests, docs = _readme_commands()
    assert main.endswith("matsense reproduce --out results")
    assert "pytest" in tests
    assert '".[docs]"' in docs and "sphinx -W" in docs


def test_ci_runs_the_readme_test_command_verbatim():
    _, tests, _ = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in [line.strip() for line in ci.splitlines()]


def test_ci_builds_the_docs_with_the_readme_command_after_the_tests():
    _, tests, docs = _readme_commands()
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert docs in ci
    assert ci.index(docs) > ci.index(tests)


def test_readme_run_commands(tmp_path, monkeypatch, capsys):
    """The `matsense run` lines of the README, with the docs' example run file as run.toml."""
    from matsense import cli

    monkeypatch.chdir(tmp_path)
    [(_, toml_text)] = blocks(ROOT / "docs" / "api.md", "toml")
    (tmp_path / "run.toml").write_text(toml_text)
    lines = [
        line.strip()
        for _, code in blocks(ROOT / "README.md", "bash")
        for line in code.splitlines()
        if line.startswith(("matsense run ", "python examples/make_data.py"))
    ]
    assert len(lines) >= 2
    for line in lines:
        args = shlex.split(line)[1:]
        if line.startswith("python "):  # writes the data sets the next lines read
            namespace = runpy.run_path(str(ROOT / args[0]), run_name="readme_example")
            assert namespace["main"](args[1:]) == 0, line
            continue
        assert cli.main([*args, "--no-progress"]) == 0, line
        out = Path(args[args.index("--out") + 1])
        assert out.exists() and out.with_suffix(".png").exists(), line
    assert "converged" in capsys.readouterr().out
