"""stages/ holds exactly the commands dvc.yaml runs, `python -m stages.<name>`, and nothing
else; no stage imports another (shared code lives in transferlab/)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

STAGES = REPO / "stages"
COMMAND = re.compile(r"(?:^|\s)-m\s+stages\.(\w+)")  # python -m / launch ... -m stages.<name>


def stage_modules(folder: Path = STAGES) -> set[str]:
    return {path.stem for path in folder.glob("*.py") if path.name != "__init__.py"}


def dvc_commands(dvc_yaml: Path = REPO / "dvc.yaml") -> set[str]:
    """The stages.<name> modules dvc.yaml's commands run, foreach templates included."""
    found: set[str] = set()
    for stage in yaml.safe_load(dvc_yaml.read_text())["stages"].values():
        found |= set(COMMAND.findall(stage.get("do", stage)["cmd"]))
    return found


def stage_imports(source: str) -> list[str]:
    """Every import of a stages module in `source`: absolute, or relative to the package."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "stages"]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 0:
                found.append("." * node.level + (node.module or ""))
            elif node.module and node.module.split(".")[0] == "stages":
                found.append(node.module)
    return found


def test_stages_folder_holds_exactly_the_commands_dvc_yaml_runs():
    commands = dvc_commands()
    assert {"prepare", "extract", "probe", "knn", "finetune", "evaluate"} <= commands
    assert stage_modules() == commands


@pytest.mark.parametrize("path", sorted(STAGES.glob("*.py")), ids=lambda path: path.name)
def test_no_stage_imports_another(path):
    assert stage_imports(path.read_text()) == []


@pytest.mark.parametrize("path", sorted(STAGES.glob("[!_]*.py")), ids=lambda path: path.name)
def test_every_stage_runs_its_main_as_a_module(path):
    tree = ast.parse(path.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)
    guards = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
    assert guards and "main()" in ast.unparse(guards[0])


def test_the_checks_catch_a_planted_stage_import_and_an_unlisted_stage(tmp_path):
    assert stage_imports("from stages import probe") == ["stages"]
    assert stage_imports("import stages.knn as k") == ["stages.knn"]
    assert stage_imports("from .curves import main") == [".curves"]
    assert stage_imports("from transferlab.evaluation import curves") == []
    (tmp_path / "stages").mkdir()
    for name in ("__init__", "prepare", "extra"):
        (tmp_path / "stages" / f"{name}.py").write_text("")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  prepare: {cmd: python -m stages.prepare}\n"
        "  extract: {cmd: python -m transferlab.runner.launch 1 -m stages.extract random}\n"
    )
    assert dvc_commands(tmp_path / "dvc.yaml") == {"prepare", "extract"}
    assert stage_modules(tmp_path / "stages") == {"prepare", "extra"}
