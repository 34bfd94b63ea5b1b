"""Sphinx configuration of crmkit's documentation: the guides in Markdown (MyST) and the API reference read from the
code by autodoc, so a renamed function or a broken docstring fails `sphinx-build -W` (run by `python3 dev.py lint`)."""

import re
from typing import Any

from crmkit import __version__

project = "crmkit"
author = "crmkit contributors"
copyright = "crmkit contributors"  # noqa: A001 - the name Sphinx reads
release = version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "screenshots"]
myst_heading_anchors = 4  # README-style links to "#some-heading" inside a page

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
nitpicky = False

html_theme = "furo"
html_title = f"crmkit {release}"
autodoc_inherit_docstrings = False  # a subclass of a library class (an SQL function) shows only what crmkit says

_OUTSIDE = re.compile(r"\[([^\]]+)\]\(\.\./([^)#\s]+)(#[^)\s]*)?\)")


def _repository_links(app: Any, docname: str, source: list[str]) -> None:
    """Guides link to files beside docs/ (``../examples/crmkit-notes``), which GitHub shows but the site does not
    hold: name them as repository paths instead of leaving a broken link."""
    source[0] = _OUTSIDE.sub(r"\1 (`\2` in the repository)", source[0])


def setup(app: Any) -> None:
    app.connect("source-read", _repository_links)
