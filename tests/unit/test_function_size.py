"""Functions that fit on a screen: no library function over 60 lines, no stage main over 40
(the stages' work lives in named helpers beside their main)."""

import ast

import pytest

from tests.conftest import REPO

LIMITS = {"transferlab": 60, "stages": 60}
STAGE_MAIN = 40


def functions(package: str):
    for path in sorted((REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield path.relative_to(REPO), node


@pytest.mark.parametrize("package", LIMITS)
def test_no_function_needs_scrolling(package):
    too_long = []
    for path, node in functions(package):
        limit = STAGE_MAIN if package == "stages" and node.name == "main" else LIMITS[package]
        if node.end_lineno - node.lineno + 1 > limit:
            too_long.append(f"{path}:{node.lineno} {node.name}")
    assert not too_long
