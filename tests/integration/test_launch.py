"""The launcher dvc.yaml uses: in-process for one process, torchrun without its traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


def launch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "transferlab.runner.launch", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


UNKNOWN = "error: no backbone 'bogus' in params.yaml's backbones; candidates: lite0, lite1."


def test_one_process_runs_the_module_in_this_process_and_keeps_its_exit_code():
    done = launch("1", "-m", "stages.extract", "bogus")
    assert done.returncode == 2
    assert done.stderr.strip() == UNKNOWN


def test_bad_launcher_usage_is_one_line():
    done = launch("two", "-m", "stages.extract")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: usage: python -m transferlab.runner.launch")


@pytest.mark.distributed
def test_a_failing_worker_under_torchrun_shows_its_error_without_a_launcher_traceback():
    done = launch("2", "-m", "stages.extract", "bogus")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [UNKNOWN] * 2, done.stderr
