"""The documentation site builds strictly: every docstring, README section and tutorial notebook
that the site is made of is valid for it.  Runs where the docs tools are installed
(``pip install ".[docs]"``), so that a change that would break the site fails here, before CI's
``bash docs/build.sh``; skipped elsewhere.  Builds into a temporary folder (about 20 s)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("sphinx", "myst_nb", "furo", "sphinxarg")


@pytest.mark.skipif(any(importlib.util.find_spec(t) is None for t in TOOLS),
                    reason='the docs tools are not installed (pip install ".[docs]")')
def test_site_builds_without_a_warning(tmp_path):
    # docs/build.sh also vendors MathJax (npm) and moves the result to site/; the strictness is
    # these flags: -W (warnings fail), -n (every reference must resolve), -E (from scratch).
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-n", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    problems = [line for line in result.stderr.splitlines()
                if "WARNING" in line or "ERROR" in line or "CRITICAL" in line]
    assert result.returncode == 0, (
        "the documentation site does not build (bash docs/build.sh shows the same):\n"
        + "\n".join(problems or result.stderr.splitlines()[-20:]))
    assert (tmp_path / "html" / "index.html").exists()
