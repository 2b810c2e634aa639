"""The generator behind the documentation site (docs/_ext/minigen_docs.py) and the event checks
of its browser test (docs/check_site.py): plain Python, so tested without Sphinx or a browser.  The
site itself is built and opened in Chromium by .ci/run (bash docs/build.sh, docs/check_site.py)."""

import importlib
import re
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS))
minigen_docs = importlib.import_module("minigen_docs")
check_site = importlib.import_module("check_site")


def transform(text, obj=None, what="function"):
    lines = text.split("\n")
    minigen_docs.indented_blocks_as_code(None, what, "x", obj, {}, lines)
    return "\n".join(lines)


def test_indented_block_after_a_paragraph_becomes_literal():
    # Python (highlighted as such) or anything else (a formula, shown as plain text)
    assert transform("Example:\n\n    y = mg.exp(x)\n\nThen more.") == \
        "Example:\n\n::\n\n    y = mg.exp(x)\n\nThen more."
    assert transform("Update:\n\n    p <- p - lr * g   if nesterov\n\nThen more.") == \
        "Update:\n\n.. code-block:: text\n\n    p <- p - lr * g   if nesterov\n\nThen more."


def test_indented_block_without_blank_lines_is_closed_properly():
    # reST would read this as a definition list and complain about the unindent
    assert transform("Backward:\n    dL/dx = g\nafter") == \
        "Backward:\n\n.. code-block:: text\n\n    dL/dx = g\n\nafter"


def test_indented_block_inside_a_list_item_stays_in_the_item():
    assert transform("* the loss,\n\n      L = a\n          + b\n\n  more") == \
        "* the loss,\n\n  .. code-block:: text\n\n      L = a\n          + b\n\n  more"


def test_bars_in_prose_are_absolute_values_not_substitutions():
    assert transform("the largest |g| of ``|x|`` and :math:`\\|g\\|`,\nthen ||w||.") == \
        "the largest \\|g\\| of ``|x|`` and :math:`\\|g\\|`,\nthen \\|\\|w\\|\\|."
    untouched = ".. math::\n\n    |x|\n\nand ``a\n|b|``"
    assert transform(untouched) == untouched


def test_literal_blocks_lists_directives_and_tables_are_left_alone():
    for text in ["Example::\n\n    code",
                 "* item\n  continued",
                 ".. math::\n\n    x^2",
                 "===  ===\na    b\n     continued\n===  ===\n\ntext"]:
        assert transform(text) == text


def test_a_constants_docstring_is_its_types_and_is_dropped():
    value = {"a": 1}
    assert transform(type(value).__doc__, obj=value, what="data") == ""


def test_module_docstring_keeps_the_indent_of_its_example():
    module = types.ModuleType("m", "Title.\n\n    x = 1\n    y = 2\n")
    lines = ["Title.", "", "x = 1", "y = 2", ""]          # as autodoc's dedent leaves it
    minigen_docs.indented_blocks_as_code(None, "module", "m", module, {}, lines)
    assert lines == ["Title.", "", "::", "", "    x = 1", "    y = 2", ""]      # Python


def test_short_references_are_qualified_with_the_defining_module():
    from minigen import fused
    lines = [":func:`dense_reference` and :class:`minigen.Tensor` and :meth:`nothing_here`"]
    minigen_docs.qualify_references(None, "function", "minigen.nn.dense", fused.dense, {}, lines)
    expected = (":func:`dense_reference <minigen.fused.dense_reference>` and "
                ":class:`minigen.Tensor` and :meth:`nothing_here`")
    assert lines == [expected]


def test_markdown_sections_ignore_headings_inside_code_fences(tmp_path):
    path = tmp_path / "R.md"
    path.write_text("# T\nintro\n## A\na\n```bash\n## not a heading\n```\n## B\nb\n")
    sections = minigen_docs.markdown_sections(path)
    assert list(sections) == ["", "A", "B"]
    assert sections[""] == "intro\n"
    assert "## not a heading" in sections["A"]
    with pytest.raises(minigen_docs.DocsError, match="'## C'.*'A', 'B'"):
        minigen_docs.section(sections, "C", path)


def test_links_written_for_the_repository_point_at_the_site():
    root, docs = minigen_docs.ROOT, minigen_docs.DOCS
    text = ("![f](docs/speed_sweep.png) [t](tutorials/README.md) [w](https://x.org/a) "
            "[l](LICENSE) [gone](no/such/file.md) [s](#quickstart)")
    assert minigen_docs.rewrite_links(text, [root], docs) == (
        "![f](speed_sweep.png) [t](tutorials/index.md) [w](https://x.org/a) "
        "l [gone](no/such/file.md) [s](#quickstart)")
    notebooks = sorted((root / "tutorials" / "notebooks").glob("*.ipynb"))
    name = notebooks[0].name
    tutorial = f"[n](notebooks/{name}) [d](notebooks/) [s]({notebooks[0].stem}.py)"
    assert minigen_docs.rewrite_links(tutorial, [root / "tutorials"], docs / "tutorials") == \
        f"[n]({name}) [d](index.md) [s]({name})"          # a script's page is its notebook


