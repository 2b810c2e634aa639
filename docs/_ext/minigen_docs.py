"""The generated half of minigen's documentation site: a small Sphinx extension.

Before Sphinx reads any page (``config-inited``), it writes, from the repository's own sources:

* ``docs/api/``: one page per public module (``minigen`` and each module in ``minigen.__all__``,
  ``mg.nn``, ``mg.losses``...), listing exactly that module's ``__all__``, grouped by the comments
  written in ``__all__``; an object exported by two modules is described once, where it is defined,
  and linked from the other;
* ``docs/tutorials/``: the executed notebooks of ``tutorials/notebooks`` (outputs as committed,
  never re-run), in file-name order, each with a link to its script, and ``tutorials/README.md`` as
  the index;
* ``docs/_generated/readme/``: sections of the README (Quickstart, Results, Performance, Layout...),
  included by the hand-written pages, so the README stays the one copy of that text;
* ``docs/_generated/architecture.md``: every module of the package in layers computed from its
  imports, each with its docstring, and the fused ops beside their references.

While Sphinx resolves cross-references (``missing-reference``), a docstring's reference to an object
by the path of the file that defines it (``:class:`~minigen.autograd.Function```) is sent to where
that object is documented (``minigen.Function``); Python's built-ins, other libraries' objects and
private helpers render as code.  Anything else that names nothing stays a warning, which ``-W``
turns into a failed build.  Docstrings are written for ``help()`` too, so each is prepared for
reStructuredText first (``autodoc-process-docstring``): see ``indented_blocks_as_code``.
"""

import ast
import importlib
import inspect
import io
import json
import os
import re
import shutil
import sys
import textwrap
import tokenize
import types
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent
ROOT = DOCS.parent
_BUILTIN_VALUES = (dict, list, tuple, set, frozenset, str, bytes, int, float, bool)

# The modules the issue requires on the site; each must be reachable from minigen.__all__.
REQUIRED = ["minigen", "minigen.nn", "minigen.losses", "minigen.distributions", "minigen.optim",
            "minigen.data", "minigen.metrics", "minigen.models"]


class DocsError(RuntimeError):
    """A source of the site is not as this generator expects (the message names it)."""


