"""The warm runner: a stage command runs in a process that already holds torch, timm, numpy,
scikit-learn and MLflow, instead of importing them again. On the 2-core development machine
those imports were 3 to 6 s of every stage's start, more than the whole computation of probe,
knn, scores and rank (docs/benchmarks.md, "Where the fixed cost goes").

    python -m transferlab.runner.launch -m stages.knn lite0    (as dvc.yaml runs every stage)

The first stage command starts a server (`python -m transferlab.runner.warm --serve PATH KEY`),
detached, that imports those libraries once with the CPU pins already in its environment and
listens on a Unix socket in a folder only this user can open. Each stage command is then a
small client that imports none of them: it hands the server its module and arguments, working
directory, environment, umask, signal dispositions and its stdin, stdout and stderr, and the
server forks a process that runs the module as `python -m` would. That process imports every
project module (stages, transferlab) afresh from the client's working directory, never the
server's copy, so an edit takes effect at once. The client relays signals to its process group
(Ctrl-C, Ctrl-Z and `fg` too) and exits with its exit status; if the client dies (kill -9) or
the handler between them does, the forked stage dies with it, so nothing runs on after the
command that DVC sees is gone. The timeline counts a stage's time from the client's start
(timeline.LAUNCHER_PID).

A server serves only commands whose interpreter, installed libraries, environment and process
context are its own (runner/warm_key.py), re-checks that for every request, and exits rather
than serve one that differs; anything else gets its own server. It exits after IDLE_S seconds
without a stage. Where no server can be had (not Linux, a thread or CUDA in the server that a
fork cannot carry, its socket folder unsafe, a closed stdin, stdout or stderr), the command
runs in its own process, as before; TRANSFERLAB_WARM=0 asks for that.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import fcntl
import functools
import json
import logging
import os
import runpy
import select
import shutil
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
from transferlab.runner.warm_key import (
    differing,
    interpreter_flags,
    key_name,
    runner,
    server_key,
)
from transferlab.shell import show_logs
from transferlab.timeline import LAUNCHER_PID

log = logging.getLogger(__name__)

WARM = "TRANSFERLAB_WARM"  # "0": every stage command starts cold, in its own process
IDLE_S = 120.0  # a server with no stage for this long exits
START_TIMEOUT_S = 120.0  # a server that is not listening by then is given up on
RECEIVE_TIMEOUT_S = 10.0  # a client sends its request as soon as it connects
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
# Native threads that may run while the server forks: jemalloc's purging thread (pyarrow's,
# through scikit-learn) takes every jemalloc lock in its own fork handler.
FORK_AWARE_THREADS = ("jemalloc_bg_thd",)
# The project's own packages: a stage imports them from its working directory, fresh.
PROJECT_PACKAGES = ("stages", "transferlab")
_HEADER = struct.Struct("!I")
_STATUS = struct.Struct("!i")
REFUSED = -1000  # the status of a request the server would not serve (no stage ran)
# Every signal a command can be sent that a process of its own would act on.
_RELAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)
_RELAYED += (signal.SIGUSR2, signal.SIGTSTP, signal.SIGCONT)
_UNCATCHABLE = (signal.SIGKILL, signal.SIGSTOP)
PR_SET_PDEATHSIG = 1  # prctl(2)
# An atexit handler that removes a file, registered when the server imported a library,
# removes the server's (matplotlib's temporary config folder): never in a stage.
_FILE_REMOVERS = (shutil.rmtree, os.remove, os.unlink, os.rmdir, os.removedirs)


def run(module: str, args: list[str]) -> int:
    """Run `python -m module args` in a warm process where one can be had, else in this one;
    returns its exit code."""
    show_logs()  # why a stage starts cold, as `warning: …`
    closed = [name for name in ("stdin", "stdout", "stderr") if not getattr(sys, f"__{name}__")]
    if closed:  # nothing to hand the stage: a cold Python runs with it closed
        log.warning("this command's %s is closed; this stage starts cold", " and ".join(closed))
        return run_here(module, args)
    for _ in range(2):  # a server that no longer fits refuses and withdraws: start another
        server = connect()
        if server is None:
            return run_here(module, args)
        conn, key, path = server
        with conn:
            status = _client(conn, key, module, args)
        if status != REFUSED:
            return status
    log.warning("the warm runner refused this command (its log: %s); this stage starts cold", path)
    return run_here(module, args)


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


def connect() -> tuple[socket.socket, dict[str, str], Path] | None:
    """A connection to the server for this command, its key and its socket's path, starting
    the server if none listens; None where the runner is off or cannot be had (the reason
    logged)."""
    if os.environ.get(WARM, "1") == "0" or sys.platform != "linux":
        return None
    folder = _folder()
    if folder is None:
        return None
    environ = _server_environ()
    try:
        key = server_key(environ)
    except OSError as err:  # the interpreter's files gone under it: nothing to match
        log.warning("the warm runner cannot tell this Python (%s); this stage starts cold", err)
        return None
    path = folder / f"{key_name(key)}.sock"
    conn = _try_connect(path)
    if conn is None:
        with _locked(path.with_suffix(".lock")):  # one client starts the server, the rest wait
            conn = _try_connect(path)
            if conn is None:
                conn = _start_server(path, environ, key)
    return None if conn is None else (conn, key, path)


def _client(conn: socket.socket, key: dict[str, str], module: str, args: list[str]) -> int:
    """Send the request, relay signals while the stage runs, return its exit status (or
    REFUSED)."""
    signals = _signal_state()
    request = {
        "argv": [module, *args],
        "cwd": os.getcwd(),
        "env": {**os.environ, LAUNCHER_PID: str(os.getpid())},
        "umask": _umask(),
        "signals": signals,
        "key": key,
    }
    payload = json.dumps(request).encode()
    socket.send_fds(conn, [_HEADER.pack(len(payload)) + payload], [0, 1, 2])
    relay = functools.partial(_relay, conn)
    relayed = [sig for sig in _RELAYED if sig not in signals["ignored"]]  # ignored: as cold
    previous = {sig: signal.signal(sig, relay) for sig in relayed}
    try:
        reply = _recv_exactly(conn, _STATUS.size)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if reply is None:
        print("error: the warm runner lost the stage's process", file=sys.stderr)
        return 1
    (status,) = _STATUS.unpack(reply)
    if status < 0 and status != REFUSED:  # killed by a signal: end the same way, for DVC
        with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
            signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        return 128 - status
    return status


def _signal_state() -> dict[str, list[int]]:
    """The signals this command ignores and blocks, which its stage must too, as a process
    of its own would inherit them."""
    ignored = [sig for sig in signal.valid_signals() if signal.getsignal(sig) == signal.SIG_IGN]
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    return {"ignored": sorted(map(int, ignored)), "blocked": sorted(map(int, blocked))}


def _relay(conn: socket.socket, sig: int, _frame: object = None) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(bytes([sig]))
    if sig == signal.SIGTSTP:  # Ctrl-Z: the stage is stopped, now this command too...
        handler = signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        signal.signal(sig, handler)
        with contextlib.suppress(OSError):  # ...and both go on together (the kernel drops a
            conn.sendall(bytes([signal.SIGCONT]))  # stop for an orphaned process group)


def _start_server(path: Path, environ: dict[str, str], key: dict[str, str]) -> socket.socket | None:
    """Start a detached server in `environ`, with this Python's flags, for `key`; the
    connection once it listens."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a dead server's socket (we hold the lock, and nothing answered it)
    log_path = path.with_suffix(".log")
    command = [sys.executable, *interpreter_flags(), "-m", __spec__.name]
    command += ["--serve", str(path), json.dumps(key)]
    with open(log_path, "a") as server_log:  # each start's lines after the last one's
        server = subprocess.Popen(
            command,
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


def serve(path: Path, client_key: dict[str, str]) -> int:
    """Import PRELOAD, listen at `path`, and fork a handler per stage until IDLE_S idle or
    a request it no longer fits; exit at once if it does not fit the client that started
    it."""
    environ = dict(os.environ)  # as the client gave it, before a library sets its own
    runner()  # this file as the server loaded it, whatever an edit does to it meanwhile
    _preload()
    problem = _settled_fork_hazard()
    if problem is None and (parts := differing(server_key(environ), client_key)):
        problem = f"its {', '.join(parts)} differ(s) from the client's"
    if problem is not None:
        print(f"{time.strftime('%F %T')} not serving: {problem}", flush=True)
        return 1
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.chdir("/")  # hold no workspace open
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    server = _Server(listener, path, path.stat().st_ino, environ)
    print(f"{time.strftime('%F %T')} listening at {path}", flush=True)
    server.serve_until_idle()
    server.withdraw()  # no client can reach it after this...
    listener.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:  # ...and those that reached it before are answered
            server.answer(listener.accept()[0])
    for pid in server.handlers:
        os.waitpid(pid, 0)
    return 0


def _preload() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    # OpenBLAS stops its threads in a fork handler and starts them again only when next used,
    # which in the server it never is: after one fork the server runs only the threads that
    # live through a fork, which _fork_hazard counts.
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def _settled_fork_hazard(wait_s: float = 2.0) -> str | None:
    """_fork_hazard once the threads told to stop have left: a joined thread can stay listed
    in /proc for a moment after pthread_join returns, long on a loaded machine."""
    deadline = time.monotonic() + wait_s
    while (problem := _fork_hazard()) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    return problem


def _fork_hazard() -> str | None:
    """Why a fork now could leave the stage a lock no thread will release, or a CUDA context
    it cannot use; None if none."""
    if threading.active_count() > 1:
        return "a preloaded library started a Python thread: forking is unsafe"
    names = []
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            names.append(Path(f"/proc/self/task/{task}/comm").read_text().strip())
    others = [name for name in names if name not in FORK_AWARE_THREADS]
    if len(others) > 1:
        return f"{len(others) - 1} native thread(s) beside the main one: forking is unsafe"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "CUDA is initialised in the server: a forked stage cannot use it"
    return None


class _Server:
    """The listening server's state: its socket, its start environment and its handlers."""

    def __init__(self, listener: socket.socket, path: Path, inode: int, environ: dict) -> None:
        self.listener = listener
        self.path = path
        self.inode = inode
        self.environ = environ
        self.handlers: set[int] = set()
        self.fits = True  # False once a request showed the server no longer fits

    def serve_until_idle(self) -> None:
        idle_since = time.monotonic()
        while self.fits:
            readable, _, _ = select.select([self.listener], [], [], 1.0)
            if readable:
                self.answer(self.listener.accept()[0])
            self.handlers -= _reaped(self.handlers)
            if self.handlers:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > IDLE_S or self.replaced():
                return

    def answer(self, conn: socket.socket) -> None:
        """Fork a handler for this request, or refuse it if the server no longer fits the
        client (withdrawn first, so that the client's next try starts a fresh server)."""
        received = _receive(conn)
        if received is None:
            conn.close()
            return
        request, fds = received
        if self.fits:
            problem = _fork_hazard() or self.misfit(request.get("key", {}))
            if problem is None:
                self.handlers.add(self.fork_handler(conn, request, fds))
                return
            print(
                f"{time.strftime('%F %T')} refused a stage, stopped serving: {problem}", flush=True
            )
            self.fits = False
            self.withdraw()
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            conn.sendall(_STATUS.pack(REFUSED))
        conn.close()

    def misfit(self, client_key: dict[str, str]) -> str | None:
        try:
            parts = differing(server_key(self.environ), client_key)
        except OSError as err:
            return f"the server cannot tell its own Python ({err})"
        return f"the client's {', '.join(parts)} differ(s) from the server's" if parts else None

    def fork_handler(self, conn: socket.socket, request: dict, fds: list[int]) -> int:
        pid = os.fork()
        if pid:
            conn.close()
            for fd in fds:
                os.close(fd)
            return pid
        self.listener.close()
        try:
            status = _handle(conn, request, fds)
        except BaseException:  # a handler never returns into the server's loop
            status = 1
        os._exit(status)

    def withdraw(self) -> None:
        """Remove the socket, unless another server's has replaced it."""
        with _locked(self.path.with_suffix(".lock")):
            if not self.replaced():
                self.path.unlink()

    def replaced(self) -> bool:
        try:
            return self.path.stat().st_ino != self.inode
        except FileNotFoundError:
            return True


def _receive(conn: socket.socket) -> tuple[dict, list[int]] | None:
    """A client's request and its stdin, stdout and stderr; None if it sent none."""
    conn.settimeout(RECEIVE_TIMEOUT_S)
    fds: list[int] = []
    try:
        message, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
        (size,) = _HEADER.unpack(message[: _HEADER.size])
        body = message[_HEADER.size :]
        rest = _recv_exactly(conn, size - len(body)) if len(body) < size else b""
        request = json.loads(body + (rest or b""))
    except (OSError, ValueError, struct.error):
        for fd in fds:
            os.close(fd)
        return None
    conn.settimeout(None)
    return request, fds


def _reaped(pids: set[int]) -> set[int]:
    done = set()
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0]:
                done.add(pid)
    return done