def test_the_api_reference_covers_every_public_module_and_name():
    modules = minigen_docs.public_modules()
    assert set(minigen_docs.REQUIRED) <= set(modules)
    for name in modules:
        module = importlib.import_module(name)
        grouped = [n for _, group in minigen_docs.all_groups(module) for n in group]
        assert grouped == list(module.__all__)
    home = minigen_docs.homes(modules)
    import minigen as mg
    assert home[id(mg.VAE)] == "minigen.models.VAE"          # defined in minigen/models/vae.py
    assert home[id(mg.Tensor)] == "minigen.Tensor"           # minigen.autograd has no page
    assert home[id(mg.reparameterize)] == "minigen.distributions.reparameterize"


def test_the_readme_layout_names_every_module():
    # the README's Layout section is where a newcomer learns what each file is: a module added
    # without a line there is a module nobody is told about
    root = DOCS.parent
    layout = minigen_docs.markdown_sections(root / "README.md")["Layout"]
    package = root / "minigen"
    files = [p for p in package.rglob("*.py") if p.name != "__init__.py"]
    files += [p for p in package.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]
    named = set(re.findall(r"(?<![\w.])([\w.]+\.py|\w+/)", layout))   # vaegan.py is not gan.py
    missing = sorted(str(p.relative_to(package)) for p in files
                     if (p.name + ("/" if p.is_dir() else "")) not in named)
    assert not missing, f"README.md's Layout section does not mention {missing}"


def test_layers_follow_the_imports():
    known = minigen_docs.package_modules()
    stack, deps = minigen_docs.layers(known)
    level = {name: k for k, names in enumerate(stack) for name in names}
    assert set(level) == set(known)
    for name, needs in deps.items():
        assert all(level[d] < level[name] for d in needs), (name, needs)
    assert level["minigen.backend"] < level["minigen.autograd"] < level["minigen.functions"]
    assert "minigen.functions" not in deps["minigen.autograd"]   # its late import makes no layer


def test_fused_groups_pair_each_reference_with_what_replaces_it():
    from minigen import fused
    groups = dict(minigen_docs.fused_groups(fused))
    assert all(name.endswith("_reference") for name in groups)
    assert all(groups.values())


def test_browser_events_that_fail_the_check():
    s = "S1"
    events = [
        {"sessionId": s, "method": "Network.requestWillBeSent",
         "params": {"request": {"url": "https://cdn.example.org/mathjax.js"}}},
        {"sessionId": s, "method": "Network.requestWillBeSent",
         "params": {"request": {"url": "file:///site/_static/x.js"}}},
        {"sessionId": s, "method": "Network.requestWillBeSent",
         "params": {"request": {"url": "data:image/png;base64,AA=="}}},
        {"sessionId": s, "method": "Runtime.consoleAPICalled",
         "params": {"type": "error", "args": [{"value": "boom"}]}},
        {"sessionId": s, "method": "Runtime.consoleAPICalled",
         "params": {"type": "log", "args": [{"value": "fine"}]}},
        {"sessionId": s, "method": "Runtime.exceptionThrown",
         "params": {"exceptionDetails": {"text": "Uncaught", "exception": {"description": "E"}}}},
        {"sessionId": s, "method": "Log.entryAdded",
         "params": {"entry": {"level": "error", "text": "Failed to load", "url": "file:///a"}}},
        {"sessionId": "other", "method": "Runtime.consoleAPICalled",
         "params": {"type": "error", "args": [{"value": "another tab"}]}},
    ]
    assert check_site.problems_in(events, s) == [
        "request leaves file://: https://cdn.example.org/mathjax.js",
        "console error: boom",
        "uncaught exception: E",
        "console error: Failed to load (file:///a)",
    ]


def test_static_scan_finds_what_a_page_would_fetch(tmp_path):
    (tmp_path / "a.html").write_text(
        '<script src="https://cdn.example.org/require.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/css">'
        '<link rel="next" href="https://example.org/next.html">'      # a link, not a load
        '<a href="https://example.org/">x</a><img src="local.png">'
        '<script src="_static/mathjax/tex-svg-full.js"></script>')
    (tmp_path / "s.css").write_text("@font-face { src: url('https://fonts.example.org/f.woff2') }")
    assert check_site.static_external_loads(tmp_path) == [
        "a.html: https://cdn.example.org/require.js",
        "a.html: //fonts.example.org/css",
        "s.css: https://fonts.example.org/f.woff2",
    ]
