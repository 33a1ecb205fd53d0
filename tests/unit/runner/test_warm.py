"""The warm runner: a stage command runs in a fork of a process that holds torch already, and
behaves as `python -m` would (arguments, directory, environment, streams, exit status,
signals and their dispositions, threads and atexit at the end, fresh project modules), dies
with its client and with its handler, and can be turned off.

These run a toy `stages.toy` module from a temporary workspace through the launcher, as
dvc.yaml runs every stage, against a server private to this module (its own TMPDIR)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from transferlab.runner import warm

TOY = """
import atexit, json, os, signal, sys, threading, time
from transferlab import timeline

VALUE = {value!r}
WARM_BEFORE = "torch" in sys.modules  # imported before this module ran: a warm process


def stop(sig, frame):
    print("got TERM", flush=True)
    sys.exit(143)


def parent(pid):
    return int(open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()[1])


def hub_offline():
    import huggingface_hub.constants  # timm imports it: a server holds it from its start

    return huggingface_hub.constants.HF_HUB_OFFLINE


def toylib():  # tests/unit/runner/test_warm_fit.py: a library a server loaded when it started
    if "toylib" not in sys.modules:
        return None
    from importlib.metadata import version

    lib = sys.modules["toylib"]
    return {{"module": lib.VERSION, "installed": version("toylib"), "scratch": lib.SCRATCH}}


def later():
    time.sleep(0.5)
    print("thread done", flush=True)


signal.signal(signal.SIGTERM, stop)
mask = os.umask(0)
sigint = signal.getsignal(signal.SIGINT)
print(json.dumps({{
    "pid": os.getpid(), "argv": sys.argv[1:], "cwd": os.getcwd(), "value": VALUE,
    "marker": os.environ.get("WARM_TEST_MARKER"), "warm": WARM_BEFORE, "umask": mask,
    "launched": timeline.launched_pid(), "started": timeline.process_start(),
    "sigint": {{signal.SIG_IGN: "ignored", signal.default_int_handler: "default"}}.get(sigint),
    "affinity": sorted(os.sched_getaffinity(0)), "server": parent(os.getppid()),
    "hub_offline": hub_offline() if "hub" in sys.argv else None, "toylib": toylib(),
}}), flush=True)
print("to stderr", file=sys.stderr)
if "thread" in sys.argv:  # a non-daemon thread, then an atexit handler: Python waits, runs it
    threading.Thread(target=later).start()
    atexit.register(print, "stage atexit", flush=True)
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


TOYLIB = """
import atexit, shutil, tempfile

VERSION = {version!r}
# A folder of its own, removed at exit: what matplotlib does when its config folder is not
# writable. A server's is the server's; its stages must not remove it.
SCRATCH = tempfile.mkdtemp(prefix="toylib-")
atexit.register(shutil.rmtree, SCRATCH, True)
"""


def make_site(root: Path, version: str) -> Path:
    """A folder for PYTHONPATH holding `toylib` as pip installs it, and a sitecustomize that
    imports it when any Python starts: in a server, a library loaded before its stages."""
    root.mkdir(parents=True)
    (root / "sitecustomize.py").write_text("import toylib\n")
    install_toylib(root, version)
    return root


def install_toylib(site: Path, version: str) -> None:
    """Install `toylib` at `version` in `site`, replacing any other, as pip does."""
    for old in [site / "toylib", *site.glob("toylib-*.dist-info")]:
        shutil.rmtree(old, ignore_errors=True)
    (site / "toylib").mkdir()
    (site / "toylib/__init__.py").write_text(TOYLIB.format(version=version))
    info = site / f"toylib-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: toylib\nVersion: {version}\n")


def with_site(env: dict, site: Path) -> dict:
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))}


@contextlib.contextmanager
def private_tmp() -> Iterator[dict]:
    """An environment with a TMPDIR of its own (short: a socket path has at most 107 bytes),
    so its servers are its own; they are stopped at the end."""
    tmp = Path(tempfile.mkdtemp(prefix="tw", dir="/tmp"))
    try:
        yield {**os.environ, "TMPDIR": str(tmp), "WARM_TEST_MARKER": "m1"}
    finally:
        for pid in servers(tmp):
            os.kill(pid, signal.SIGTERM)
        shutil.rmtree(tmp, ignore_errors=True)