def _write(path, text):
    """Write only when the text changed, so Sphinx's incremental rebuilds stay incremental."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# Markdown from the repository: sections and relative links
# --------------------------------------------------------------------------------------------------

_LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")


def markdown_sections(path):
    """``{heading: body}`` for each ``## heading`` of a Markdown file, plus ``""``: the text before
    the first ``##`` heading, without the ``#`` title.  No line of a fenced code block is a
    heading."""
    sections, name, lines, fenced = {}, "", [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            sections[name] = "\n".join(lines).strip() + "\n"
            name, lines = line[3:].strip(), []
        elif not (not fenced and name == "" and line.startswith("# ")):
            lines.append(line)
    sections[name] = "\n".join(lines).strip() + "\n"
    return sections


def section(sections, heading, source):
    try:
        return sections[heading]
    except KeyError:
        have = ", ".join(repr(name) for name in sections if name)
        raise DocsError(f"{source}: the documentation site includes its section '## {heading}', "
                        f"which is missing (it has {have}); restore the heading or change "
                        f"docs/_ext/minigen_docs.py") from None


def _site_path(repo_path):
    """Where a repository file appears on the site (a path under docs/), or None."""
    parts = repo_path.relative_to(ROOT).parts
    if parts[:1] == ("docs",):
        return repo_path
    if parts == ("tutorials", "README.md") or parts == ("tutorials", "notebooks"):
        return DOCS / "tutorials" / "index.md"
    if parts[:2] == ("tutorials", "notebooks") and repo_path.suffix == ".ipynb":
        return DOCS / "tutorials" / repo_path.name
    if len(parts) == 2 and parts[0] == "tutorials" and repo_path.suffix == ".py":
        # a tutorial's script: on the site, its rendered page (which links the script itself)
        notebook = ROOT / "tutorials" / "notebooks" / f"{repo_path.stem}.ipynb"
        return DOCS / "tutorials" / (notebook.name if notebook.exists() else repo_path.name)
    if parts == ("README.md",):
        return DOCS / "index.md"
    return None


def rewrite_links(text, source_dirs, page_dir):
    """Point the relative links and images of Markdown written for the repository (relative to one
    of ``source_dirs``) at the same files on the site, for a page in ``page_dir``.  A link to a
    repository file that is not on the site keeps its text and loses the link; a link to nothing is
    left as it is, so the strict build reports it."""
    def replace(match):
        bang, label, target = match.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            return match.group(0)
        path_part, _, anchor = target.partition("#")
        for base in source_dirs:
            candidate = (base / path_part).resolve()
            if candidate.exists():
                break
        else:
            return match.group(0)
        on_site = _site_path(candidate)
        if on_site is None:
            return label if not bang else match.group(0)
        new = Path(os.path.relpath(on_site, page_dir)).as_posix() + (f"#{anchor}" if anchor else "")
        return f"{bang}[{label}]({new})"
    return _LINK.sub(replace, text)


def write_readme_fragments():
    """README sections as fragments under _generated/readme/, for pages at the root of docs/."""
    readme = ROOT / "README.md"
    sections = markdown_sections(readme)
    out = DOCS / "_generated" / "readme"

    def fragment(name, text, page_dir=DOCS):
        _write(out / f"{name}.md", rewrite_links(text, [ROOT], page_dir))

    def page_body(name, text):
        """A section that is a whole page, under its ``#`` title: ``###`` becomes ``##``."""
        lines, fenced = [], False
        for line in text.split("\n"):
            fenced = fenced != line.startswith("```")
            lines.append(line[1:] if not fenced and re.match(r"###+ ", line) else line)
        fragment(name, "\n".join(lines))

    fragment("intro", section(sections, "", readme))
    fragment("quickstart", section(sections, "Quickstart", readme))
    results = section(sections, "Results", readme)
    page_body("results", results)
    figures = [m.group(0) for m in _LINK.finditer(results) if m.group(1)]
    fragment("results_figures", " ".join(figures) + "\n")
    page_body("performance", section(sections, "Performance", readme))
    for name, heading in [("benchmarks", "Benchmarks"), ("layout", "Layout"), ("tests", "Tests"),
                          ("backends", "Backends, and keeping the GPU path honest without a GPU"),
                          ("reliability", "Reliability: what a run folder guarantees")]:
        fragment(name, section(sections, heading, readme))
    for name, heading in [("models", "Models from Python"), ("engine", "The engine")]:
        fragment(name, section(sections, heading, readme), DOCS / "api")   # for api/index.md
    # The command line's usage lines are generated from the parser on the same page: keep the prose.
    prose = re.sub(r"^```.*?^```\n*", "", section(sections, "The command line", readme),
                   flags=re.MULTILINE | re.DOTALL)
    fragment("command_line", prose)


# --------------------------------------------------------------------------------------------------
# Tutorials: the committed executed notebooks, in reading order
# --------------------------------------------------------------------------------------------------

