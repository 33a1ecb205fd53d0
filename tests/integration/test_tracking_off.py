"""MLflow tracking writes nothing DVC tracks: stages run with the store unreachable (so they
log nothing) write the same bytes as the tracked `dvc repro` did, a record's timings aside.
This is what lets dvc.yaml leave tracking.py and store.py out of every stage's deps
(tests/unit/test_dvc_deps.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import closed_port
from tests.integration.conftest import BIN

STAGES = {  # a command's arguments -> the outputs (files or folders) that must match
    ("stages.prepare",): ("data/prepared", "reports/data_card.json", "reports/duplicates.json"),
    ("stages.probe", "tiny"): ("data/methods/probe/tiny",),
    ("stages.finetune", "full"): ("data/methods/full/tiny",),
}


TIMED = re.compile(r"seconds|_s$|per_s|^time")  # how long it took: differs run to run


def untimed(value):
    """A JSON value without its timings, whose nesting and order it keeps."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if not TIMED.search(k)}
    return [untimed(v) for v in value] if isinstance(value, list) else value


def same_output(a: Path, b: Path) -> bool:
    if a.suffix == ".json":
        return untimed(json.loads(a.read_bytes())) == untimed(json.loads(b.read_bytes()))
    return a.read_bytes() == b.read_bytes()


@pytest.mark.slow
def test_untracked_stages_write_the_tracked_bytes(reproduced, reproduced_copy):
    ws = reproduced_copy
    ws.env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{closed_port()}"
    for command, folders in STAGES.items():
        done = ws.run(str(BIN / "python"), "-m", "transferlab.runner.launch", "-m", *command)
        assert "continues untracked" in done.stderr, done.stderr  # it did log nothing
        for folder in folders:
            out = reproduced.root / folder
            tracked = sorted(p for p in out.rglob("*") if p.is_file()) if out.is_dir() else [out]
            assert tracked and tracked[0].is_file(), folder
            for path in tracked:
                untracked = ws.root / path.relative_to(reproduced.root)
                assert same_output(untracked, path), f"{path} differs"