def _handle(conn: socket.socket, request: dict, fds: list[int]) -> int:
    """One stage: fork it, relay signals, send its status. If the client goes away, the
    stage's process group is killed; if this handler does, the stage is (PR_SET_PDEATHSIG)."""
    handler = os.getpid()
    # Held back until the stage has the command's dispositions: none is lost or misread.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _RELAYED)
    stage = os.fork()
    if stage == 0:
        conn.close()
        os._exit(_run_stage(request, fds, handler))
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    with contextlib.suppress(OSError):
        os.setpgid(stage, stage)  # as the stage does: whichever runs first, no signal is lost
    for fd in fds:
        os.close(fd)
    status = _watch(conn, stage)
    with contextlib.suppress(OSError):
        conn.sendall(_STATUS.pack(status))
    return 0


def _watch(conn: socket.socket, stage: int) -> int:
    """Relay the client's signals to the stage's process group, as a terminal sends them,
    until the stage ends; its status (-signal if killed). If the client goes away (kill -9),
    the stage's whole process group is killed."""
    pidfd = os.pidfd_open(stage) if hasattr(os, "pidfd_open") else None
    watched = [conn] + ([pidfd] if pidfd is not None else [])
    while True:
        readable, _, _ = select.select(watched, [], [], 0.05 if pidfd is None else None)
        if conn in readable:
            relayed = conn.recv(64)
            with contextlib.suppress(ProcessLookupError):
                for sig in relayed:
                    os.killpg(stage, sig)
                if not relayed:
                    os.killpg(stage, signal.SIGKILL)
                    watched.remove(conn)
        pid, wait_status = os.waitpid(stage, os.WNOHANG)
        if pid:
            if os.WIFSIGNALED(wait_status):
                return -os.WTERMSIG(wait_status)
            return os.WEXITSTATUS(wait_status)


