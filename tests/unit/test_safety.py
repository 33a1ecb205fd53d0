"""Safe loading, checked over the source: no call site can drift back to pickle."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

SOURCES = [
    p
    for folder in ("stages", "transferlab", "bench")
    for p in sorted((REPO / folder).glob("**/*.py"))
]


def calls(path: Path, module: str, name: str) -> list[ast.Call]:
    """Every call of `module.name(...)` in a file."""
    tree = ast.parse(path.read_text())
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == module
    ]


def keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


@pytest.mark.parametrize(
    ("module", "name", "flag", "value"),
    [("torch", "load", "weights_only", True), ("np", "load", "allow_pickle", False)],
)
def test_every_load_refuses_pickled_code(module, name, flag, value):
    found = [(path, call) for path in SOURCES for call in calls(path, module, name)]
    assert found, f"no {module}.{name} call found; has the loader moved?"
    for path, call in found:
        assert keyword(call, flag) is value, f"{path.name}:{call.lineno} lacks {flag}={value}"


def test_no_pickle_loaders():
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        roots = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                roots.add(node.module.split(".")[0])
        assert not roots & {"joblib", "dill", "cloudpickle", "shelve"}, path.name
        assert not calls(path, "pickle", "load") + calls(path, "pickle", "loads"), path.name
