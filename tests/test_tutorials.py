"""The tutorials: each runs in smoke mode, each notebook matches its script, every exercise has a
worked solution in tutorials/solutions/ (which also runs in smoke mode), the README lists them all.

Tutorials are found by name (``tutorials/NN_slug.py``), so a new one is tested as soon as it exists.
The notebook comparison parses the jupytext "percent" format and the .ipynb JSON directly, so it
needs nothing beyond the standard library.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = TUTORIALS / "notebooks"
SCRIPTS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
SOLUTIONS = sorted((TUTORIALS / "solutions").glob("[0-9][0-9]_*.py"))
SMOKE_LIMIT_S = 60        # the budget per tutorial on two CPU cores
NOTEBOOK_LIMIT = 400_000  # bytes, as tutorials/build_notebooks.py


def _ids(paths):
    return [p.stem for p in paths]


# --------------------------------------------------------------------------------------------------
# Parsing the two formats
# --------------------------------------------------------------------------------------------------

def script_cells(path):
    """The cells of a jupytext percent script as (cell_type, source) pairs.

    A line starting with ``# %%`` opens a cell (markdown when it says ``[markdown]``); a markdown
    cell's lines lose their leading ``# `` (or a lone ``#``). Sources are stripped of surrounding
    blank lines.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("# %%"), \
        f"{path.name} must start with a '# %%' cell marker"
    cells, kind, body = [], None, []

    def close():
        if kind == "markdown":
            text = [line[2:] if line.startswith("# ") else line[1:] if line == "#" else line
                    for line in body]
        else:
            text = body
        cells.append((kind, "\n".join(text).strip()))

    for line in lines:
        if line.startswith("# %%"):
            if kind is not None:
                close()
            kind, body = ("markdown" if "[markdown]" in line else "code"), []
        else:
            body.append(line)
    close()
    return cells


def notebook_cells(path):
    """The cells of an .ipynb file as (cell_type, source) pairs, and the parsed notebook."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for cell in notebook["cells"]:
        source = cell["source"]
        text = "".join(source) if isinstance(source, list) else source
        cells.append((cell["cell_type"], text.strip()))
    return cells, notebook


# --------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------

def test_tutorials_exist():
    assert SCRIPTS, f"no tutorials found in {TUTORIALS}"


def run_in_smoke_mode(script, folder):
    """Run ``script`` as a learner would, in smoke mode, in ``folder``; fail showing its output."""
    # one BLAS thread: on a machine shared with other jobs, threads fighting over the cores can make
    # small matrix products ten times slower
    env = dict(os.environ, MINIGEN_TUTORIAL_SMOKE="1", MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(script)], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=5 * SMOKE_LIMIT_S)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n--- stdout (end) "
        f"---\n{result.stdout[-3000:]}\n--- stderr (end) ---\n{result.stderr[-3000:]}")
    assert elapsed < SMOKE_LIMIT_S, f"{script.name} took {elapsed:.0f} s in smoke mode"
    return result.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_tutorial_runs_in_smoke_mode(script, tmp_path):
    stdout = run_in_smoke_mode(script, tmp_path)
    figures = sorted(p.name for p in tmp_path.glob("*.png"))
    missing = [line for line in stdout.splitlines() if "could not be loaded" in line]
    if not figures and missing:   # a tutorial that needs its data stops early, and says so
        pytest.skip(f"{script.name} stopped early without its data: {missing[0][:200]}")
    assert figures, f"{script.name} wrote no PNG figure to its working folder"


def test_tutorial_12_without_any_image_data_trains_on_synthetic_shapes(tmp_path, monkeypatch):
    # no MINIGEN_DATA and an empty download cache (HOME): the tutorial falls back to shapes it
    # draws itself, and still trains the three models and measures them
    monkeypatch.delenv("MINIGEN_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    script = TUTORIALS / "12_vaegan_on_images.py"
    stdout = run_in_smoke_mode(script, tmp_path)
    assert "uses synthetic shapes instead" in stdout and "VAE-GAN" in stdout
    assert {"samples_vae.png", "samples_dcgan.png", "samples_vae-gan.png",
            "frechet_blur_noise.png"} <= {p.name for p in tmp_path.glob("*.png")}


@pytest.mark.parametrize("script", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_solution_runs_in_smoke_mode(script, tmp_path):
    run_in_smoke_mode(script, tmp_path)


def exercise_numbers(script):
    """The numbers of the exercises listed under a tutorial's '## Exercises' heading."""
    text = script.read_text(encoding="utf-8")
    section = text.split("## Exercises", 1)[1] if "## Exercises" in text else ""
    return [int(m) for m in re.findall(r"^# (\d+)\. ", section, flags=re.MULTILINE)]


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_every_exercise_has_a_worked_solution(script):
    numbers = exercise_numbers(script)
    assert numbers, f"{script.name} lists no numbered exercises under '## Exercises'"
    solution = TUTORIALS / "solutions" / script.name
    assert solution.exists(), (f"{script.name} has exercises but no worked solutions: write "
                               f"tutorials/solutions/{script.name}")
    text = solution.read_text(encoding="utf-8")
    missing = [n for n in numbers if not re.search(rf"^# ## Exercise {n}\b", text, re.MULTILINE)]
    assert not missing, \
        f"tutorials/solutions/{script.name} has no '## Exercise N' for N in {missing}"


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_tutorial_structure(script):
    cells = script_cells(script)
    kinds = [kind for kind, _ in cells]
    assert kinds[0] == "markdown" and "code" in kinds
    text = script.read_text(encoding="utf-8")
    assert 'os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"' in text, "no smoke switch"
    assert "## What you learned" in text and "## Exercises" in text, \
        f"{script.name} must end with 'What you learned' and exercises"


