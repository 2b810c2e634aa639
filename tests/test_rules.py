"""Project rules that keep the GPU path honest."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "minigen"
ARRAY_LIBRARIES = {"numpy", "cupy", "cupyx", "array_api_strict"}


def _imported_modules(path):
    """The top-level modules ``path`` imports: by import statements, and by name through
    ``importlib.import_module("...")`` or ``__import__("...")`` (backend.py's ``import_library`` is
    the one sanctioned way for the other backend modules to get their library)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]
        elif isinstance(node, ast.Call) and _names_an_importer(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield first.value.split(".")[0]


def _names_an_importer(func):
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in ("import_module", "__import__")


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
    sample.write_text("import numpy as np\nfrom cupy import ndarray\n"
                      "importlib.import_module('array_api_strict')\n__import__('cupyx.scipy')\n")
    assert set(_imported_modules(sample)) == {"numpy", "cupy", "array_api_strict", "cupyx"}
