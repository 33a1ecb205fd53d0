"""What a stage writes for DVC when it ends: its record and where its time went, written here
and only here, then told to its MLflow run (tracking.py), which writes nothing DVC tracks.

The split is what lets dvc.yaml leave tracking.py out of every stage's deps: an edit to what
is logged cannot change an output (tests/integration/test_tracking_off.py runs stages with
tracking on and off and compares their outputs byte for byte).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from transferlab import io, tracking
from transferlab.params import Params
from transferlab.timeline import StageClock, timing_file


class Stage:
    """One running stage: `clock` (where its time goes), `publish` (its outputs, then the same
    logged) and `mlflow`, its MLflow run (a no-op when tracking is down), for logging only."""

    def __init__(self, run: tracking.StageRun, timing_path: Path | None) -> None:
        self.mlflow = run
        self.clock = StageClock()  # from this process's start
        self.timing_path = timing_path  # None: the stage writes its parts elsewhere

    def publish(
        self,
        *,
        record: dict | None = None,
        record_path: Path | None = None,
        metrics: dict[str, float] | None = None,
        artifacts: Sequence[Path | tuple[Path, str]] = (),
    ) -> None:
        """The end of every stage: write its record (atomically), then log its metrics, the
        record and its artifacts (a path, or (path, artifact folder)); last, write where the
        stage's time went (timeline.StageClock) and log it as `time.*` metrics."""
        self.clock.computed()
        if record is not None:
            io.write_json(record_path, record)
        if metrics:
            self.mlflow.log_metrics(metrics)
        for item in ([record_path] if record is not None else []) + list(artifacts):
            path, folder = item if isinstance(item, tuple) else (item, None)
            self.mlflow.log_artifact(path, folder)
        parts = self.clock.parts()
        if self.timing_path is not None:
            io.write_json(self.timing_path, parts)
        numbers = {  # not `run`, nor whether it ran `warm`
            k: v for k, v in parts.items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
        self.mlflow.log_metrics({f"time.{k}": v for k, v in numbers.items()})


@contextlib.contextmanager
def stage(name: str, params: Params, logged: dict[str, Any]) -> Iterator[Stage]:
    """A stage named `name` (its timing file's name), with its MLflow child run logging
    `logged`, the params sections it reads (tracking.stage_run)."""
    with tracking.stage_run(name, params, logged) as run:
        yield Stage(run, timing_file(params.paths.timings, name))


def untracked() -> Stage:
    """A stage that logs nothing and writes no timing file: the bench's, which calls the
    stages' run functions itself."""
    return Stage(tracking.StageRun(), None)
