"""Sphinx configuration of matsense's documentation site.

Build (offline, warnings as errors), from the root of a clone::

    pip install -e ".[docs]" && python -m sphinx -W --keep-going -b html docs docs/_build/html

The pages are the Markdown files of ``docs/`` (MyST), the API reference is generated from
the numpydoc docstrings (``docs/reference/``), and the gallery is ``examples/gallery/``, run
at build time by sphinx-gallery (``docs/auto_examples/``, not committed). Mathematics stays
Unicode text, as in the Markdown pages: no MathJax, nothing fetched from a CDN.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matsense  # noqa: E402
from sphinx.util import logging  # noqa: E402

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "examples" / "gallery"))

project = "matsense"
author = "the matsense authors"
copyright = "the matsense authors"
release = version = matsense.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

root_doc = "index"
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "data", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]
templates_path = ["_templates"]

# -- Markdown pages (MyST) -------------------------------------------------------------------
myst_heading_anchors = 4          # `[text](conventions.md#the-claims)` links resolve
myst_enable_extensions = ["colon_fence"]

# -- API reference ---------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"        # numpydoc documents the types in the text
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
add_module_names = False

# -- Gallery ---------------------------------------------------------------------------------
os.environ.setdefault("MATSENSE_GALLERY_SIZE", "small")
sphinx_gallery_conf = {
    "examples_dirs": str(REPO / "examples" / "gallery"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "abort_on_example_error": True,
    "show_memory": False,
    "promote_jupyter_magic": False,
    "first_notebook_cell": None,
    # A cell's last value is shown when it has an HTML summary (trajectories, fits, verdicts,
    # tables), not as a plain repr (no "<Axes: ...>" after a plot).
    "capture_repr": ("_repr_html_",),
    # The execution-times pages load DataTables from a CDN: left out, the site stays offline.
    "write_computation_times": False,
}

# -- HTML ------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"matsense {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {"navigation_with_keys": True}


def _add_toctree(app, docname, source):
    """Give the landing page (docs/index.md, also read on GitHub) the site's table of contents.

    Added at build time so the Markdown file stays free of Sphinx directives.
    """
    if docname == "index":
        source[0] = source[0].replace("](../README.md)", "](readme.md)")
        source[0] += (
            "\n\n```{toctree}\n:hidden:\n:caption: Guide\n\nreadme\nconventions\napi\nmethods\n"
            "ensembles\nrobust\nclaims\nsweeps\nplugins\nextending\nperformance\n"
            "rebalance_study\n```\n"
            "\n```{toctree}\n:hidden:\n:caption: Gallery and reference\n\n"
            "auto_examples/index\nreference/index\n```\n"
        )


def _unicode_bars(app, what, name, obj, options, lines):
    """Docstrings write |x| for an absolute value (Unicode math); reST would read a substitution."""
    lines[:] = [line.replace("|", "\\|") for line in lines]


_REMOTE = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]+\"")


def _check_offline(app, exception):
    """A warning (an error under -W) for any page that loads a script, style or image from
    another host: the site must read without a network. Plain links are fine."""
    if exception is not None or app.builder.format != "html":
        return
    for page in sorted(Path(app.outdir).rglob("*.html")):
        for tag in _REMOTE.findall(page.read_text(encoding="utf-8")):
            logger.warning("%s loads a remote resource: %s", page.relative_to(app.outdir), tag)


def setup(app):
    app.connect("source-read", _add_toctree)
    app.connect("build-finished", _check_offline)
    app.connect("autodoc-process-docstring", _unicode_bars)
