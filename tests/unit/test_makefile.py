"""The Makefile's recipes, `dvc repro` among them, run the project's own python."""

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_recipes_find_the_venv_python_first():
    # dvc starts each stage as `python -m transferlab.runner.launch …` through the shell, so
    # whatever `python` a recipe finds runs the stages, whatever PATH make was started with.
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        ["make", "-s", "--eval", "where-python: ; @command -v python", "where-python"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == str(REPO / ".venv" / "bin" / "python")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_clean_removes_stage_outputs_and_never_user_data(tmp_path):
    for name in ("Makefile", "params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(REPO / ".venv" / "bin" / "python")
    (tmp_path / ".venv" / ".installed").touch()
    raw = tmp_path / "data" / "raw" / "pets" / "cat"
    raw.mkdir(parents=True)
    (raw / "tom.png").write_bytes(b"user data")
    (tmp_path / "data" / "raw" / "pets.dvc").write_text("outs: []\n")
    for generated in ("prepared", "features", "selected", "methods"):
        (tmp_path / "data" / generated).mkdir()
        (tmp_path / "data" / generated / "x.npy").write_bytes(b"x")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "clean"], cwd=tmp_path, env=env, check=True
    )
    assert (raw / "tom.png").read_bytes() == b"user data"
    assert (tmp_path / "data" / "raw" / "pets.dvc").exists()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["raw"]


def test_the_install_gives_dvc_ruamel_s_c_parser():
    """DVC reads dvc.yaml and dvc.lock through ruamel's safe loader, which is pure Python
    unless ruamel.yaml.clib is installed: most of a no-op `dvc repro` (docs/benchmarks.md)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.main import CParser

    assert CParser is not None
    assert YAML(typ="safe").Parser is CParser
