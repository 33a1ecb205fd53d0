"""Where a stage's time went: the four parts, the steady rate, and the gathered timeline."""

import json
import os
import time

import torch

from transferlab import timeline
from transferlab.evaluation.rendering import figures, report


def test_process_start_is_this_process_s_start():
    import subprocess
    import sys
    from pathlib import Path

    uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert time.time() - uptime - 1 < timeline.process_start() <= time.time()
    code = (
        "import time; from transferlab.timeline import process_start as p; print(time.time() - p())"
    )
    age = float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )
    assert 0 <= age < 60  # a fresh process: its start is seconds ago, not the machine's boot


def test_parts_split_the_wall_time_and_rate_counts_only_steady_steps():
    clock = timeline.StageClock(started=100.0)
    clock.ready_at = 103.0  # imports, data and model took 3 s
    clock.first_step_at = 105.0  # the first step took 2 s
    clock.steady_items = 400  # four more steps of 100 after it
    clock.computed_at = 109.0
    parts = clock.parts(now=110.0)
    assert parts["ready_s"] == 3.0 and parts["first_step_s"] == 2.0
    assert parts["steady_s"] == 4.0 and parts["write_s"] == 1.0 and parts["total_s"] == 10.0
    assert parts["steady_items_per_s"] == 100.0
    assert sum(parts[f"{p}_s"] for p in timeline.PARTS) == parts["total_s"]


def test_steps_mark_ready_and_first_step_once():
    clock = timeline.StageClock()
    clock.step(8, torch.device("cpu"))
    first = clock.first_step_at
    assert clock.ready_at is not None and first is not None and clock.steady_items == 0
    clock.step(8)
    clock.step(8)
    clock.computed()
    clock.computed()  # the first end counts
    assert clock.first_step_at == first and clock.steady_items == 16
    assert clock.ready_at <= first <= clock.computed_at


def test_a_stage_without_batches_is_all_steady():
    clock = timeline.StageClock(started=0.0)
    clock.ready_at, clock.computed_at = 1.0, 4.0
    parts = clock.parts(now=4.5)
    assert parts["first_step_s"] == 0.0 and parts["steady_s"] == 3.0
    assert parts["steady_items_per_s"] is None


def test_gather_orders_by_start_and_adds_the_running_stage(tmp_path):
    for name, started in (("probe", 20.0), ("extract", 10.0), ("knn@removed", 15.0)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"started": started}))
    # knn@removed: a stage no longer in the pipeline (its candidate was removed) is left out;
    # a stage that has not written its timing (scores) is simply absent.
    stages = ["probe", "extract", "scores"]
    gathered = timeline.gather(tmp_path, stages, evaluate={"started": 30.0})
    assert list(gathered) == ["extract", "probe", "evaluate"]


def test_report_table_and_gantt_png(tmp_path):
    clock = timeline.StageClock(started=0.0)
    clock.ready_at, clock.first_step_at, clock.computed_at = 2.0, 3.0, 7.0
    clock.steady_items = 400
    timings = {"extract": clock.parts(now=8.0)}
    rows = report.timing_lines(timings, {})
    assert rows[2] == "| extract | 2.0 | 1.0 | 4.0 | 1.0 | 8.0 | 100 |"
    assert rows[-1].startswith("Outside computation: 3.0 s of the 8.0 s")
    figures.plot_timeline(timings, {}, tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_records_keep_the_start_order_that_json_key_sorting_would_lose(tmp_path):
    from transferlab import io

    timings = {"prepare": {"started": 1.0, "run": "a"}, "extract": {"started": 2.0, "run": "a"}}
    io.write_json(tmp_path / "timeline.json", timeline.records(timings, "a"))
    written = json.loads((tmp_path / "timeline.json").read_text())
    assert [t["stage"] for t in written] == ["prepare", "extract"]
    assert not any(t["cached"] for t in written)


def test_pipeline_key_is_stable_within_a_process_and_stamps_every_timing():
    assert timeline.pipeline_key() == timeline.pipeline_key()
    assert str(os.getpid()) in timeline.pipeline_key()  # no dvc above pytest
    assert timeline.StageClock(started=0.0).parts(now=1.0)["run"] == timeline.pipeline_key()


def test_stages_another_run_measured_are_cached_and_stay_off_the_time_axis(tmp_path):
    """A timing left by an earlier `dvc repro` (DVC skipped its stage; its file came from git,
    three days and another machine earlier) is this run's only by name: split keeps it out of
    the run's stages, records mark it, and the Gantt chart's axis spans this run alone."""
    now = timeline.pipeline_key()
    day = 86_400.0
    timings = {
        "scores@lite0": {**_parts(1000.0, 3.5), "run": "other-host:42:7"},  # the planted one
        "extract@lite0": {**_parts(3 * day, 20.0), "run": now},
        "evaluate": {**_parts(3 * day + 25.0, 5.0), "run": now},
    }
    ran, cached = timeline.split(timings, now)
    assert list(ran) == ["extract@lite0", "evaluate"] and list(cached) == ["scores@lite0"]
    flags = {r["stage"]: r["cached"] for r in timeline.records(timings, now)}
    assert flags == {"scores@lite0": True, "extract@lite0": False, "evaluate": False}
    lines = report.timing_lines(ran, cached)
    assert "| scores@lite0 |" not in "\n".join(lines[:4])
    assert any(line.startswith("Cached") and "scores@lite0" in line for line in lines)
    axis = figures.plot_timeline(ran, cached, tmp_path / "timeline.png")
    assert axis == (0.0, 30.0)  # this run's 30 seconds, not three days
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def _parts(started: float, total: float) -> dict:
    return {
        "started": started,
        "ready_s": 1.0,
        "first_step_s": 0.0,
        "steady_s": total - 1.0,
        "write_s": 0.0,
        "total_s": total,
        "steady_items_per_s": None,
    }


def test_outside_sums_ready_first_steps_and_the_gaps_between_stages():
    def stage(started, total, ready, first):
        return {
            "started": started,
            "total_s": total,
            "ready_s": ready,
            "first_step_s": first,
            "steady_s": total - ready - first,
            "write_s": 0.0,
        }

    ran = {
        "a": stage(100.0, 10.0, 1.0, 0.5),
        "b": stage(112.0, 20.0, 0.5, 0.0),
        # a queue worker's stage overlapping b's: no gap, and the span ends at b's end
        "c": stage(120.0, 5.0, 0.25, 0.0),
    }
    parts = timeline.outside(ran)
    assert parts["span_s"] == 32.0
    assert parts["between_s"] == 2.0  # a ends at 110, b starts at 112
    assert parts["ready_s"] == 1.75 and parts["first_step_s"] == 0.5
    assert parts["outside_s"] == 4.25
    assert parts["share"] == round(4.25 / 32, 4)
    lines = report.timing_lines(ran, {})
    assert "Outside computation: 4.2 s of the 32.0 s" in lines[-1]
    assert "(13.3 %)" in lines[-1]
    assert timeline.outside({}) == {}
