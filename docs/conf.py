"""Sphinx configuration for the sklearn_derand documentation."""

import os
import warnings

import sklearn_derand

project = "sklearn_derand"
author = "sklearn_derand developers"
copyright = "2026, sklearn_derand developers"
version = release = sklearn_derand.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    # MathJax served from the built site, not a CDN: math renders offline.
    "sphinx-mathjax-offline",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# Intersphinx needs the internet, which CI does not have: links to other
# projects' docs are written as plain text instead.
intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    # SKLEARN_DERAND_GALLERY=0 builds the pages without running the scripts.
    "plot_gallery": os.environ.get("SKLEARN_DERAND_GALLERY", "True"),
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
}

html_theme = "pydata_sphinx_theme"
html_title = "sklearn_derand"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = ["_static"]
# Gallery card titles wrap inside their card (a long class name ran into
# the next card at 1400 px; see docs/screenshots.sh).
html_css_files = ["custom.css"]
# The left sidebar lists the pages of the current section; the top-level
# pages have none, and showed an empty "Section Navigation" box.
html_sidebars = {
    page: []
    for page in ("index", "getting_started", "command_line", "scaling", "benchmarks")
}

# Matplotlib without a display; examples must not warn (the build fails on
# warnings, and so should they).
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("error", category=FutureWarning)


# Docstrings inherited from scikit-learn (``score``, ``get_metadata_routing``,
# ``johnson_lindenstrauss_min_dim``) refer to labels of scikit-learn's own
# user guide: resolve them to its website instead of warning.
SKLEARN_LABELS = {
    "metadata_routing": "metadata_routing.html",
    "r2_score": "modules/model_evaluation.html#r2-score",
    "johnson_lindenstrauss": "modules/random_projection.html#johnson-lindenstrauss",
}


def _sklearn_label(app, env, node, contnode):
    target = node.get("reftarget")
    if node.get("reftype") != "ref" or target not in SKLEARN_LABELS:
        return None
    from docutils import nodes

    uri = "https://scikit-learn.org/stable/" + SKLEARN_LABELS[target]
    reference = nodes.reference("", "", internal=False, refuri=uri)
    reference += contnode
    return reference


def setup(app):
    app.connect("missing-reference", _sklearn_label)
