"""The documentation site's API reference (docs/reference/) names every public name of
matsense, matsense.methods, matsense.operators and matsense.sweep, and its docs extra and
configuration stay what the README's build command needs (the build itself runs in CI)."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
PAGES = {
    "matsense": "matsense.rst",
    "matsense.methods": "methods.rst",
    "matsense.operators": "operators.rst",
    "matsense.sweep": "sweep.rst",
}


def _entries(page: Path) -> set[str]:
    """Names listed in the page's autosummary tables, and the targets of its roles."""
    text = page.read_text()
    listed = set(re.findall(r"^ {3}([A-Za-z_][A-Za-z0-9_]*)\s*$", text, re.M))
    roles = set(re.findall(r":(?:class|func|data|mod):`~?([\w.]+)`", text))
    declared = set(re.findall(r"^\.\. py:data:: (\w+)", text, re.M))
    return listed | roles | declared


def _documented() -> set[str]:
    """Every fully qualified name the reference pages document."""
    out = set()
    for module, page in PAGES.items():
        for name in _entries(REFERENCE / page):
            out.add(name if "." in name else f"{module}.{name}")
    return out


@pytest.mark.parametrize("module", list(PAGES))
def test_every_public_name_is_in_the_reference(module):
    documented = _documented()
    mod = importlib.import_module(module)
    missing = []
    for name in mod.__all__:
        if f"{module}.{name}" in documented:
            continue
        # A re-export (matsense.GD is matsense.methods.GD) is documented where it lives.
        obj = getattr(mod, name)
        elsewhere = [
            f"{other}.{name}"
            for other in PAGES
            if other != module and getattr(importlib.import_module(other), name, None) is obj
        ]
        if not any(e in documented for e in elsewhere):
            missing.append(name)
    assert not missing, f"{module}: not in docs/reference/{PAGES[module]}: {missing}"


def test_reference_lists_no_name_that_does_not_exist():
    for module, page in PAGES.items():
        mod = importlib.import_module(module)
        for name in re.findall(r"^ {3}([A-Za-z_]\w*)\s*$", (REFERENCE / page).read_text(), re.M):
            assert hasattr(mod, name), f"docs/reference/{page} lists {module}.{name}"


def test_docs_extra_and_config():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = {re.split(r"[<>=\[]", req)[0] for req in extras["docs"]}
    assert {"sphinx", "numpydoc", "sphinx-gallery", "myst-parser", "furo"} <= names
    assert all(">=" in req for req in extras["docs"])  # lower bounds
    conf = (ROOT / "docs" / "conf.py").read_text()
    # Unicode math and nothing from a CDN: no MathJax extension, no remote assets.
    assert "sphinx.ext.mathjax" not in conf and "https://" not in conf
