"""The workspace helper every integration test drives dvc through: a command that leaves a
daemon behind (as `dvc queue start` does) returns, and a command that hangs fails."""

import re
import time

import pytest

from tests.integration.conftest import Workspace, kill_session, proc_stat


def alive(pid: int) -> bool:
    fields = proc_stat(pid)
    return fields is not None and fields[0] != "Z"  # a zombie has exited


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_a_daemon_left_behind_neither_holds_the_call_nor_survives_its_session(tmp_path):
    start = time.monotonic()
    done = Workspace(tmp_path).run("sh", "-c", "sleep 60 & echo $!")
    assert time.monotonic() - start < 10  # the sleeper still holds the command's stdout
    assert done.stdout.strip().isdigit()
    sleeper = int(done.stdout)
    assert alive(sleeper)
    kill_session(done.session)
    assert gone(sleeper)


def test_a_command_past_its_limit_is_killed_with_its_session_and_fails(tmp_path):
    start = time.monotonic()
    with pytest.raises(AssertionError, match="still running after 1 s, killed:") as failed:
        Workspace(tmp_path).run("sh", "-c", "sleep 60 & echo sleeper $!; wait", timeout=1)
    assert time.monotonic() - start < 10
    sleeper = int(re.search(r"sleeper (\d+)", str(failed.value)).group(1))
    assert gone(sleeper)
