"""The warm runner: a stage command runs in a process that already holds torch, timm, numpy,
scikit-learn and MLflow, instead of importing them again. On the 2-core development machine
those imports were 3 to 6 s of every stage's start, more than the whole computation of probe,
knn, scores and rank (docs/benchmarks.md, "Where the fixed cost goes").

    python -m transferlab.device.launch -m stages.knn lite0    (as dvc.yaml runs every stage)

The first stage command starts a server (`python -m transferlab.device.warm --serve PATH`),
detached, that imports those libraries once with the CPU pins already in its environment and
listens on a Unix socket in a folder only this user can open. Each stage command is then a
small client that imports none of them: it hands the server its module and arguments, working
directory, environment, umask and its stdin, stdout and stderr, and the server forks a process
that runs the module as `python -m` would. That process imports every project module (stages,
transferlab) afresh from the client's working directory, never the server's copy, so an edit
takes effect at once. The client relays signals to it and exits with its exit status; if the
client dies (kill -9), the forked stage and its children are killed with it, so nothing runs
on after the command that DVC sees is gone. The timeline counts a stage's time from the
client's start (timeline.LAUNCHER_PID).

A server serves one Python environment with one set of library-relevant variables (the pins,
threads, CUDA, PYTHON*: `_server_key`) and one version of this file; anything else gets its
own. It exits after IDLE_S seconds without a stage. Where no server can start (not Linux, a
Python thread in the server, its socket folder unsafe), the command runs in its own process,
as before; TRANSFERLAB_WARM=0 asks for that.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import runpy
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from transferlab.device.cpu import apply_cpu_pins
from transferlab.errors import show_logs
from transferlab.timeline import LAUNCHER_PID

log = logging.getLogger(__name__)

WARM = "TRANSFERLAB_WARM"  # "0": every stage command starts cold, in its own process
IDLE_S = 120.0  # a server with no stage for this long exits
START_TIMEOUT_S = 120.0  # a server that is not listening by then is given up on
# What every stage would import for itself; a library missing here is simply not preloaded
# (the GPU box has no mlflow).
PRELOAD = (
    "numpy",
    "torch",
    "torchvision",
    "timm",
    "scipy.stats",
    "sklearn.linear_model",
    "sklearn.model_selection",
    "yaml",
    "PIL.Image",
    "matplotlib.figure",
    "git",
    "mlflow.entities",
    "mlflow.tracking",
    "mlflow.tracking.context.registry",
    "mlflow.store.tracking.sqlalchemy_store",
)
# Libraries read these when they load, so a server serves only their values.
LOAD_TIME_VARIABLES = ("PYTHON", "LD_", "OMP_", "KMP_", "MKL_", "OPENBLAS_", "GOTO")
LOAD_TIME_VARIABLES += ("ATEN_", "DNNL_", "ONEDNN_", "TORCH", "PYTORCH_", "CUDA", "NCCL_", "MPL")
# The project's own packages: a stage imports them from its working directory, fresh.
PROJECT_PACKAGES = ("stages", "transferlab")
_HEADER = struct.Struct("!I")
_STATUS = struct.Struct("!i")
_RELAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def run(module: str, args: list[str]) -> int:
    """Run `python -m module args` in a warm process where one can be had, else in this one;
    returns its exit code."""
    show_logs()  # why a stage starts cold, as `warning: …`
    conn = connect()
    if conn is None:
        return run_here(module, args)
    with conn:
        return _client(conn, module, args)


def run_here(module: str, args: list[str]) -> int:
    """Run `python -m module args` in this process; returns its exit code."""
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        return exit_code(done)
    return 0


def exit_code(done: SystemExit) -> int:
    """The process exit code a SystemExit stands for (a message exits 1, as Python does)."""
    if done.code is None or isinstance(done.code, int):
        return done.code or 0
    print(done.code, file=sys.stderr)
    return 1


# The client ----------------------------------------------------------------------------------


def connect() -> socket.socket | None:
    """A connection to this environment's server, starting one if none listens; None where
    the runner is off or cannot be had (the reason logged)."""
    if os.environ.get(WARM, "1") == "0" or sys.platform != "linux":
        return None
    folder = _folder()
    if folder is None:
        return None
    environ = _server_environ()
    path = folder / f"{_server_key(environ)}.sock"
    conn = _try_connect(path)
    if conn is not None:
        return conn
    with _locked(path.with_suffix(".lock")):  # one client starts the server, the rest wait
        conn = _try_connect(path)
        if conn is None:
            conn = _start_server(path, environ)
    return conn


def _client(conn: socket.socket, module: str, args: list[str]) -> int:
    """Send the request, relay signals while the stage runs, return its exit status."""
    request = {
        "argv": [module, *args],
        "cwd": os.getcwd(),
        "env": {**os.environ, LAUNCHER_PID: str(os.getpid())},
        "umask": _umask(),
    }
    payload = json.dumps(request).encode()
    socket.send_fds(conn, [_HEADER.pack(len(payload)) + payload], [0, 1, 2])
    previous = {sig: signal.signal(sig, lambda sig, _: _relay(conn, sig)) for sig in _RELAYED}
    try:
        reply = _recv_exactly(conn, _STATUS.size)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if reply is None:
        print("error: the warm runner lost the stage's process", file=sys.stderr)
        return 1
    (status,) = _STATUS.unpack(reply)
    if status < 0:  # killed by a signal: end the same way, so DVC sees what happened
        with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
            signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        return 128 - status
    return status


def _relay(conn: socket.socket, sig: int) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(bytes([sig]))


def _start_server(path: Path, environ: dict[str, str]) -> socket.socket | None:
    """Start a detached server in `environ`; the connection once it listens."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a dead server's socket (we hold the lock, and nothing answered it)
    log_path = path.with_suffix(".log")
    with open(log_path, "w") as server_log:
        server = subprocess.Popen(
            [sys.executable, "-m", __spec__.name, "--serve", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            env=environ,
            start_new_session=True,  # out of the terminal's and dvc's signals: it outlives them
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and server.poll() is None:
        conn = _try_connect(path)
        if conn is not None:
            return conn
        time.sleep(0.02)
    reason = "did not start" if server.poll() is None else f"exited with {server.returncode}"
    with contextlib.suppress(ProcessLookupError):
        server.kill()
    log.warning("the warm runner %s (its log: %s); this stage starts cold", reason, log_path)
    return None


def _try_connect(path: Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        return None
    return conn


def _folder() -> Path | None:
    """This user's socket folder, private to them; None if it cannot be made so."""
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"transferlab-warm-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError as err:
        log.warning("the warm runner cannot use %s (%s); this stage starts cold", folder, err)
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not folder.is_dir():
        log.warning("%s is not private to this user; this stage starts cold", folder)
        return None
    return folder


def _server_environ() -> dict[str, str]:
    """This environment with the CPU pins in force: the server's, before it imports torch."""
    environ = dict(os.environ)
    apply_cpu_pins(environ)
    return environ


def _server_key(environ: dict[str, str]) -> str:
    """Which server may run a stage for this client: same interpreter, same runner code,
    same values of the variables libraries read when they load."""
    loaded = sorted((k, v) for k, v in environ.items() if k.startswith(LOAD_TIME_VARIABLES))
    digest = hashlib.sha256(json.dumps([sys.executable, sys.prefix, loaded]).encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:20]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _recv_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


# The server ----------------------------------------------------------------------------------


def serve(path: Path) -> int:
    """Import PRELOAD, listen at `path`, and fork a handler per stage until IDLE_S idle."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    if threading.active_count() > 1:
        print("a preloaded library started a Python thread: forking is unsafe", flush=True)
        return 1
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.chdir("/")  # hold no workspace open
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    inode = path.stat().st_ino
    print(f"listening at {path}", flush=True)
    handlers: set[int] = set()
    idle_since = time.monotonic()
    while True:
        readable, _, _ = select.select([listener], [], [], 1.0)
        if readable:
            handlers.add(_fork_handler(listener))
        handlers -= _reaped(handlers)
        if handlers:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > IDLE_S or _replaced(path, inode):
            break
    with _locked(path.with_suffix(".lock")):  # no client can reach it after this...
        if not _replaced(path, inode):
            path.unlink()
    listener.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:  # ...and those that reached it before are served
            handlers.add(_fork_handler(listener))
    for pid in handlers:
        os.waitpid(pid, 0)
    return 0


def _replaced(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino != inode
    except FileNotFoundError:
        return True


def _reaped(pids: set[int]) -> set[int]:
    done = set()
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0]:
                done.add(pid)
    return done


def _fork_handler(listener: socket.socket) -> int:
    conn, _ = listener.accept()
    pid = os.fork()
    if pid:
        conn.close()
        return pid
    listener.close()
    conn.setblocking(True)
    try:
        status = _handle(conn)
    except BaseException:  # a handler never returns into the server's loop
        status = 1
    os._exit(status)


def _handle(conn: socket.socket) -> int:
    """One stage: receive the request, fork the stage, relay signals, send its status. If
    the client goes away, the stage's process group is killed."""
    message, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    (size,) = _HEADER.unpack(message[: _HEADER.size])
    body = message[_HEADER.size :]
    rest = _recv_exactly(conn, size - len(body)) if len(body) < size else b""
    request = json.loads(body + (rest or b""))
    stage = os.fork()
    if stage == 0:
        conn.close()
        os._exit(_run_stage(request, fds))
    with contextlib.suppress(OSError):
        os.setpgid(stage, stage)  # as the stage does: whichever runs first, no signal is lost
    for fd in fds:
        os.close(fd)
    status = _watch(conn, stage)
    with contextlib.suppress(OSError):
        conn.sendall(_STATUS.pack(status))
    return 0


def _watch(conn: socket.socket, stage: int) -> int:
    """Relay the client's signals to the stage until it ends; its status (-signal if killed).
    If the client goes away (kill -9), the stage's whole process group is killed."""
    pidfd = os.pidfd_open(stage) if hasattr(os, "pidfd_open") else None
    watched = [conn] + ([pidfd] if pidfd is not None else [])
    while True:
        readable, _, _ = select.select(watched, [], [], 0.05 if pidfd is None else None)
        if conn in readable:
            relayed = conn.recv(64)
            with contextlib.suppress(ProcessLookupError):
                for sig in relayed:  # to the stage, as if it had been the client
                    os.kill(stage, sig)
                if not relayed:
                    os.killpg(stage, signal.SIGKILL)
                    watched.remove(conn)
        pid, wait_status = os.waitpid(stage, os.WNOHANG)
        if pid:
            if os.WIFSIGNALED(wait_status):
                return -os.WTERMSIG(wait_status)
            return os.WEXITSTATUS(wait_status)


def _run_stage(request: dict, fds: list[int]) -> int:
    """In the forked stage process: become the client's process, then run its module."""
    os.setpgid(0, 0)  # its own group: the handler can signal it with every child it starts
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    _reopen_std_streams(request["env"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.umask(request["umask"])
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    _fresh_state(request["cwd"])
    try:
        code = run_here(request["argv"][0], request["argv"][1:])
    except BaseException as err:  # as Python itself would: the traceback, then exit 1 (130)
        traceback.print_exc()
        code = 130 if isinstance(err, KeyboardInterrupt) else 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code


def _reopen_std_streams(environ: dict[str, str]) -> None:
    """sys.stdin/stdout/stderr on the client's descriptors, buffered as a new process's are:
    stderr by line, stdout by line on a terminal (or with PYTHONUNBUFFERED), else by block."""
    sys.stdin = sys.__stdin__ = open(0, closefd=False)  # noqa: SIM115  (open while it runs)
    line = bool(environ.get("PYTHONUNBUFFERED")) or os.isatty(1)
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1 if line else -1, closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2, "w", buffering=1, errors="backslashreplace", closefd=False
    )


def _fresh_state(cwd: str) -> None:
    """What a new `python -m` process would have that a fork of the server does not: the
    project's modules from `cwd`, not imported yet, and unshared random seeds."""
    for name in list(sys.modules):
        if name.split(".")[0] in PROJECT_PACKAGES:
            del sys.modules[name]
    sys.path[0] = cwd
    import importlib
    import random

    importlib.invalidate_caches()
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--serve":
        sys.exit(f"usage: python -m {__spec__.name} --serve SOCKET")
    sys.exit(serve(Path(sys.argv[2])))
