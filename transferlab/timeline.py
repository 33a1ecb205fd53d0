"""Where a stage's wall time went, in four parts, on any device.

- ready: from the process's start to the first computation (interpreter and imports, params,
  data, model, process group);
- first_step: the first batch or training step (lazy CUDA initialisation, cuDNN autotuning);
- steady: the rest of the computation, with its items per second;
- write: writing outputs and logging them.

A stage creates one StageClock, marks `ready()` and `computed()`, and hands it to the code
that loops over batches, which calls `step(items)` after each one. Pure Python; torch only
to wait for queued GPU work, imported then (a stage without torch never pays its import);
no dvc, no mlflow.

Each timing names the `dvc` process that ran it (`pipeline_key`). DVC skips a stage whose
inputs did not change and leaves its timing file as it was (in git when it is not cached),
so the stage that gathers the timings tells this run's stages from those a run before
measured: those are shown as cached, with when and where they were measured, never on this
run's time axis nor in its time deltas.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PARTS = ("ready", "first_step", "steady", "write")
# Set by the warm runner (runner/warm.py) in the environment of a stage it forks: the pid of
# the process dvc started, whose start and ancestors are the stage's.
LAUNCHER_PID = "TRANSFERLAB_LAUNCHER_PID"
_PROCESS_TOKEN = uuid.uuid4().hex  # stands in for a start time where /proc is absent


def launched_pid() -> int:
    """The process dvc started for this stage: the warm runner's client, else this one."""
    pid = os.environ.get(LAUNCHER_PID, "")
    return int(pid) if pid.isdigit() and Path(f"/proc/{pid}").exists() else os.getpid()


def pipeline_key() -> str:
    """Identify the running `dvc` process (host, pid, start time); else this stage's."""
    pid = own = launched_pid()
    for _ in range(32):
        stat = _proc_stat(pid)
        if stat is None:
            break
        ppid, start = stat
        if _is_dvc(pid):
            return f"{socket.gethostname()}:{pid}:{start}"
        if ppid <= 1:
            break
        pid = ppid
    own_stat = _proc_stat(own)
    return f"{socket.gethostname()}:{own}:{own_stat[1] if own_stat else _PROCESS_TOKEN}"


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) from /proc; None where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def _is_dvc(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    names = [os.path.basename(a.decode(errors="replace")) for a in argv[:3]]
    return "dvc" in names or any(n == "dvc" or n.startswith("dvc.") for n in names[1:2])


def process_start() -> float:
    """When dvc started this stage's process (launched_pid), as a Unix time, from /proc; now
    where /proc is absent."""
    try:
        stat = Path(f"/proc/{launched_pid()}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return time.time()
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")


class StageClock:
    """Timestamps of one stage process's parts; `parts()` turns them into seconds."""

    def __init__(self, started: float | None = None) -> None:
        self.started = process_start() if started is None else started
        self.ready_at: float | None = None
        self.first_step_at: float | None = None
        self.computed_at: float | None = None
        self.steady_items = 0

    def ready(self) -> None:
        """The computation starts now (the first call counts)."""
        if self.ready_at is None:
            self.ready_at = time.time()

    def step(self, items: int, device: torch.device | None = None) -> None:
        """A batch or step of `items` finished; the first one waits for the GPU to finish it."""
        self.ready()
        if self.first_step_at is None:
            if device is not None and device.type == "cuda":
                import torch

                torch.cuda.synchronize(device)
            self.first_step_at = time.time()
        else:
            self.steady_items += items

    def computed(self) -> None:
        """The computation ended (results are on the host); the first call counts."""
        self.ready()
        if self.computed_at is None:
            self.computed_at = time.time()

    def parts(self, now: float | None = None) -> dict[str, float | int | None]:
        """Seconds per part, the steady rate, and the process's start, as of `now`."""
        now = time.time() if now is None else now
        ready = self.ready_at if self.ready_at is not None else now
        computed = self.computed_at if self.computed_at is not None else now
        first = self.first_step_at if self.first_step_at is not None else ready
        steady = computed - first
        return {
            "run": pipeline_key(),
            "warm": launched_pid() != os.getpid(),  # forked by the warm runner (runner/warm.py)
            "started": round(self.started, 3),
            "ready_s": round(ready - self.started, 3),
            "first_step_s": round(first - ready, 3),
            "steady_s": round(steady, 3),
            "write_s": round(now - computed, 3),
            "total_s": round(now - self.started, 3),
            "steady_items": self.steady_items,
            "steady_items_per_s": (
                round(self.steady_items / steady, 1) if self.steady_items and steady > 0 else None
            ),
        }


def timing_file(directory: Path, stage: str) -> Path:
    """Where stage `stage` writes its timing: the one naming rule, for writers and gather."""
    return Path(directory) / f"{stage}.json"


def gather(directory: Path, stages: Iterable[str], **current: dict) -> dict[str, dict]:
    """The parts of each of `stages` that wrote <directory>/<stage>.json, plus `current`
    stages' (still running, e.g. the stage gathering them), in the order they started."""
    paths = [timing_file(directory, stage) for stage in stages]
    found = {path.stem: _read(path) for path in paths if path.is_file()}
    found.update(current)
    return dict(sorted(found.items(), key=lambda item: item[1]["started"]))


def split(timings: dict[str, dict], run: str) -> tuple[dict[str, dict], dict[str, dict]]:
    """(the timings measured by `run`, those a run before measured: cached by DVC)."""
    ran = {stage: t for stage, t in timings.items() if t.get("run") == run}
    return ran, {stage: t for stage, t in timings.items() if stage not in ran}


def outside(ran: dict[str, dict]) -> dict[str, float]:
    """Where the run's time went outside computation, over the stages `ran` (one run's, in
    start order): from the first start to the last end (`span_s`), the stages' ready and
    first-step time, and the time between one stage's end and the next one's start (DVC's
    own work and the next command starting); `outside_s` sums those three, `share` is its
    fraction of the span. Stages that overlap (parallel queue workers) add no gap."""
    stages = sorted(ran.values(), key=lambda t: t["started"])
    if not stages:
        return {}
    between, end = 0.0, stages[0]["started"]
    for t in stages:
        between += max(0.0, t["started"] - end)
        end = max(end, t["started"] + t["total_s"])
    span = end - stages[0]["started"]
    parts = {
        "span_s": span,
        "ready_s": sum(t["ready_s"] for t in stages),
        "first_step_s": sum(t["first_step_s"] for t in stages),
        "between_s": between,
    }
    parts["outside_s"] = parts["ready_s"] + parts["first_step_s"] + between
    parts["share"] = parts["outside_s"] / span if span > 0 else 0.0
    return {k: round(v, 4 if k == "share" else 3) for k, v in parts.items()}


def records(timings: dict[str, dict], run: str) -> list[dict]:
    """The timeline as written to timeline.json: a list in start order, one record a stage,
    each saying whether `run` measured it or a run before did (`cached`)."""
    return [
        {"stage": stage, **parts, "cached": parts.get("run") != run}
        for stage, parts in timings.items()
    ]


def _read(path: Path) -> dict:
    import json

    return json.loads(path.read_text())
