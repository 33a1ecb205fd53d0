"""Which warm server may run a command's stage (runner/warm.py): one whose Python, installed
libraries, environment and process context are the command's own, so that forking it gives
the stage what a process of its own would have had.

A fork inherits what the server loaded and read when it started. A server is therefore
keyed on everything that decides what a stage computes or may use:

- interpreter: the Python binary and the virtual environment by identity (device, inode,
  mtime: not only the path, so `rm -rf .venv && make install` at the same path is another
  one), and the interpreter's flags (-O, -X, -W, ...), which the server is started with;
- distributions: the name and mtime of every `*.dist-info` / `*.egg-info` in every folder
  on sys.path (one scandir each), so installing, upgrading or reinstalling any library
  (`pip install -U timm`, `make install` with new pins) is another server, never the old
  modules in memory beside the new files on disk;
- environment: every variable except PER_COMMAND, because libraries read theirs when they
  load (HF_HUB_OFFLINE, TIMM_*, SKLEARN_*, locale, TZ, ...) and no list of prefixes can
  know them all;
- context: user and groups, capabilities, CPU and memory-node affinity, rlimits, nice,
  cgroup and namespaces, which a fork keeps from the server, not from the command;
- runner: this module's and warm.py's own code.

The client names the server's socket after the key; the server recomputes its own for
every request and serves only an equal one (its cgroup, affinity or limits can change
under it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import resource
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# Variables that change from one command to the next without changing what a library loads
# or a stage computes; a stage still gets them, from its own command's environment.
PER_COMMAND = frozenset(
    {
        # DVC's, per stage and per experiment; the stage reads them when it runs (shell.py,
        # tracking.py), never a library when it loads.
        "DVC_STAGE",
        "DVC_ROOT",
        "DVC_EXP_NAME",
        "DVC_EXP_BASELINE_REV",
        # The launcher's own: the command's pid (timeline.LAUNCHER_PID) and the switch.
        "TRANSFERLAB_LAUNCHER_PID",
        "TRANSFERLAB_WARM",
        # The shell's, per command: the program's path, the directory (sent apart, as the
        # stage's working directory) and the nesting depth (dvc's shell or a terminal's).
        "_",
        "PWD",
        "OLDPWD",
        "SHLVL",
        # Where runs are logged: store.py and tracking.py read these when a stage opens its
        # run (MlflowClient(uri)), never a library at import; a team's server or a test's
        # own store changes no computation.
        "MLFLOW_TRACKING_URI",
        "MLFLOW_EXPERIMENT_NAME",
        # pytest's, per test: a suite's stages share servers as a pipeline's do.
        "PYTEST_CURRENT_TEST",
    }
)
NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")
RUNNER_FILES = (Path(__file__), Path(__file__).with_name("warm.py"))
# The lines of /proc/self/status that a fork keeps and a computation or its rights can see.
STATUS_FIELDS = ("Uid", "Gid", "Groups", "Mems_allowed_list", "NoNewPrivs", "Seccomp")
STATUS_FIELDS += ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def server_key(environ: Mapping[str, str]) -> dict[str, str]:
    """This process's key for a server started with `environ`: a digest per part."""
    parts = {
        "interpreter": interpreter(),
        "distributions": distributions(),
        "environment": sorted((k, v) for k, v in environ.items() if k not in PER_COMMAND),
        "context": context(),
        "runner": runner(),
    }
    return {name: _digest(value) for name, value in parts.items()}


@functools.cache
def runner() -> list[str]:
    """The runner's code, as this process loaded it."""
    return [hashlib.sha256(path.read_bytes()).hexdigest() for path in RUNNER_FILES]


def key_name(key: Mapping[str, str]) -> str:
    """The key in a socket's name."""
    return _digest(sorted(key.items()))[:20]


def interpreter_flags() -> list[str]:
    """The command-line options that give another Python this one's flags (-O, -W, -X...)."""
    options = subprocess._args_from_interpreter_flags()  # what multiprocessing starts with
    for name, value in sys._xoptions.items():  # it passes only some -X options
        option = name if value is True else f"{name}={value}"
        if option not in options:
            options += ["-X", option]
    return options


def interpreter() -> list:
    """The interpreter binary, the environment (sys.prefix, its pyvenv.cfg) and the flags,
    by identity: a file or folder made again at the same path is another one."""
    return [
        sys.executable,
        _identity(sys.executable),
        _identity(sys.executable, follow=False),  # a venv's link to the binary
        sys.prefix,
        _identity(sys.prefix),
        _identity(os.path.join(sys.prefix, "pyvenv.cfg")),
        [list(sys.flags), sys.warnoptions, sys._xoptions],
    ]


def distributions() -> list:
    """Per folder on sys.path: its identity and its distributions' names and mtimes."""
    found = []
    for folder in library_path():
        try:
            with os.scandir(folder) as entries:
                listed = sorted(
                    (entry.name, entry.stat().st_mtime_ns)
                    for entry in entries
                    if entry.name.endswith((".dist-info", ".egg-info"))
                )
            info = os.stat(folder)
        except OSError:  # not a folder (a zip, an import hook) or gone
            found.append([folder, None])
            continue
        found.append([folder, info.st_dev, info.st_ino, listed])
    return found


def library_path() -> list[str]:
    """sys.path without the command's own folder, which a stage replaces with its own."""
    return sys.path[0 if sys.flags.safe_path else 1 :]


def context() -> dict:
    """What a process keeps across fork and exec that is not in its environment."""
    status = (_read("/proc/self/status") or "").splitlines()
    return {
        "status": [line for line in status if line.split(":")[0] in STATUS_FIELDS],
        "affinity": sorted(os.sched_getaffinity(0)),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "rlimits": {
            name: resource.getrlimit(getattr(resource, name))
            for name in dir(resource)
            if name.startswith("RLIMIT_")
        },
        "cgroup": _read("/proc/self/cgroup"),
        "namespaces": {name: _link(f"/proc/self/ns/{name}") for name in NAMESPACES},
    }


def differing(mine: Mapping[str, str], theirs: Mapping[str, str]) -> list[str]:
    """The parts of two keys that differ, by name."""
    return sorted(name for name in {*mine, *theirs} if mine.get(name) != theirs.get(name))


def _identity(path: str, *, follow: bool = True) -> list[int] | None:
    try:
        info = os.stat(path, follow_symlinks=follow)
    except OSError:
        return None
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _link(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()