# The stage -----------------------------------------------------------------------------------


def _run_stage(request: dict, fds: list[int], handler: int) -> int:
    """In the forked stage process: become the client's process, run its module, and end as
    Python ends (its non-daemon threads joined, then its atexit handlers)."""
    _die_with(handler)
    os.setpgid(0, 0)  # its own group: the handler can signal it with every child it starts
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    _reopen_std_streams(request["env"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.umask(request["umask"])
    _fresh_state(request["cwd"])
    _command_signals(**request["signals"])  # last: what was held back since the fork arrives
    interrupted = False
    try:
        code = run_here(request["argv"][0], request["argv"][1:])
    except BaseException as err:  # as Python itself would: the traceback, then exit 1
        traceback.print_exc()
        code, interrupted = 1, isinstance(err, KeyboardInterrupt)
    _finalize()
    if interrupted:  # ...or, for Ctrl-C, by SIGINT, so that a shell knows (Python >= 3.8)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    return code


def _die_with(handler: int) -> None:
    """Have the kernel kill this process when `handler`, its parent, dies."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != handler:  # it died before the request above
        os._exit(1)


def _command_signals(ignored: list[int], blocked: list[int]) -> None:
    """The command's signal dispositions and mask, not the server's: what the command ignores
    is ignored, what only the server ignored (its starter's SIGINT, its own SIGHUP) is back at
    its default, SIGINT raising KeyboardInterrupt as in any Python. The rest is left as a new
    process has it, C handlers too (faulthandler's)."""
    for sig in signal.valid_signals() - set(_UNCATCHABLE):
        if sig in ignored:
            wanted = signal.SIG_IGN
        elif signal.getsignal(sig) == signal.SIG_IGN:
            wanted = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        else:
            continue
        with contextlib.suppress(OSError, ValueError):  # a number with no signal behind it
            signal.signal(sig, wanted)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _finalize() -> None:
    """What Python does after __main__: wait for the non-daemon threads, run the atexit
    handlers (the stage's own and its libraries', not the server's file removals), flush."""
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C while waiting: Python goes on too
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _reopen_std_streams(environ: dict[str, str]) -> None:
    """sys.stdin/stdout/stderr on the client's descriptors, buffered as a new process's are:
    stderr by line, stdout by line on a terminal (or with PYTHONUNBUFFERED), else by block."""
    sys.stdin = sys.__stdin__ = open(0, closefd=False)  # noqa: SIM115  (open while it runs)
    line = bool(environ.get("PYTHONUNBUFFERED")) or os.isatty(1)
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1 if line else -1, closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2, "w", buffering=1, errors="backslashreplace", closefd=False
    )
    if faulthandler.is_enabled():  # PYTHONFAULTHANDLER: onto this stderr, not the server's log
        faulthandler.enable(sys.stderr)


def _fresh_state(cwd: str) -> None:
    """What a new `python -m` process would have that a fork of the server does not: the
    project's modules from `cwd`, not imported yet, unshared random seeds, and none of the
    server's own clean-ups at exit."""
    for name in list(sys.modules):
        if name.split(".")[0] in PROJECT_PACKAGES:
            del sys.modules[name]
    if not sys.flags.safe_path:  # where `python -m` puts the working directory
        sys.path[0] = cwd
    import importlib
    import random

    importlib.invalidate_caches()
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    # A library's handler that flushes logs, ends an open MLflow run or stops worker
    # processes acts on this process's copy, as in a cold one; one that removes a file made
    # when the server imported the library would remove the server's.
    for remove in _FILE_REMOVERS:
        atexit.unregister(remove)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "--serve":
        sys.exit(f"usage: python -m {__spec__.name} --serve SOCKET KEY")
    sys.exit(serve(Path(sys.argv[2]), json.loads(sys.argv[3])))
