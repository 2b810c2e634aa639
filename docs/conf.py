"""Sphinx configuration of minigen's documentation site (built by ``bash docs/build.sh``).

Sphinx reads the docstrings as they are written (reStructuredText, with ``:class:`` and ``:func:``
cross-references); MyST-NB renders the executed notebooks in ``tutorials/notebooks`` without
running them; furo is the theme.  Everything a page loads comes from the site itself: MathJax is
vendored from the npm package by ``docs/build.sh``, furo uses the system's fonts and inline SVG
icons, and Sphinx's search index is a local script.  ``docs/_ext/minigen_docs.py`` writes the
generated pages (API reference, tutorials, README sections) before the build reads anything.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))            # document this checkout's minigen, installed or not
sys.path.insert(0, str(DOCS / "_ext"))

import minigen  # noqa: E402  (after the sys.path lines above)

project = "minigen"
author = "the minigen authors"
copyright = "minigen authors, MIT license"
release = version = minigen.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "myst_nb",
    "sphinxarg.ext",
    "minigen_docs",
]

# Strictness: build.sh passes -W (warnings are errors) and -n (nitpicky: every cross-reference must
# resolve).  Pages outside every toctree, broken links and unknown references all fail the build.
nitpicky = True
exclude_patterns = ["_build", "_generated", "**.ipynb_checkpoints"]
templates_path = []
html_static_path = ["_static"]

# Notebooks: render the outputs stored in the committed notebooks; never execute them here.
nb_execution_mode = "off"
nb_ipywidgets_js = {}                    # no require.js or widget manager from a CDN
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# Math: MathJax 3 with SVG output (no web fonts to load), from _static/mathjax (see build.sh).
mathjax_path = "mathjax/tex-svg-full.js"
mathjax3_config = {"svg": {"fontCache": "global"},
                   "tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]}}

# API reference: signatures as written, members in source order, no type-hint rewriting; public
# methods without a docstring are listed too (they are part of the API), private ones are not.
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "undoc-members": True}   # bases: minigen_docs.py
add_module_names = True
smartquotes_action = "qe"                # quotes and ellipses, but "--flag" stays two hyphens

html_theme = "furo"
html_title = f"minigen {release}"
html_theme_options = {"navigation_with_keys": True}
html_show_sourcelink = False
html_copy_source = False
html_show_search_summary = False      # summaries fetch() each page, which file:// forbids
html_last_updated_fmt = None

if os.environ.get("MINIGEN_DOCS_QUIET"):
    keep_warnings = False
