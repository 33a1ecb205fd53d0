"""A warm server serves only the commands it fits (runner/warm_key.py): through the real
launcher, a command whose installed libraries, library settings or CPU affinity differ from
a running server's gets a server of its own, and a server whose own context has changed
since it started refuses the next command, which a fresh server then runs.

Each test starts its servers in a TMPDIR of its own, from the toy workspace of
test_warm.py."""

from __future__ import annotations

import os
import time

import pytest

from tests.unit.runner.test_warm import (
    alive,
    finished,
    install_toylib,
    launch,
    make_site,
    make_workspace,
    private_tmp,
    with_site,
)


@pytest.fixture
def workspace(tmp_path):
    return make_workspace(tmp_path / "ws", "first")


@pytest.fixture
def fresh_env():
    with private_tmp() as environ:
        yield environ


def test_a_library_upgraded_between_two_commands_is_the_new_one(workspace, fresh_env, tmp_path):
    site = make_site(tmp_path / "site", "1.0")  # imported by the server when it starts
    environ = with_site(fresh_env, site)
    code, seen, err = finished(launch(workspace, environ))
    assert code == 0 and seen["warm"] is True, err
    assert seen["toylib"]["module"] == seen["toylib"]["installed"] == "1.0"
    install_toylib(site, "2.0")  # pip install -U toylib
    code, seen, err = finished(launch(workspace, environ))
    assert code == 0 and seen["warm"] is True, err
    assert seen["toylib"]["installed"] == "2.0"
    assert seen["toylib"]["module"] == "2.0", "the stage computed with the old version"


def test_a_library_setting_given_to_one_command_is_in_force_in_its_stage(workspace, fresh_env):
    online = {k: v for k, v in fresh_env.items() if k != "HF_HUB_OFFLINE"}
    code, seen, err = finished(launch(workspace, online, "hub"))
    assert code == 0 and seen["warm"] is True and seen["hub_offline"] is False, err
    # huggingface_hub reads it once, when imported: the first server read it unset.
    code, seen, err = finished(launch(workspace, {**online, "HF_HUB_OFFLINE": "1"}, "hub"))
    assert code == 0 and seen["warm"] is True, err
    assert seen["hub_offline"] is True


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_a_command_with_another_cpu_affinity_gets_a_server_with_it(workspace, fresh_env):
    cpus = sorted(os.sched_getaffinity(0))
    code, seen, err = finished(launch(workspace, fresh_env))
    assert code == 0 and seen["warm"] is True and seen["affinity"] == cpus, err

    def on_last_cpu():  # `taskset -c N dvc repro`
        os.sched_setaffinity(0, {cpus[-1]})

    code, seen, err = finished(launch(workspace, fresh_env, preexec_fn=on_last_cpu))
    assert code == 0 and seen["warm"] is True, err
    assert seen["affinity"] == [cpus[-1]]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_a_server_whose_context_changed_refuses_and_a_fresh_one_serves(workspace, fresh_env):
    cpus = sorted(os.sched_getaffinity(0))
    code, seen, err = finished(launch(workspace, fresh_env))
    assert code == 0 and seen["warm"] is True, err
    first_server = seen["server"]
    os.sched_setaffinity(first_server, {cpus[0]})  # `taskset -p`, a cgroup moved, ...
    code, seen, err = finished(launch(workspace, fresh_env))
    assert code == 0 and seen["warm"] is True, err
    assert err == "to stderr\n"  # no warning: the command never notices
    assert seen["affinity"] == cpus and seen["server"] != first_server
    deadline = time.monotonic() + 30
    while alive(first_server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(first_server), "the refusing server did not exit"