def write_tutorials():
    """``docs/tutorials/``: each committed notebook with a note under its title that links its
    script (copied beside it for download), and ``tutorials/README.md`` as the index, whose hidden
    toctree puts the notebooks in file-name order (furo's previous/next links follow it)."""
    source = ROOT / "tutorials"
    out = DOCS / "tutorials"
    notebooks = sorted((source / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise DocsError("tutorials/notebooks holds no NN_name.ipynb notebook to render")
    wanted = {"index.md"}
    for nb_path in notebooks:
        script = source / f"{nb_path.stem}.py"
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                cell["source"] = rewrite_links(text, [source, source / "notebooks"], out)
        if script.exists():
            _copy(script, out / script.name)
            wanted.add(script.name)
            note = (f"*This page is the executed notebook `tutorials/notebooks/{nb_path.name}`. "
                    f"Its source is the script {{download}}`tutorials/{script.name} "
                    f"<{script.name}>`: run it with `python tutorials/{script.name}`, or open it "
                    f"in Jupyter with jupytext.*")
        else:
            note = f"*This page is the executed notebook `tutorials/notebooks/{nb_path.name}`.*"
        _insert_after_title(nb, note, nb_path)
        _write(out / nb_path.name, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        wanted.add(nb_path.name)

    readme = source / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Tutorials\n"
    text = re.sub(r"^# .*$", "# Tutorials", text, count=1, flags=re.MULTILINE)
    toctree = "\n".join(["", "```{toctree}", ":hidden:", ":maxdepth: 1", ""]
                        + [nb.stem for nb in notebooks] + ["```", ""])
    _write(out / "index.md", rewrite_links(text, [source], out) + toctree)
    for stale in out.iterdir():                     # a tutorial renamed or removed since last build
        if stale.name not in wanted and stale.is_file():
            stale.unlink()


def _copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dst)


def _insert_after_title(nb, note, nb_path):
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            lines = "".join(cell["source"]).split("\n")
            if not lines[0].startswith("# "):
                break
            cell["source"] = "\n".join([lines[0], "", note] + lines[1:])
            return
    raise DocsError(f"{nb_path}: the first markdown cell must start with the tutorial's '# ' title")


# --------------------------------------------------------------------------------------------------
# API reference: one page per public module, from its __all__
# --------------------------------------------------------------------------------------------------

def public_modules():
    """``minigen`` and every module named in its ``__all__`` (and theirs), in that order."""
    import minigen
    order, queue = [], [minigen]
    while queue:
        module = queue.pop(0)
        if module.__name__ in order:
            continue
        order.append(module.__name__)
        for name in _all(module):
            value = getattr(module, name)
            if isinstance(value, types.ModuleType) and value.__name__.startswith("minigen"):
                queue.append(value)
    missing = [m for m in REQUIRED if m not in order]
    if missing:
        raise DocsError(f"minigen.__all__ no longer reaches {', '.join(missing)}; the API "
                        f"reference must cover them")
    return order


def _all(module):
    names = getattr(module, "__all__", None)
    if names is None:
        raise DocsError(f"{module.__name__} has no __all__, and the API reference lists exactly "
                        f"__all__")
    missing = [n for n in names if not hasattr(module, n)]
    if missing:
        raise DocsError(f"{module.__name__}.__all__ names {', '.join(missing)}, which it does "
                        f"not have")
    return list(names)


def all_groups(module):
    """``[(heading or None, [names])]``: ``__all__`` split at the comment lines inside it."""
    names = _all(module)
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return [(None, names)]
    groups, inside, depth = [], False, 0
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for tok in tokens:
        if not inside:
            if tok.type == tokenize.NAME and tok.string == "__all__" and tok.start[1] == 0:
                inside = True
            continue
        if tok.type == tokenize.OP and tok.string in "([":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]":
            depth -= 1
            if depth == 0:
                break
        elif tok.type == tokenize.COMMENT and depth:
            heading = tok.string.lstrip("#").strip()
            groups.append((heading[:1].upper() + heading[1:], []))
        elif tok.type == tokenize.STRING and depth:
            if not groups:
                groups.append((None, []))
            groups[-1][1].append(tok.string.strip("\"'"))
    listed = [n for _, group in groups for n in group]
    if sorted(listed) != sorted(names):             # __all__ built by code: one plain group
        return [(None, names)]
    return [(h, g) for h, g in groups if g]


def _kind(value):
    if isinstance(value, types.ModuleType):
        return "module"
    if inspect.isclass(value):
        return "exception" if issubclass(value, BaseException) else "class"
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return "function"
    if callable(value) and hasattr(value, "__wrapped__"):
        return "function"
    return "data"


def _data_entry(fullname, value):
    """A constant: its name and what it holds (autodoc would show the docstring of its type)."""
    if isinstance(value, dict):
        what = f"A dict with keys {', '.join(f'``{k!r}``' for k in value)}."
    elif isinstance(value, _BUILTIN_VALUES) and len(repr(value)) <= 200:
        what = f"``{value!r}``"
    else:
        what = f"A ``{type(value).__name__}``."
    return [f".. py:data:: {fullname}", "", f"   {what}", ""]


def homes(modules):
    """``{id(object): documented name}`` for every class and function: an object listed by several
    public modules is described in the one that contains its definition most closely."""
    listed = {}
    for modname in modules:
        module = importlib.import_module(modname)
        for name in _all(module):
            value = getattr(module, name)
            if _kind(value) in ("class", "exception", "function"):
                listed.setdefault(id(value), (value, []))[1].append(modname)
    home = {}
    for key, (value, owners) in listed.items():
        defined = getattr(value, "__module__", "") or ""
        covering = [m for m in owners if defined == m or defined.startswith(m + ".")]
        owner = max(covering, key=len) if covering else owners[0]
        home[key] = f"{owner}.{value.__name__}" if owner else value.__name__
    return home


def write_api(modules, home):
    out = DOCS / "api"
    pages = []
    for modname in modules:
        module = importlib.import_module(modname)
        lines = [modname, "=" * len(modname), "",
                 f".. automodule:: {modname}", "   :no-members:", ""]
        for heading, names in all_groups(module):
            if heading:
                lines += [heading, "-" * len(heading), ""]
            lines += [".. autosummary::", "   :nosignatures:", ""]
            lines += [f"   {n}" for n in names] + [""]
            for name in names:
                value = getattr(module, name)
                kind = _kind(value)
                if kind == "module":
                    continue
                if kind != "data" and home[id(value)] != f"{modname}.{name}":
                    continue                         # described where it is defined; linked above
                if kind == "data":
                    lines += _data_entry(f"{modname}.{name}", value)
                else:
                    lines += [f".. auto{kind}:: {modname}.{name}"]
                    if kind != "function" and value.__bases__ not in ((object,), (Exception,)):
                        lines.append("   :show-inheritance:")       # "Bases: object" says nothing
                    lines.append("")
        _write(out / f"{modname}.rst", "\n".join(lines))
        pages.append(modname)
    intro = ("Every public name of minigen, generated from the docstrings. Each page lists exactly "
             "its module's `__all__`, grouped as the module groups it; an object exported by two "
             "modules (`mg.VAE` and `mg.models.VAE`) is described where it is defined and linked "
             "from the other.")
    index = ["# API reference", "", intro, "", "```{toctree}", ":hidden:", ""] + pages
    index += ["```", "", "```{eval-rst}", ".. autosummary::", ""]
    index += [f"   {name}" for name in pages] + ["```", ""]
    index += ["## The engine", "", "```{include} ../_generated/readme/engine.md", "```", "",
              "## Models from Python", "", "```{include} ../_generated/readme/models.md", "```", ""]
    _write(out / "index.md", "\n".join(index))
    for stale in out.iterdir():
        if stale.suffix == ".rst" and stale.stem not in pages:
            stale.unlink()


# --------------------------------------------------------------------------------------------------
# How minigen is built: its modules in layers, from their imports; the fused ops and references
# --------------------------------------------------------------------------------------------------

def package_modules():
    """``{module name: file}`` for every module of the package (``minigen.nn`` for its __init__)."""
    found = {}
    for path in sorted((ROOT / "minigen").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def module_imports(name, path, known):
    """The package's modules that ``name`` imports in its header.  An import inside a function, or
    one placed after the module's own definitions (``autograd`` imports ``functions`` at its end, to
    give Tensor its operators), is a deliberate late import and makes no layer."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    deps = set()
    for i, node in enumerate(ast.parse(path.read_text(encoding="utf-8")).body):
        docstring = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if not isinstance(node, (ast.Import, ast.ImportFrom)) and not docstring:
            break
        if isinstance(node, ast.Import):
            deps.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            if node.module:                       # "from . import backend" needs backend only
                deps.add(base)
            deps.update(f"{base}.{alias.name}" for alias in node.names)
    return sorted(d for d in deps if d in known and d != name)


def layers(known):
    """``([[module, ...], ...], imports)``: layer 0 imports nothing from minigen, layer k only from
    the layers below k.  Modules caught in an import cycle make one last layer."""
    deps = {name: module_imports(name, path, known) for name, path in known.items()}
    level = {}
    for _ in range(len(deps) + 1):
        for name, needs in deps.items():
            if name not in level and all(d in level for d in needs):
                level[name] = 1 + max((level[d] for d in needs), default=-1)
    stack = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for name in sorted(level):
        stack[level[name]].append(name)
    rest = sorted(set(deps) - set(level))
    return (stack + [rest] if rest else stack), deps


def fused_groups(fused):
    """``minigen.fused.__all__`` cut at each ``*_reference``: [(reference, [what replaces it])]."""
    groups = []
    for name in _all(fused):
        if name.endswith("_reference"):
            groups.append((name, []))
        elif groups:
            groups[-1][1].append(name)
    return groups


def write_architecture(public, home):
    """``_generated/architecture.md``: every module in its layer with its docstring, then the table
    of fused ops and their references and the documentation of ``minigen.fused``."""
    known = package_modules()
    stack, deps = layers(known)
    fused = importlib.import_module("minigen.fused") if "minigen.fused" in known else None
    intro = ("Generated from each module's imports: a module in layer *k* imports only modules of "
             "the layers below it, so reading them in this order you never meet a name that has "
             "not been explained. (A package's `__init__`, after its modules, only gathers names.)")
    lines = ["## The layers, from the imports", "", intro, "",
             "| layer | modules |", "| --- | --- |"]
    lines += [f"| {number} | " + ", ".join(f"{{py:mod}}`{name}`" for name in names) + " |"
              for number, names in enumerate(stack)]
    lines.append("")
    named = set(home.values())              # mg.gradcheck, the function, is not minigen.gradcheck
    for number, names in enumerate(stack):
        lines += [f"### Layer {number}", ""]
        for name in names:
            uses = ", ".join(f"`{d}`" for d in deps[name]) or "nothing from minigen"
            link = f" ([API reference](api/{name}.rst))" if name in public else ""
            lines += [f"#### `{name}`{link}", "", f"*Imports {uses}.*", "",
                      "```{eval-rst}", f".. automodule:: {name}", "   :no-members:"]
            indexed = name not in public and name not in named
            indexed = indexed and not (fused and name == fused.__name__)
            lines += ([] if indexed else ["   :no-index:"]) + ["```", ""]
    if fused is not None:
        about = ("Each fused op computes what its reference computes with a few primitive ops, in "
                 "fewer passes over memory and as one graph node. `mg.set_fusion(False)` makes "
                 "every model run on the references instead. The table is generated from "
                 "`minigen.fused.__all__`.")
        lines += ["## Fused ops beside their references", "", about, "",
                  "| reference | what replaces it |", "| --- | --- |"]
        for reference, replacements in fused_groups(fused):
            targets = ", ".join(
                f"{{py:obj}}`{home.get(id(getattr(fused, r)), f'{fused.__name__}.{r}')}`"
                for r in replacements)
            lines.append(f"| {{py:func}}`{fused.__name__}.{reference}` | {targets} |")
        elsewhere = [n for n in _all(fused) if id(getattr(fused, n)) in home]
        lines += ["", "```{eval-rst}", f".. automodule:: {fused.__name__}", "   :members:",
                  "   :show-inheritance:"]
        lines += [f"   :exclude-members: {', '.join(elsewhere)}"] if elsewhere else []
        lines += ["```", ""]
    _write(DOCS / "_generated" / "architecture.md", "\n".join(lines))


# --------------------------------------------------------------------------------------------------
# Sphinx hooks
# --------------------------------------------------------------------------------------------------

_HOME = {}


def generate(app, config):
    # _static holds only what build.sh vendors (git-ignored), so a fresh clone has no such folder;
    # Sphinx warns about a missing html_static_path entry, and a warning fails the build.
    (DOCS / "_static").mkdir(exist_ok=True)
    modules = public_modules()
    _HOME.clear()
    _HOME.update(homes(modules))
    write_api(modules, _HOME)
    write_architecture(modules, _HOME)
    write_tutorials()
    write_readme_fragments()


def _lookup(target):
    """The object a dotted path names, importing the longest importable module prefix; or None."""
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                value = getattr(value, attr)
        except AttributeError:
            return None
        return value
    return None


def resolve_alias(app, env, node, contnode):
    """A reference by the defining file's path (``minigen.autograd.Function``), or one relative to a
    page where the object is only linked (``draw_graph`` on the ``minigen`` page), is sent to where
    the object is documented; a real object that is not on the site (a private helper) and a
    Python built-in render as code.  A reference to nothing stays unresolved: a warning."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    if target.startswith("minigen."):
        candidates = [target]
    else:
        module, cls = node.get("py:module"), node.get("py:class")
        candidates = [f"{module}.{cls}.{target}"] if module and cls else []
        candidates += [f"{module}.{target}"] if module else []
    domain = env.get_domain("py")
    for candidate in candidates:
        parts = candidate.split(".")
        for cut in range(len(parts), 1, -1):      # the longest prefix that is a documented object
            value = _lookup(".".join(parts[:cut]))
            if value is not None and id(value) in _HOME:
                new = ".".join([_HOME[id(value)]] + parts[cut:])
                if new != candidate:
                    found = domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"],
                                                new, node, contnode)
                    if found is not None:
                        return found
                break
    for candidate in candidates:
        if candidate.startswith("minigen.") and _lookup(candidate) is not None:
            return contnode                           # real, but not on the site: code, no link
    import builtins
    if hasattr(builtins, target):
        return contnode
    if "." in target and not target.startswith("minigen.") and _lookup(target) is not None:
        return contnode                               # another library's (no intersphinx offline)
    return None


_TABLE_BORDER = re.compile(r"^\s*(=+( +=+)+|\+(-+\+)+)\s*$")
_NOT_PROSE = re.compile(r"^(\.\. |=+\s|:[\w -]+:)")
_LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)]) +")