def test_every_script_has_a_notebook_and_every_notebook_a_script():
    scripts = {p.stem for p in SCRIPTS}
    notebooks = {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    assert scripts - notebooks == set(), (
        f"tutorials without an executed notebook: {sorted(scripts - notebooks)}; "
        "run python tutorials/build_notebooks.py")
    assert notebooks - scripts == set(), \
        f"notebooks without a tutorial script: {sorted(notebooks - scripts)}"


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_notebook_matches_its_script(script):
    path = NOTEBOOKS / (script.stem + ".ipynb")
    if not path.exists():
        pytest.fail(f"{path.name} is missing; "
                    f"run python tutorials/build_notebooks.py {script.stem[:2]}")
    expected = script_cells(script)
    found, notebook = notebook_cells(path)
    stale = (f"{path.name} is out of date with {script.name}; "
             f"run python tutorials/build_notebooks.py {script.stem[:2]}")
    expected_code = [source for kind, source in expected if kind == "code"]
    found_code = [source for kind, source in found if kind == "code"]
    assert found_code == expected_code, stale + " (code cells differ)"
    assert found == expected, stale + " (markdown cells differ)"

    ids = [cell.get("id") for cell in notebook["cells"]]
    assert len(set(ids)) == len(ids), f"{path.name} has duplicate cell ids: {stale}"
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert all(cell.get("execution_count") for cell in code), f"{path.name} was not executed"
    errors = [o for cell in code for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{path.name} has an error output: {errors[0].get('ename')}"
    images = [o for cell in code for o in cell.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, f"{path.name} shows no figure"
    assert path.stat().st_size < NOTEBOOK_LIMIT, f"{path.name} is over {NOTEBOOK_LIMIT // 1000} kB"


def test_readme_lists_every_tutorial():
    readme = (TUTORIALS / "README.md").read_text(encoding="utf-8")
    missing = [p.stem for p in SCRIPTS if p.name not in readme]
    assert not missing, f"tutorials/README.md does not mention {missing}"
    assert "build_notebooks.py" in readme


def test_text_only_refresh_copies_prose_and_refuses_changed_code(tmp_path, monkeypatch):
    pytest.importorskip("jupytext")
    pytest.importorskip("nbformat")
    sys.path.insert(0, str(TUTORIALS))
    try:
        import build_notebooks
    finally:
        sys.path.remove(str(TUTORIALS))
    script, notebook = SCRIPTS[0], NOTEBOOKS / (SCRIPTS[0].stem + ".ipynb")
    monkeypatch.setattr(build_notebooks, "OUT", tmp_path)
    copy = tmp_path / script.name
    text = script.read_text(encoding="utf-8")
    (tmp_path / notebook.name).write_bytes(notebook.read_bytes())
    first_prose = script_cells(script)[0][1].splitlines()[0]
    copy.write_text(text.replace(first_prose, first_prose + " (edited)", 1), encoding="utf-8")
    build_notebooks.refresh_text(copy)
    cells, refreshed = notebook_cells(tmp_path / notebook.name)
    assert cells[0][1].splitlines()[0].endswith("(edited)")
    outputs = [c.get("outputs") for c in refreshed["cells"] if c["cell_type"] == "code"]
    original = [c.get("outputs") for c in json.loads(notebook.read_text())["cells"]
                if c["cell_type"] == "code"]
    assert outputs == original, "the outputs must be kept"

    code_line = next(line for line in text.splitlines() if line.startswith("import "))
    copy.write_text(text.replace(code_line, code_line + "  # changed", 1), encoding="utf-8")
    with pytest.raises(SystemExit, match="rebuild it"):
        build_notebooks.refresh_text(copy)
