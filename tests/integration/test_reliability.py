"""What happens when things go wrong, driven from outside as a user would meet it.

Bad params and signals are checked on a bare stage process; kill -9, a dead tracking
server and run-to-run determinism on the real `dvc repro` in clones of the shared shrunk
workspace, whose own run is the uninterrupted reference.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from tests.conftest import REPO, closed_port
from tests.integration.conftest import Workspace
from transferlab import tracking

# Keys whose values measure the machine (wall-clock timings, peak memory), not the result:
# everything else must match byte for byte.
TIMINGS = {
    "seconds",
    "images_per_s",
    "steady_images_per_s",
    "fit_seconds",
    "train_images_per_s",
    "train_seconds",
    "peak_rss_mb",
}
# The report's section of stage timings, up to the next heading.
TIMING_SECTION = re.compile(rb"## Where the time went.*?(?=\n## |\Z)", re.S)
# The backbone leaderboard's extraction cost (ms / image, its sixth column): measured.
LEADERBOARD_COST = re.compile(rb"^(\| \d+ \|(?: [^|]* \|){4}) [\d.]+ \|", re.M)
# The recommendation states each method's measured time ("201 s, " and ", 5.5x its time"),
# and the training section a learning-rate search's ("the search cost 61 s, 4 epochs").
RECOMMENDATION_TIMES = re.compile(rb"\b\d+ s, |, [\d.]+x its time")
KILL_MARKER = "full epoch 1"  # finetune@full is training (its progress bar has appeared)


def run_python(cwd: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_bad_params_stop_a_stage_with_one_line_and_no_traceback(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["probe"]["C_nmu"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")  # its vars: where outputs go
    _, stderr = run_python(tmp_path, "-m", "stages.probe").communicate(timeout=120)
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("error: unknown key probe.C_nmu")


def test_sigterm_unwinds_and_leaves_no_temporary_file(tmp_path):
    script = textwrap.dedent(
        """
        import time
        from transferlab import io
        from transferlab.shell import cli

        @cli
        def main():
            with io.atomic_path("out/features.npy") as tmp:
                tmp.write_text("half")
                open("started", "w").close()
                time.sleep(60)

        main()
        """
    )
    process = run_python(tmp_path, "-c", script)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130 and "interrupted" in stderr
    assert list((tmp_path / "out").iterdir()) == []


def clone(reproduced: Workspace, root: Path, mlflow_db: Path) -> Workspace:
    """A fresh clone of the shared workspace's commit: the same code, params and weights,
    no outputs, no DVC cache, an empty MLflow store."""
    reproduced.run("git", "clone", "-q", str(reproduced.root), str(root))
    shutil.copyfile(mlflow_db, root / "mlflow.db")
    return Workspace(root)


def results(ws: Workspace) -> dict[str, bytes | dict]:
    """Every DVC output file's bytes; JSON reports with their timing fields dropped, and
    report.md without its timing section, the recommendation's measured times and the
    extraction costs, the backbones' plot table
    without its cost column. Left out: the files that only time the stages (paths.timings,
    paths.timeline and its PNG), the PNG of accuracy against extraction cost, and
    report.html, which is report.md and the figures rendered into one page."""
    paths = ws.paths()
    measured = {
        Path(paths["timeline"]),
        Path(paths["figures"]) / "timeline.png",
        Path(paths["figures"]) / "backbones.png",
    }
    if "report_html" in paths:
        measured.add(Path(paths["report_html"]))
    found: dict[str, bytes | dict] = {}
    for folder in ("data", "reports"):
        for path in sorted((ws.root / folder).rglob("*")):
            name = path.relative_to(ws.root)
            if not path.is_file() or name in measured or name.is_relative_to(paths["timings"]):
                continue
            found[str(name)] = path.read_bytes()
            if path.suffix == ".json":
                found[str(name)] = _drop_timings(json.loads(found[str(name)]))
            elif name == Path(paths["report"]):
                text = TIMING_SECTION.sub(b"", found[str(name)])
                text = RECOMMENDATION_TIMES.sub(b"", text)
                found[str(name)] = LEADERBOARD_COST.sub(rb"\1 - |", text)
            elif name == Path(paths["plots"]) / "backbones.csv":
                rows = [line.split(b",") for line in found[str(name)].splitlines()]
                found[str(name)] = [[r[0], *r[2:]] for r in rows]  # ms_per_image dropped
    return found


def _drop_timings(value):
    if isinstance(value, dict):
        return {k: _drop_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_drop_timings(v) for v in value]
    return value


def tracked_stages(ws: Workspace) -> int:
    client = MlflowClient(f"sqlite:///{ws.root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    runs = client.search_runs([experiment.experiment_id])
    # a stage's run, not the one-per-backbone runs evaluate adds beside them
    stages = [r for r in runs if not r.data.tags.get("stage", "").startswith("backbone@")]
    return sum(MLFLOW_PARENT_RUN_ID in r.data.tags for r in stages)


@pytest.mark.slow
def test_kill_9_and_a_dead_tracker_leave_the_result_of_one_clean_tracked_run(
    reproduced, tmp_path, empty_mlflow_db
):
    """A second CPU run from the same commit, with its tracking server down and kill -9'd
    mid-stage, then repro'd: outputs identical to the shared clean tracked run's.

    One run checks three things at the cost of one: run-to-run determinism, that a dead
    tracker changes nothing but a warning per stage, and that kill -9 then repro resumes
    to the uninterrupted result."""
    uninterrupted = reproduced
    ws = clone(reproduced, tmp_path / "killed", empty_mlflow_db)
    ws.env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{closed_port()}"
    log_path = tmp_path / "killed.log"
    start = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dvc"), "repro"],
            cwd=ws.root,
            env=ws.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: dvc and the stage die together
        )
        deadline = time.monotonic() + 600
        while KILL_MARKER not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    lock = yaml.safe_load((ws.root / "dvc.lock").read_text())
    assert "finetune@full" not in lock["stages"], "the kill came after the stage finished"
    assert not (ws.root / "data/methods/full/tiny/model.pt").exists()

    done = ws.dvc("repro")
    log = log_path.read_text() + done.stdout + done.stderr
    assert time.monotonic() - start < 600
    # Every stage ran once, the killed one twice; each that logs to MLflow (one run each in
    # the reference's store) warned once per start, and carried on untracked.
    stages = len(ws.dvc("stage", "list").stdout.splitlines())
    assert log.count("Running stage") == stages + 1, log
    warned = log.count("warning: MLflow tracking at http://127.0.0.1")
    assert warned == tracked_stages(uninterrupted) + 1, log
    first, second = results(uninterrupted), results(ws)
    assert sorted(first) == sorted(second)
    assert {"reports/metrics.json", "data/features/tiny/train_features.npy"} <= set(first)
    assert (uninterrupted.root / "reports/metrics.json").read_bytes() == (
        ws.root / "reports/metrics.json"
    ).read_bytes()
    for name in first:
        assert first[name] == second[name], f"{name} differs from the clean tracked run"
