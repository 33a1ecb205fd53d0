"""The warm runner: a stage command runs in a fork of a process that holds torch already, and
behaves as `python -m` would (arguments, directory, environment, streams, exit status,
signals, fresh project modules), dies with its client, and can be turned off.

These run a toy `stages.toy` module from a temporary workspace through the launcher, as
dvc.yaml runs every stage, against a server private to this module (its own TMPDIR)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from transferlab.device import warm

TOY = """
import json, os, signal, sys, time
from transferlab import timeline

VALUE = {value!r}
WARM_BEFORE = "torch" in sys.modules  # imported before this module ran: a warm process


def stop(sig, frame):
    print("got TERM", flush=True)
    sys.exit(143)


signal.signal(signal.SIGTERM, stop)
mask = os.umask(0)
print(json.dumps({{
    "pid": os.getpid(), "argv": sys.argv[1:], "cwd": os.getcwd(), "value": VALUE,
    "marker": os.environ.get("WARM_TEST_MARKER"), "warm": WARM_BEFORE, "umask": mask,
    "launched": timeline.launched_pid(), "started": timeline.process_start(),
}}), flush=True)
print("to stderr", file=sys.stderr)
if "sleep" in sys.argv:
    open("pid", "w").write(str(os.getpid()))
    time.sleep(120)
if "raise" in sys.argv:
    raise RuntimeError("boom")
sys.exit(int(sys.argv[-1]) if sys.argv[-1].isdigit() else 0)
"""


def make_workspace(root: Path, value: str) -> Path:
    (root / "stages").mkdir(parents=True)
    (root / "stages/__init__.py").write_text("")
    (root / "stages/toy.py").write_text(TOY.format(value=value))
    return root


@pytest.fixture(scope="module")
def env():
    """A TMPDIR of this module's own (short: a socket path has at most 107 bytes); its
    servers are stopped at the end."""
    tmp = Path(tempfile.mkdtemp(prefix="tw", dir="/tmp"))
    yield {**os.environ, "TMPDIR": str(tmp), "WARM_TEST_MARKER": "m1"}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            cmdline = (entry / "cmdline").read_bytes()
            if b"--serve" in cmdline and str(tmp).encode() in cmdline:
                os.kill(int(entry.name), signal.SIGTERM)


@pytest.fixture
def workspace(tmp_path):
    return make_workspace(tmp_path / "ws", "first")


def launch(ws: Path, env: dict, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "transferlab.device.launch", "-m", "stages.toy", *args],
        cwd=ws,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def finished(process: subprocess.Popen) -> tuple[int, dict, str]:
    out, err = process.communicate(timeout=180)
    first = out.splitlines()[0] if out.strip() else "{}"
    return process.returncode, json.loads(first), err


def test_a_stage_runs_warm_as_python_m_would(workspace, env):
    old = os.umask(0o027)
    try:
        client = launch(workspace, env, "a", "b", "3")
        code, seen, err = finished(client)
    finally:
        os.umask(old)
    assert code == 3, err
    assert seen["warm"] is True, "torch was not imported before the stage ran"
    assert seen["pid"] != client.pid
    assert seen["argv"] == ["a", "b", "3"]
    assert seen["cwd"] == str(workspace)
    assert seen["marker"] == "m1"
    assert seen["umask"] == 0o027
    assert err == "to stderr\n"
    # The timeline counts the stage from the client's start: the process dvc started.
    assert seen["launched"] == client.pid
    assert 0 <= time.time() - seen["started"] < 60


def test_project_modules_come_fresh_from_the_working_directory(workspace, env, tmp_path):
    assert finished(launch(workspace, env))[1]["value"] == "first"
    (workspace / "stages/toy.py").write_text(TOY.format(value="edited"))
    assert finished(launch(workspace, env))[1]["value"] == "edited"
    other = make_workspace(tmp_path / "other", "other")
    assert finished(launch(other, env))[1]["value"] == "other"


def test_an_uncaught_error_prints_its_traceback_and_exits_1(workspace, env):
    code, _, err = finished(launch(workspace, env, "raise"))
    assert code == 1
    assert err.splitlines()[-1] == "RuntimeError: boom"


def test_a_signal_to_the_command_reaches_the_stage(workspace, env):
    client = launch(workspace, env, "sleep")
    pid = wait_for_pid(workspace, client)
    client.send_signal(signal.SIGTERM)
    out, _ = client.communicate(timeout=30)
    assert client.returncode == 143
    assert "got TERM" in out
    assert not alive(pid)


def test_kill_9_of_the_command_kills_the_stage(workspace, env):
    client = launch(workspace, env, "sleep")
    pid = wait_for_pid(workspace, client)
    client.kill()
    client.wait()
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "the stage ran on after its command was killed"


def test_off_runs_the_stage_in_the_command_s_own_process(workspace, env):
    client = launch(workspace, {**env, warm.WARM: "0"})
    code, seen, _ = finished(client)
    assert code == 0
    assert seen["pid"] == client.pid and seen["warm"] is False


def test_without_a_usable_socket_folder_the_stage_runs_cold_with_one_warning(workspace, env):
    client = launch(workspace, {**env, "TMPDIR": str(workspace / "missing" / "tmp")})
    code, seen, err = finished(client)
    assert code == 0 and seen["pid"] == client.pid and seen["warm"] is False
    warning, rest = err.split("\n", 1)
    assert warning.startswith("warning: the warm runner cannot use ")
    assert warning.endswith("; this stage starts cold")
    assert rest == "to stderr\n"


def test_a_dead_server_s_socket_is_replaced(workspace, env, monkeypatch):
    monkeypatch.setattr(os, "environ", dict(env))
    folder = warm._folder()
    path = folder / f"{warm._server_key(warm._server_environ())}.sock"
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # bound, never listening, then closed: what a killed server leaves
    stale.close()
    code, seen, err = finished(launch(workspace, env))
    assert code == 0 and seen["warm"] is True, err


def test_a_server_serves_only_clients_whose_libraries_would_load_alike():
    base = {"PATH": "/usr/bin", "OMP_NUM_THREADS": "2"}
    key = warm._server_key(base)
    assert warm._server_key({**base, "DVC_EXP_NAME": "k5", "MLFLOW_RUN_ID": "x"}) == key
    assert warm._server_key({**base, "OMP_NUM_THREADS": "4"}) != key
    assert warm._server_key({**base, "CUDA_VISIBLE_DEVICES": "1"}) != key
    assert warm._server_key({**base, "PYTHONHASHSEED": "0"}) != key


def test_the_server_holds_no_python_thread_to_fork_with():
    """A fork copies one thread: a preloaded library that started a Python thread would
    leave the stage with a lock nobody releases. The server refuses to serve then."""
    code = (
        "; ".join(f"import {name}" for name in warm.PRELOAD if _importable(name))
        + "; import threading; print(threading.active_count())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "1", done.stderr


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def wait_for_pid(ws: Path, client: subprocess.Popen) -> int:
    deadline = time.monotonic() + 60
    while not (ws / "pid").exists() or not (ws / "pid").read_text():
        assert client.poll() is None and time.monotonic() < deadline, client.communicate()
        time.sleep(0.02)
    return int((ws / "pid").read_text())


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
