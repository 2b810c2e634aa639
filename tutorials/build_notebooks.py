"""Regenerate the executed notebooks in tutorials/notebooks/ from the tutorial scripts.

    pip install -e ".[tutorials]"
    python tutorials/build_notebooks.py            # every tutorial
    python tutorials/build_notebooks.py 03 04      # only tutorials whose names start with 03 or 04
    python tutorials/build_notebooks.py --text-only 05   # prose edits: markdown only, no re-run

Each ``tutorials/NN_slug.py`` (a jupytext "percent" script, the one source of truth) is converted to
a notebook, executed top to bottom at full quality (``MINIGEN_TUTORIAL_SMOKE`` is removed from the
environment) in a temporary working folder, so that the PNG files it writes stay out of the
repository, and saved as ``tutorials/notebooks/NN_slug.ipynb`` with its outputs and figures. Cell
ids and metadata are made deterministic, so that rebuilding an unchanged tutorial changes little in
git.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "notebooks"
SIZE_LIMIT = 400_000      # bytes: light enough for the web, room for legible MNIST grids
TIMEOUT = 3600            # seconds per cell: tutorial 9 trains ~25 min on a busy 2-core machine


def _require(*names):
    missing = []
    for name in names:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        sys.exit(f"build_notebooks: missing {', '.join(missing)}; install them with "
                 "pip install -e \".[tutorials]\"")


def tutorial_scripts(prefixes=()):
    scripts = sorted(HERE.glob("[0-9][0-9]_*.py"))
    if prefixes:
        scripts = [s for s in scripts if any(s.name.startswith(p) for p in prefixes)]
    return scripts


def build(script):
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    notebook = jupytext.read(script, fmt="py:percent")
    notebook.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}}
    with tempfile.TemporaryDirectory(prefix="minigen-tutorial-") as workdir:
        client = NotebookClient(notebook, timeout=TIMEOUT, kernel_name="python3",
                                record_timing=False, resources={"metadata": {"path": workdir}})
        client.execute()
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number:03d}"
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs = _merge_streams(cell.outputs)
    notebook.metadata.pop("widgets", None)
    nbformat.validate(notebook)
    target = OUT / (script.stem + ".ipynb")
    nbformat.write(notebook, target)
    return target


def refresh_text(script):
    """Copy the script's markdown cells into its executed notebook, keeping every output.

    For edits to the prose only: when the code cells are unchanged, the outputs are still the ones
    the code produces, and re-running a long tutorial to fix a sentence wastes minutes. Refuses,
    with the reason, when the code cells or the cell layout differ: then rebuild the notebook.
    """
    import jupytext
    import nbformat

    fresh = jupytext.read(script, fmt="py:percent")
    target = OUT / (script.stem + ".ipynb")
    if not target.exists():
        sys.exit(f"build_notebooks: {target.name} does not exist yet; build it first")
    notebook = nbformat.read(target, as_version=4)
    layout = [c.cell_type for c in fresh.cells], [c.cell_type for c in notebook.cells]
    code = ([c.source for c in fresh.cells if c.cell_type == "code"],
            [c.source for c in notebook.cells if c.cell_type == "code"])
    if layout[0] != layout[1] or code[0] != code[1]:
        sys.exit(f"build_notebooks: the code of {script.name} changed since {target.name} was "
                 f"executed; rebuild it (python tutorials/build_notebooks.py {script.stem[:2]})")
    for new, old in zip(fresh.cells, notebook.cells):
        if new.cell_type == "markdown":
            old.source = new.source
    nbformat.validate(notebook)
    nbformat.write(notebook, target)
    return target


def _merge_streams(outputs):
    """Join consecutive prints to the same stream into one output: how the kernel happened to split
    them depends on timing, and should not show up as a change in git."""
    merged = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.output_type == "stream" and previous is not None
                and previous.output_type == "stream" and previous.name == output.name):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*",
                        help="build only tutorials whose names start with these")
    parser.add_argument("--text-only", action="store_true",
                        help="copy only the markdown into the executed notebooks, without running "
                             "them (refused when any code cell changed)")
    args = parser.parse_args(argv)
    _require("jupytext", "nbclient", "nbformat", "ipykernel")

    # The notebooks show the full-quality results, with figures drawn by the notebook backend.
    for name in ("MINIGEN_TUTORIAL_SMOKE", "MPLBACKEND"):
        os.environ.pop(name, None)

    scripts = tutorial_scripts(args.prefixes)
    if not scripts:
        sys.exit(f"build_notebooks: no tutorial matches {' '.join(args.prefixes)}")
    OUT.mkdir(exist_ok=True)
    if args.text_only:
        for script in scripts:
            print(f"{refresh_text(script).relative_to(HERE.parent)}: markdown refreshed")
        return
    too_large = []
    for script in scripts:
        start = time.perf_counter()
        target = build(script)
        size = target.stat().st_size
        print(f"{target.relative_to(HERE.parent)}: {size / 1000:.0f} kB, "
              f"{time.perf_counter() - start:.0f} s")
        if size > SIZE_LIMIT:
            too_large.append(target.name)
    if too_large:
        sys.exit(f"build_notebooks: over {SIZE_LIMIT // 1000} kB: {', '.join(too_large)} "
                 "(use fewer or smaller figures)")


if __name__ == "__main__":
    main()