def servers(tmp: Path) -> list[int]:
    """The pids of the servers listening in `tmp`."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            cmdline = (entry / "cmdline").read_bytes()
            if b"--serve" in cmdline and str(tmp).encode() in cmdline:
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def env():
    """This module's servers' environment: one server serves most of its tests."""
    with private_tmp() as environ:
        yield environ


@pytest.fixture
def fresh_env():
    """An environment whose first command starts a server of its own."""
    with private_tmp() as environ:
        yield environ


@pytest.fixture
def workspace(tmp_path):
    return make_workspace(tmp_path / "ws", "first")


def launch(ws: Path, env: dict, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "transferlab.runner.launch", "-m", "stages.toy", *args],
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


def test_killing_the_handler_kills_the_stage(workspace, env):
    client = launch(workspace, env, "sleep")
    pid = wait_for_pid(workspace, client)
    os.kill(parent(pid), signal.SIGKILL)  # the server's child that forked the stage
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "the stage ran on after its handler was killed"
    _, err = client.communicate(timeout=30)
    assert client.returncode == 1
    assert err.splitlines()[-1] == "error: the warm runner lost the stage's process"


def test_ctrl_c_stops_a_stage_whose_server_was_started_ignoring_it(workspace, fresh_env):
    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `nohup`, or a script's `trap '' INT`

    def default_sigint():  # a terminal's command, whatever the test run itself inherited
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # (a background job ignores SIGINT)

    code, seen, err = finished(launch(workspace, fresh_env, preexec_fn=ignore_sigint))
    assert code == 0 and seen["warm"] is True, err
    assert seen["sigint"] == "ignored"  # as the command that started the server: as cold
    client = launch(workspace, fresh_env, "sleep", preexec_fn=default_sigint)
    pid = wait_for_pid(workspace, client)
    client.send_signal(signal.SIGINT)
    try:
        _, err = client.communicate(timeout=30)
    finally:
        client.kill()
    assert client.returncode == -signal.SIGINT, err  # as Python ends on Ctrl-C
    assert err.splitlines()[-1] == "KeyboardInterrupt"
    assert not alive(pid)


def test_ctrl_z_stops_the_stage_and_fg_resumes_it(workspace, env):
    # A process group of its own in this session, as a shell gives a job: not orphaned, so
    # the kernel stops it on SIGTSTP.
    client = launch(workspace, env, "sleep", process_group=0)
    pid = wait_for_pid(workspace, client)
    client.send_signal(signal.SIGTSTP)
    assert wait_for_state(pid, "T"), "Ctrl-Z did not stop the stage"
    assert wait_for_state(client.pid, "T"), "Ctrl-Z did not stop the command"
    client.send_signal(signal.SIGCONT)
    assert wait_for_state(pid, "S"), "fg did not resume the stage"
    client.send_signal(signal.SIGTERM)
    out, _ = client.communicate(timeout=30)
    assert client.returncode == 143 and "got TERM" in out


def test_a_stage_ends_as_python_does(workspace, fresh_env, tmp_path):
    """Its non-daemon threads are waited for, then its atexit handlers run; the server's
    handlers that remove the server's files do not."""
    environ = with_site(fresh_env, make_site(tmp_path / "site", "1.0"))
    code, seen, err = finished(launch(workspace, environ))  # starts the server
    assert code == 0 and seen["warm"] is True, err
    client = launch(workspace, environ, "thread")
    out, err = client.communicate(timeout=180)
    assert client.returncode == 0, err
    assert out.splitlines()[1:] == ["thread done", "stage atexit"]
    assert Path(seen["toylib"]["scratch"]).is_dir(), "a stage removed its server's folder"


def test_a_closed_stdin_runs_the_stage_cold_with_one_warning(workspace, env):
    client = launch(workspace, env, stdin=None, preexec_fn=lambda: os.close(0))
    code, seen, err = finished(client)
    assert code == 0 and seen["pid"] == client.pid and seen["warm"] is False
    assert err == "warning: this command's stdin is closed; this stage starts cold\nto stderr\n"


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


def test_a_dead_server_s_socket_is_replaced(workspace, env):
    path = socket_path(workspace, env)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # bound, never listening, then closed: what a killed server leaves
    stale.close()
    code, seen, err = finished(launch(workspace, env))
    assert code == 0 and seen["warm"] is True, err


def socket_path(ws: Path, env: dict) -> Path:
    """The socket of the server that a command run in `ws` with `env` would use: computed
    by such a command, whose sys.path and process are the ones its key covers."""
    code = (
        "from transferlab.runner import warm, warm_key; "
        "print(warm._folder() / (warm_key.key_name(warm_key.server_key(warm._server_environ()))"
        " + '.sock'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ws, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def test_the_server_forks_with_no_thread_beside_its_own():
    """A fork copies one thread: a thread that holds a lock (a Python one, a native library's)
    would leave the stage a lock nobody releases. After its imports and one fork (which
    stops OpenBLAS's threads), the server runs none, or it would refuse to serve."""
    code = "from transferlab.runner import warm; warm._preload(); print(warm._fork_hazard())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "None", done.stderr


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="OpenBLAS starts no thread on 1 CPU")
def test_a_native_thread_makes_forking_unsafe_until_a_fork_stops_it():
    code = (
        "import numpy; from transferlab.runner import warm; print(warm._fork_hazard()); "
        "warm.PRELOAD = (); warm._preload(); print(warm._fork_hazard())"
    )
    environ = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True)
    before, after = done.stdout.splitlines()
    assert before == "1 native thread(s) beside the main one: forking is unsafe", done.stderr
    assert after == "None"


def wait_for_pid(ws: Path, client: subprocess.Popen) -> int:
    deadline = time.monotonic() + 60
    while not (ws / "pid").exists() or not (ws / "pid").read_text():
        assert client.poll() is None and time.monotonic() < deadline, client.communicate()
        time.sleep(0.02)
    return int((ws / "pid").read_text())


def alive(pid: int) -> bool:
    return state(pid) not in (None, "Z")


def state(pid: int) -> str | None:
    """The process's state letter (S sleeping, T stopped, Z zombie); None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def wait_for_state(pid: int, wanted: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while state(pid) != wanted and time.monotonic() < deadline:
        time.sleep(0.02)
    return state(pid) == wanted


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
