"""The MLflow store: where it is, whether it answers, and one writer at a time.

The store is MLFLOW_TRACKING_URI when set (e.g. an `mlflow server` shared by a team), else
`sqlite:///mlflow.db` at the DVC repo root. Parallel writers to that sqlite file
(`dvc queue start -j N`) take turns through a file lock beside it. Reachability is checked
in about CHECK_TIMEOUT_S seconds with the standard library alone, before MLflow is imported.
Nothing here imports mlflow.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from transferlab import provenance

DEFAULT_STORE = "mlflow.db"  # at the DVC repo root, when MLFLOW_TRACKING_URI is unset
DEFAULT_ARTIFACTS = "mlartifacts"
CHECK_TIMEOUT_S = 2.0
# A sqlite store's lock is held for one batch of calls; far longer means a stuck writer.
LOCK_TIMEOUT_S = 120.0
_USERINFO = re.compile(r"(?<=://)[^/\s@]+@")
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:password|passwd|pwd|token|access_token|secret|api_key|key|sig)=)[^&;\s]*"
)


class TrackingUnavailable(Exception):
    """The tracking store did not answer the quick reachability check."""


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else sqlite at the DVC repo root (DVC_ROOT), else here.

    Queued experiments run in temp copies that DVC deletes afterwards; DVC_ROOT names the
    main repo there, so their runs land in the same store as `dvc repro`'s.
    """
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{provenance.repo_root() / DEFAULT_STORE}"


@contextlib.contextmanager
def store_lock(uri: str, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive lock on <db>.lock while using a sqlite store; no-op for servers.

    sqlite allows one writer, and MLflow's first connection migrates the schema: parallel
    `dvc queue` workers otherwise fail with "database is locked" or race on creation.
    Waits at most `timeout` seconds (TrackingUnavailable), so a stuck writer costs other
    stages their logging, never their run. Not re-entrant: never nest it.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: parallel experiments there need an `mlflow server`
        fcntl = None
    if fcntl is None or not uri.startswith("sqlite:///"):
        yield
        return

    lock = Path(uri.removeprefix("sqlite:///") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TrackingUnavailable(
                        f"{lock} held by another process for {timeout:.0f} s"
                    ) from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_reachable(uri: str, timeout: float = CHECK_TIMEOUT_S) -> None:
    """Raise TrackingUnavailable within about `timeout` seconds if the store cannot answer."""
    scheme = uri.split(":", 1)[0].lower()
    if scheme in ("http", "https"):
        _check_http(_USERINFO.sub("", uri).rstrip("/") + "/health", timeout)
    elif scheme == "sqlite":
        _check_sqlite(uri, timeout)


def redact(text: str) -> str:
    """Strip credentials (user:password@, ?token=...) from any URI inside `text`."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub("***@", text))


def _check_http(url: str, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            pass
    except urllib.error.HTTPError as err:
        if err.code >= 500:  # 401/403/404 mean something answers; let MLflow's calls decide
            raise TrackingUnavailable(f"HTTP {err.code} from /health") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        if "CERTIFICATE" in str(reason).upper():  # the server is there; TLS is MLflow's job
            return
        raise TrackingUnavailable(f"{reason}") from None


def _check_sqlite(uri: str, timeout: float) -> None:
    path = uri.split(":///", 1)[-1].split("?", 1)[0]
    if not path or path == ":memory:":
        return
    if not os.path.exists(path):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.access(folder, os.W_OK):
            raise TrackingUnavailable(f"cannot create {path}: {folder} is not writable")
        return
    try:
        connection = sqlite3.connect(path, timeout=timeout)
        try:  # take and drop the write lock: fails fast when another process holds it
            connection.execute("BEGIN IMMEDIATE")
            connection.rollback()
        finally:
            connection.close()
    except sqlite3.Error as err:
        raise TrackingUnavailable(f"{path}: {err}") from None