def indented_blocks_as_code(app, what, name, obj, options, lines):
    """minigen's docstrings are written for ``help()`` as much as for the site: an indented block
    after a paragraph (an example, a formula, an update rule), with or without a blank line
    between, is text to show exactly as written.  reStructuredText would read it as a block quote
    or a definition list and reflow it, so mark each such block literal (a ``::`` line, which
    renders as nothing) and end it with a blank line.  A constant's docstring is its type's: drop
    it."""
    type_doc = (type(obj).__doc__ or "").strip()
    if isinstance(obj, _BUILTIN_VALUES) and "\n".join(lines).strip() == type_doc:
        lines[:] = []
        return
    if what == "module" and obj.__doc__:
        # A module's docstring starts at column 0, so an example indented under its first line is
        # indented; autodoc's dedent (by the smallest indent after line 1) would erase that.
        raw = obj.__doc__.expandtabs().strip("\n").splitlines()
        lines[:] = [line.rstrip() for line in raw] + [""]
    out, previous, block = [], "", None       # block: the indent the literal block sits under
    table = False                             # inside a reST table, indentation is layout
    blocks = []                               # [marker index, first line, end] of each block
    raw, quoted = None, ""                    # inside an author's literal block; open backquotes
    for line in lines:
        indent = len(line) - len(line.lstrip()) if line.strip() else None
        if _TABLE_BORDER.match(line):
            table = True
        elif table and indent is None and _TABLE_BORDER.match(previous):
            table = False
        if table:
            out.append(line)
            previous = line if line.strip() else previous
            continue
        if block is not None and indent is not None and indent <= block:
            block = None                          # the block ends: reST wants a blank line here
            blocks[-1][2] = len(out)
            if out and out[-1].strip():
                out.append("")
        base = _content_indent(previous)
        if block is None and indent is not None and base is not None and indent > base:
            marker = " " * base + "::"            # inside a list item, the marker is indented too
            out += (["", marker, ""] if out and out[-1].strip() else [marker, ""])
            block = base
            blocks.append([len(out) - 2, len(out), len(out)])
        if indent is not None:                    # an author's own literal block or directive
            if raw is not None and indent <= raw:
                raw = None
            opens = previous.rstrip().endswith("::") or previous.lstrip().startswith(".. ")
            above = len(previous) - len(previous.lstrip())
            if raw is None and previous.strip() and opens and indent > above:
                raw = above
        if block is None and raw is None:
            line, quoted = _escape_bars(line, quoted)
        out.append(line)
        if line.strip():
            previous = line
    if block is not None:
        blocks[-1][2] = len(out)
    for marker, start, end in blocks:             # Python is highlighted; a formula is just text
        if not _is_python(out[start:end]):
            out[marker] = out[marker].replace("::", ".. code-block:: text")
    lines[:] = out


