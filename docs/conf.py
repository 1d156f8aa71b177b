"""Sphinx configuration of the sb3-ed documentation (Sphinx + MyST + autodoc, Read the Docs theme).

Build (from the repository root, warnings as errors):

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# autodoc imports the packages from the working tree (an editable install finds them too)
sys.path.insert(0, str(ROOT))

import sb3_ed  # noqa: E402

# -- Project ---------------------------------------------------------------------------------------

project = "sb3-ed"
author = "sb3-ed contributors"
copyright = "sb3-ed contributors"
version = release = sb3_ed.__version__

# -- General ---------------------------------------------------------------------------------------

extensions = [
    "myst_parser",
    # MathJax served from _static (no CDN): the pages render their equations offline too
    "sphinx-mathjax-offline",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"

# Each results folder is one page, its report.md (NOTES.md, where there is one, is listed too);
# other Markdown files there (table.md: a fragment of the report) are not pages of their own.
_RESULT_PAGES = ("report.md", "NOTES.md")
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    *sorted(
        str(path.relative_to(DOCS))
        for path in DOCS.glob("results/*/*.md")
        if path.name not in _RESULT_PAGES
    ),
]

# -- MyST ------------------------------------------------------------------------------------------

myst_enable_extensions = [
    "amsmath",
    "colon_fence",
    "deflist",
    "dollarmath",
]
# anchors for "## Heading" sections, so that [text](page.md#heading) links resolve
myst_heading_anchors = 3

# -- autodoc ---------------------------------------------------------------------------------------

autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
}
autodoc_typehints = "signature"
# Overridden torch / SB3 methods (forward, extra_repr, _on_step ...) would otherwise show the base
# class's generic text; only what this package documents itself appears.
autodoc_inherit_docstrings = False
autoclass_content = "class"

# -- HTML ------------------------------------------------------------------------------------------

html_theme = "sphinx_rtd_theme"
html_title = f"sb3-ed {release}"
html_theme_options = {
    "navigation_depth": 3,
    "collapse_navigation": False,
    "titles_only": False,
}
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["custom.css"]


def _public_bases(app, name, obj, options, bases):
    """Shows a class's private base (``sb3_ed.layers._DualStream``) as that base's own bases."""
    index = 0
    while index < len(bases):
        base = bases[index]
        if getattr(base, "__name__", "").startswith("_") and isinstance(base, type):
            bases[index : index + 1] = list(base.__bases__)
        else:
            index += 1


def setup(app):
    app.connect("autodoc-process-bases", _public_bases)
