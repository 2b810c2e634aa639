"""Project rules that keep the GPU path honest."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "minigen"
ARRAY_LIBRARIES = {"numpy", "cupy", "cupyx", "array_api_strict"}


def _imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


BACKEND_MODULES = {"backend.py"}


def test_only_backend_imports_array_libraries():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in BACKEND_MODULES and path.parent == PACKAGE:
            continue
        found = ARRAY_LIBRARIES.intersection(_imported_modules(path))
        if found:
            offenders[str(path.relative_to(PACKAGE.parent))] = sorted(found)
    assert not offenders, \
        f"only minigen/backend.py may import array libraries: {offenders}"


def test_the_rule_check_sees_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import numpy as np\nfrom cupy import ndarray\n")
    assert set(_imported_modules(sample)) == {"numpy", "cupy"}
