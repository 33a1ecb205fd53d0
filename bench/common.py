"""What every sub-command shares: the data, prepared as the prepare stage prepares it, and
a record of the environment a run measured."""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import timm
import torch

import stages.prepare
from transferlab.data import layout
from transferlab.data.layout import LabelledImages
from transferlab.device.host import usable_cpus
from transferlab.params import Model, Params
from transferlab.publish import untracked


def benched_key(params: Params) -> str:
    """The candidate a bench measures: the first of params' `backbones` (the CLI's
    --backbone keeps only the one it names)."""
    return next(iter(params.backbones))


def benched_model(params: Params) -> Model:
    """The benched candidate's buildable model."""
    return params.model(benched_key(params))


@contextlib.contextmanager
def workdir(params: Params) -> Iterator[Params]:
    """params whose every generated path (paths.*) lies in a temporary folder, where the
    prepare stage has prepared params.data (the source, with every -S applied: never a
    stale data/prepared). The stages run there as dvc runs them, untracked."""
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        moved = {
            field.name: Path(work) / field.name / getattr(params.paths, field.name).name
            for field in dataclasses.fields(params.paths)
        }
        params = dataclasses.replace(params, paths=dataclasses.replace(params.paths, **moved))
        stages.prepare.run(params, untracked())
        yield params


def load_splits(directory: Path) -> dict[str, LabelledImages]:
    """Every prepared split, in memory."""
    return {s: layout.load_prepared(directory, s, mmap=False) for s in layout.SPLITS}


def prepare_splits(params: Params) -> dict[str, LabelledImages]:
    """The prepare stage's splits for params.data, in memory."""
    with workdir(params) as work:
        return load_splits(work.paths.prepared)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work: Callable[[], object]) -> tuple[object, float]:
    """(result, seconds) with the device drained before and after."""
    sync(device)
    start = time.perf_counter()
    result = work()
    sync(device)
    return result, time.perf_counter() - start


def environment(device: torch.device) -> dict:
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "device_type": device.type,
        "cpus": usable_cpus(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
