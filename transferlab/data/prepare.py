"""The prepare stage's work: list and decode the source once, vet it, draw the splits, and
store uint8 arrays in the prepared layout.

Writes, besides the arrays: the data card, a rejects report (every file not used and
why) and a duplicates report (identical images, label conflicts, leakage across splits).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from transferlab import io
from transferlab.data import curate, decode, fashion_mnist, layout, reports, sources
from transferlab.data.curate import Pool
from transferlab.data.fashion_mnist import Dataset
from transferlab.params import Data, Paths


class Recorder(Protocol):
    """What prepare logs to: its MLflow run (tracking.StageRun), or a stand-in in tests."""

    def log_artifact(self, path: Path) -> None: ...

    def log_metrics(self, metrics: dict[str, float]) -> None: ...


@dataclass(frozen=True)
class Source:
    """A source decoded once: row i of `images` (a .npy on disk) is pool item i."""

    pool: Pool
    classes: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    images: Path


def read_source(config: Data, work: Path, *, workers: int | None = None) -> Source:
    """Dispatch on data.source; user images are decoded in parallel into work/."""
    images = work / "decoded.npy"
    if config.source == "fashion-mnist":
        return fashion_mnist_source(fashion_mnist.read_fashion_mnist(Path(config.path)), images)
    root = Path(config.path)
    if config.source == "imagefolder":
        listing = sources.list_imagefolder(root)
    else:
        listing = sources.read_manifest(root, config.manifest)
    decoded = decode.decode_all(listing.paths, images, config.image_size, workers=workers)
    pool = Pool(
        files=listing.files,
        labels=listing.labels,
        given_split=listing.given_split,
        reasons=decoded.reasons,
        details=decoded.details,
        hashes=decoded.hashes,
    )
    return Source(pool, listing.classes, listing.skipped, images)


def fashion_mnist_source(dataset: Dataset, images: Path) -> Source:
    """The idx arrays as a pool: its train and test splits are given, nothing is rejected."""
    parts = {"train": dataset.train, "test": dataset.test}
    np.save(images, np.concatenate([p.images for p in parts.values()]), allow_pickle=False)
    names = [f"{split}[{i}]" for split, part in parts.items() for i in range(len(part))]
    pool = Pool(
        files=tuple(names),
        labels=np.concatenate([p.labels for p in parts.values()]),
        given_split=np.repeat(list(parts), [len(p) for p in parts.values()]).astype("<U5"),
        reasons=(None,) * len(names),
        details=("",) * len(names),
        hashes=tuple(decode.content_hash(image) for p in parts.values() for image in p.images),
    )
    return Source(pool, dataset.classes, (), images)


@contextlib.contextmanager
def scratch_dir(beside: Path) -> Iterator[Path]:
    """A temporary folder on the same disk as the outputs, removed afterwards."""
    beside.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".prepare-", dir=beside.parent) as work:
        yield Path(work)


def prepare(
    config: Data, paths: Paths, run: Recorder, *, confidence: float, workers: int | None = None
) -> dict:
    """The whole stage; each report is written before the check that may fail on it.
    `confidence` (verdict.confidence) sizes what the splits can decide (reports.resolution)."""
    with scratch_dir(paths.prepared) as work:
        source = read_source(config, work, workers=workers)
        pool, classes = source.pool, source.classes
        rejects = reports.rejects_report(pool, classes, source.skipped, config.max_reject_fraction)
        publish(run, paths.rejects, rejects)
        curate.check_readable(pool, config.max_reject_fraction, paths.rejects)
        groups = curate.duplicate_groups(pool)
        dropped = curate.drop_duplicates(pool, groups, config.duplicates)
        # Written before the splits are drawn (no split yet), so an error there points at
        # this run's report; rewritten with each copy's split once they are.
        duplicates = reports.duplicates_report(
            pool, classes, groups, dropped, {}, config.duplicates
        )
        io.write_json(paths.duplicates, duplicates)
        splits = curate.assign_splits(pool, pool.readable & ~dropped, config, classes)
        duplicates = reports.duplicates_report(
            pool, classes, groups, dropped, splits, config.duplicates
        )
        publish(run, paths.duplicates, duplicates)
        curate.enforce_duplicates(duplicates["summary"], config.duplicates, paths.duplicates)
        layout.save_prepared(paths.prepared, source.images, pool.labels, splits, classes)
    parts = {s: layout.load_prepared(paths.prepared, s) for s in splits}
    card = {
        "source": config.source,
        "content": reports.content_digest(pool, classes),
        **reports.data_card(parts, classes),
        **reports.card_extras(pool, classes, dropped, splits["train"]),
        "duplicates": duplicates["summary"],
    }
    card["resolution"] = reports.resolution(card, confidence)
    publish(run, paths.data_card, card)
    run.log_metrics(
        {
            **{f"{s}_images": len(part) for s, part in parts.items()},
            "rejected_files": rejects["summary"]["rejected"],
            "duplicate_groups": duplicates["summary"]["groups"],
            "leakage_groups": duplicates["summary"]["leakage"],
        }
    )
    return card


def publish(run: Recorder, path: Path, record: dict) -> None:
    """Write one of prepare's reports and log it."""
    io.write_json(path, record)
    run.log_artifact(path)
