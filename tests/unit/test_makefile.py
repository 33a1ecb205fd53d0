"""The Makefile's recipes, `dvc repro` among them, run the project's own python."""

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_recipes_find_the_venv_python_first():
    # dvc starts each stage as `python -m stages.<name>` through the shell, so whatever
    # `python` a recipe finds is what runs the stages, whatever PATH make was started with.
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
