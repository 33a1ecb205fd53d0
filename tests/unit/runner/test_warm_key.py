"""A warm server's key (runner/warm_key.py) changes with everything that decides what a
forked stage computes or may use, and with nothing that changes per command."""

from __future__ import annotations

import ast
import os
import resource
import shutil
import subprocess
import sys
import time

import pytest

from transferlab.runner import warm_key

BASE = {"PATH": "/usr/bin", "OMP_NUM_THREADS": "2", "LANG": "C.UTF-8"}


def key(environ: dict = BASE) -> str:
    return warm_key.key_name(warm_key.server_key(environ))


def test_variables_that_change_per_command_do_not_change_the_key():
    per_command = {
        "DVC_STAGE": "probe@lite0",
        "DVC_ROOT": "/elsewhere",
        "DVC_EXP_NAME": "k5",
        "DVC_EXP_BASELINE_REV": "abc",
        "TRANSFERLAB_LAUNCHER_PID": "123",
        "TRANSFERLAB_WARM": "1",
        "_": "/usr/bin/python",
        "PWD": "/elsewhere",
        "OLDPWD": "/",
        "SHLVL": "3",
        "PYTEST_CURRENT_TEST": "tests/test_x.py::test_y (call)",
        "MLFLOW_TRACKING_URI": "sqlite:////elsewhere/mlflow.db",
        "MLFLOW_EXPERIMENT_NAME": "another",
    }
    assert set(per_command) == warm_key.PER_COMMAND
    assert key({**BASE, **per_command}) == key()


@pytest.mark.parametrize(
    "variable",
    ["HF_HUB_OFFLINE", "HF_HOME", "TIMM_FUSED_ATTN", "SKLEARN_ASSUME_FINITE", "NPY_PROMOTION",
     "TZ", "LC_ALL", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED", "MLFLOW_X"],
)  # fmt: skip
def test_any_other_variable_changes_the_key(variable):
    assert key({**BASE, variable: "1"}) != key()


def test_a_distribution_installed_upgraded_or_reinstalled_changes_the_key(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])
    before = key()
    (tmp_path / "toylib-1.0.dist-info").mkdir()
    installed = key()
    (tmp_path / "toylib-1.0.dist-info").rename(tmp_path / "toylib-2.0.dist-info")
    upgraded = key()
    (tmp_path / "toylib-2.0.dist-info").rmdir()
    (tmp_path / "toylib-2.0.dist-info").mkdir()
    future = time.time() + 5  # another mtime, whatever the file system's resolution
    os.utime(tmp_path / "toylib-2.0.dist-info", (future, future))
    assert len({before, installed, upgraded, key()}) == 4
    (tmp_path / "toylib").mkdir()  # a package's own files are not looked at: one scandir
    assert key() == key()


def test_a_virtual_environment_made_again_at_the_same_path_changes_the_key(tmp_path, monkeypatch):
    prefix = tmp_path / ".venv"
    monkeypatch.setattr(sys, "prefix", str(prefix))
    prefix.mkdir()
    (prefix / "pyvenv.cfg").write_text("home = /usr/bin\n")
    first = key()
    shutil.rmtree(prefix)  # rm -rf .venv && make install
    prefix.mkdir()
    (prefix / "pyvenv.cfg").write_text("home = /usr/bin\n")
    future = time.time() + 5  # written later, whatever the file system's resolution
    os.utime(prefix / "pyvenv.cfg", (future, future))
    assert key() != first


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_cpu_affinity_changes_the_key():
    cpus = os.sched_getaffinity(0)
    before = key()
    os.sched_setaffinity(0, {min(cpus)})
    try:
        assert key() != before
    finally:
        os.sched_setaffinity(0, cpus)
    assert key() == before


def test_rlimits_change_the_key():
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    before = key()
    resource.setrlimit(resource.RLIMIT_CORE, (0 if soft else 1, hard))
    try:
        assert key() != before
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


def test_differing_names_the_parts():
    mine = warm_key.server_key(BASE)
    theirs = warm_key.server_key({**BASE, "TZ": "UTC"})
    assert warm_key.differing(mine, theirs) == ["environment"]
    assert warm_key.differing(mine, mine) == []


def test_a_python_started_with_interpreter_flags_has_this_one_s_flags():
    show = "import sys; print(list(sys.flags), sys.warnoptions, sys._xoptions)"
    flags = "from transferlab.runner import warm_key; print(repr(warm_key.interpreter_flags()))"
    options = ["-O", "-X", "utf8", "-X", "int_max_str_digits=900", "-W", "error::UserWarning"]
    given = subprocess.run(
        [sys.executable, *options, "-c", flags], capture_output=True, text=True, check=True
    )
    again = ast.literal_eval(given.stdout)
    first = subprocess.run([sys.executable, *options, "-c", show], capture_output=True, text=True)
    second = subprocess.run([sys.executable, *again, "-c", show], capture_output=True, text=True)
    assert second.stdout == first.stdout != ""
