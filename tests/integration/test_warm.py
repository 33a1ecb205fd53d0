"""The warm runner changes where a stage starts, never what it computes: a stage run cold
(TRANSFERLAB_WARM=0, its own process) writes the same bytes as the warm run that `dvc repro`
made, and a tracked stage that DVC runs warm logs to MLflow as before. What DVC sets per
stage does not keep a server from serving every stage of a `dvc repro`."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.integration.conftest import BIN
from tests.unit.runner.test_warm import make_workspace, private_tmp
from transferlab.runner import warm

STAGES = {  # a command's arguments -> the output folder whose files must match
    ("stages.finetune", "full"): "data/methods/full/tiny",
    ("stages.probe", "tiny"): "data/methods/probe/tiny",
}


@pytest.mark.slow
def test_a_stage_run_cold_writes_the_bytes_dvc_s_warm_run_wrote(reproduced, reproduced_copy):
    ws = reproduced_copy
    ws.env[warm.WARM] = "0"
    for (module, arg), folder in STAGES.items():
        ws.run(str(BIN / "python"), "-m", "transferlab.runner.launch", "-m", module, arg)
        files = sorted(p for p in (reproduced.root / folder).iterdir() if p.name != "record.json")
        assert files, folder
        for path in files:
            cold = (ws.root / folder / path.name).read_bytes()
            assert cold == path.read_bytes(), f"{folder}/{path.name} differs warm and cold"
    timings = ws.paths()["timings"]
    warm_run = json.loads((reproduced.root / timings / "finetune@full.json").read_text())
    cold_run = json.loads((ws.root / timings / "finetune@full.json").read_text())
    assert warm_run["warm"] is True and cold_run["warm"] is False


@pytest.mark.slow
def test_one_server_runs_every_stage_of_a_dvc_repro(tmp_path):
    ws = make_workspace(tmp_path / "ws", "dvc")
    launch = "python -m transferlab.runner.launch -m stages.toy"
    stages = {name: {"cmd": f"{launch} {name}"} for name in ("first", "second")}
    (ws / "dvc.yaml").write_text(json.dumps({"stages": stages}))  # JSON is YAML
    with private_tmp() as environ:
        environ["PATH"] = f"{BIN}{os.pathsep}{environ['PATH']}"
        run = {"cwd": ws, "env": environ, "capture_output": True, "text": True, "check": True}
        subprocess.run([str(BIN / "dvc"), "init", "--no-scm", "-q"], **run)
        done = subprocess.run([str(BIN / "dvc"), "repro"], **run)
    seen = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [stage["argv"] for stage in seen] == [["first"], ["second"]], done.stdout
    assert all(stage["warm"] for stage in seen), done.stderr
    assert seen[0]["server"] == seen[1]["server"], "DVC's per-stage variables split the server"
