"""dvc.yaml's deps follow from the code: each stage lists exactly the project modules its
command imports, directly or through other project modules (lazy imports included), but the
few in EXEMPT, which cannot change an output."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from tests.conftest import REPO

PACKAGES = ("stages", "transferlab")  # the project's own code; everything else is installed

# Plumbing that cannot change what a stage writes, so editing it reruns nothing. Each is held
# to that by the test named beside it, which fails if it could. What an exempt module imports
# is not exempt: it stays a dep wherever it is imported (the CPU pins the launcher applies).
WARM_COLD = (
    "tests/integration/test_warm.py::test_a_stage_run_cold_writes_the_bytes_dvc_s_warm_run_wrote"
)
TRACKED_UNTRACKED = (
    "tests/integration/test_tracking_off.py::test_untracked_stages_write_the_tracked_bytes"
)
EXEMPT = {
    Path("transferlab/runner/launch.py"): WARM_COLD,  # how a stage's process starts
    Path("transferlab/runner/warm.py"): WARM_COLD,
    Path("transferlab/runner/warm_key.py"): WARM_COLD,
    Path("transferlab/tracking.py"): TRACKED_UNTRACKED,  # MLflow logging; outputs: publish.py
    Path("transferlab/store.py"): TRACKED_UNTRACKED,  # where MLflow's store is, and its lock
}


def module_file(name: str, root: Path = REPO) -> Path | None:
    """The project file that defines module `name`, or None outside the project."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, root: Path = REPO) -> set[str]:
    """Project modules `path` imports anywhere in its body, `from package import module` too."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if module_file(n, root) else node.module for n in names]
        else:
            continue
        found.update(n for n in names if module_file(n, root))
    return found


def runs_code(path: Path) -> bool:
    """False for a package __init__ that is a docstring alone: importing it changes nothing."""
    body = ast.parse(path.read_text()).body
    docstring = (
        body[:1] and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    )
    return path.name != "__init__.py" or len(body) > (1 if docstring else 0)


def import_closure(module: str, root: Path = REPO) -> set[Path]:
    """Files of every project module `module` needs: itself, what it imports, and the
    __init__ of each package on the way that runs code."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        todo.extend(imported_modules(module_file(name, root), root))
    files = {module_file(name, root) for name in seen}
    return {path.relative_to(root) for path in files if runs_code(path)}


def command_modules(cmd: str) -> list[str]:
    """Every `-m MODULE` of a command: the launcher, if any, then the stage's own module."""
    words = cmd.split()
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word == "-m"]


def stage_commands(dvc_yaml: dict) -> dict[str, str]:
    """Stage name -> the stages.* module its command runs."""
    return {
        name: command_modules(stage.get("do", stage)["cmd"])[-1]
        for name, stage in dvc_yaml["stages"].items()
    }


def listed_code(deps: list[str], root: Path = REPO) -> set[Path]:
    """The project files a stage's deps cover: files, and every .py under a listed folder."""
    covered: set[Path] = set()
    for dep in deps:
        if not dep.startswith(PACKAGES):
            continue
        path = root / dep
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        covered.update(p.relative_to(root) for p in found if runs_code(p))
    return covered


def drift(root: Path = REPO) -> dict[str, tuple[set[Path], set[Path]]]:
    """Per stage: (files it runs but does not list, files it lists but does not run)."""
    dvc_yaml = yaml.safe_load((root / "dvc.yaml").read_text())
    out = {}
    for name, stage in dvc_yaml["stages"].items():
        spec = stage.get("do", stage)
        runs = set().union(*(import_closure(m, root) for m in command_modules(spec["cmd"])))
        runs -= set(EXEMPT)
        listed = listed_code(spec["deps"], root)
        if runs != listed:
            out[name] = (runs - listed, listed - runs)
    return out


def test_every_stage_lists_exactly_the_code_it_runs():
    problems = {
        stage: {"missing": sorted(map(str, missing)), "extra": sorted(map(str, extra))}
        for stage, (missing, extra) in drift().items()
    }
    assert problems == {}


def test_each_exemption_names_a_test_that_exists():
    for path, test in EXEMPT.items():
        assert (REPO / path).is_file(), path
        file, name = test.split("::")
        tree = ast.parse((REPO / file).read_text())
        assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, test


def test_the_exempt_modules_are_in_no_stage_s_deps_but_the_cpu_pins_are():
    dvc_yaml = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for name, stage in dvc_yaml["stages"].items():
        listed = listed_code(stage.get("do", stage)["deps"])
        assert not listed & set(EXEMPT), name
        assert Path("transferlab/device/cpu.py") in listed, name


def test_a_planted_omission_is_caught(tmp_path):
    for folder in PACKAGES:
        for source in (REPO / folder).rglob("*.py"):
            target = tmp_path / source.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source.read_text())
    text = (REPO / "dvc.yaml").read_text()
    line = "\n      - transferlab/evaluation/probes/linear.py\n"  # a plain stage's (six spaces)
    assert line in text
    planted = text.replace(line, "\n", 1)
    (tmp_path / "dvc.yaml").write_text(planted)
    missing = {stage: gaps[0] for stage, gaps in drift(tmp_path).items()}
    assert missing and all(
        gaps == {Path("transferlab/evaluation/probes/linear.py")} for gaps in missing.values()
    )


def test_lazy_and_from_package_imports_count(tmp_path):
    pkg = tmp_path / "transferlab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""A docstring alone runs nothing."""\n')
    (pkg / "a.py").write_text("def f():\n    from transferlab import b\n")
    (pkg / "b.py").write_text("import numpy\n")
    assert import_closure("transferlab.a", tmp_path) == {
        Path("transferlab/a.py"),
        Path("transferlab/b.py"),
    }
    (pkg / "__init__.py").write_text("from transferlab import c\n")  # now it runs code
    (pkg / "c.py").write_text("")
    assert import_closure("transferlab.a", tmp_path) == {
        Path("transferlab/__init__.py"),
        Path("transferlab/a.py"),
        Path("transferlab/b.py"),
        Path("transferlab/c.py"),
    }


def test_the_reference_extraction_runs_the_candidates_code_and_only_it_reads_the_selection():
    dvc_yaml = yaml.safe_load((REPO / "dvc.yaml").read_text())
    commands = stage_commands(dvc_yaml)
    assert commands["extract"] == "stages.extract"
    assert commands["extract_random"] == "stages.extract_random"
    candidate = import_closure("stages.extract")
    reference = import_closure("stages.extract_random")
    assert candidate - reference == {Path("stages/extract.py")}
    assert reference - candidate == {
        Path("stages/extract_random.py"),
        Path("transferlab/selection.py"),
    }