def _escape_bars(line, quoted):
    """``|g|`` in prose means an absolute value, but reST reads it as a substitution: escape each
    ``|`` outside backquotes.  ``quoted`` is the backquote run left open by the previous line."""
    out, i = [], 0
    while i < len(line):
        if line[i] == "`":
            run = len(line[i:]) - len(line[i:].lstrip("`"))
            ticks = line[i:i + run]
            if not quoted:
                quoted = ticks
            elif ticks.startswith(quoted):
                quoted = ""
            out.append(ticks)
            i += run
            continue
        out.append("\\|" if line[i] == "|" and not quoted and line[i - 1:i] != "\\" else line[i])
        i += 1
    return "".join(out), quoted


def _is_python(lines):
    try:
        ast.parse(textwrap.dedent("\n".join(lines)))
    except SyntaxError:
        return False
    return True


def _content_indent(line):
    """Where the text of a prose line starts (after a list marker), or None for a line after which
    an indented block means something else: nothing yet, a directive, a field, a ``::`` line."""
    if not line.strip() or line.rstrip().endswith("::") or _NOT_PROSE.match(line.lstrip()):
        return None
    item = _LIST_ITEM.match(line)
    return item.end() if item else len(line) - len(line.lstrip())


_ROLE = re.compile(r":(func|class|meth|attr|data|obj|exc|mod):`([A-Za-z_][\w.]*)`")


def qualify_references(app, what, name, obj, options, lines):
    """A docstring's short reference (``:func:`dense_reference```) means a name of the file that
    defines the object; the object may be described on another module's page (``mg.nn.dense`` is
    defined in ``minigen/fused.py``), so write the defining module into the target."""
    home = obj if inspect.ismodule(obj) else sys.modules.get(getattr(obj, "__module__", "") or "")
    if home is None or not home.__name__.startswith("minigen"):
        return

    def replace(match):
        role, target = match.groups()
        first = target.split(".")[0]
        if target.startswith("minigen.") or not hasattr(home, first):
            return match.group(0)
        return f":{role}:`{target} <{home.__name__}.{target}>`"
    lines[:] = [_ROLE.sub(replace, line) for line in lines]


def setup(app):
    app.connect("config-inited", generate)
    app.connect("autodoc-process-docstring", indented_blocks_as_code)
    app.connect("autodoc-process-docstring", qualify_references)
    app.connect("missing-reference", resolve_alias)
    app.setup_extension("sphinx.ext.autosummary")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
