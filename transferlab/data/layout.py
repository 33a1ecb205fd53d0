"""The prepared-array and feature layout every stage reads and writes (how the splits are
drawn is curate.py's, which only prepare imports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferlab import io
from transferlab.errors import UserError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LabelledImages:
    """uint8 images (N, H, W, C) with integer labels (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> LabelledImages:
        return LabelledImages(self.images[index], self.labels[index])


def save_prepared(
    directory: Path,
    images: Path,
    labels: np.ndarray,
    splits: dict[str, np.ndarray],
    classes: tuple[str, ...],
) -> None:
    """The prepared layout every later stage reads: rows `splits[s]` of the .npy `images`
    (streamed) and of `labels` as <s>_images.npy and <s>_labels.npy, and classes.json."""
    for split, index in splits.items():
        io.save_rows(io.split_file(directory, split, "images"), images, index)
        io.save_array(io.split_file(directory, split, "labels"), labels[index])
    io.write_json(directory / io.CLASSES_FILE, list(classes))


def load_prepared(directory: Path, split: str, *, mmap: bool = True) -> LabelledImages:
    """Read one prepared split; images are memory-mapped by default."""
    return LabelledImages(
        io.load_array(io.split_file(directory, split, "images"), mmap=mmap),
        io.load_array(io.split_file(directory, split, "labels")),
    )


def stored_side(directory: Path) -> int:
    """The side at which prepare stored the images (every split shares it)."""
    return int(load_prepared(directory, "train").images.shape[1])


def load_classes(directory: Path) -> tuple[str, ...]:
    path = directory / io.CLASSES_FILE
    if not path.is_file():
        raise UserError(f"{path} is missing; run `dvc repro prepare` first.")
    return tuple(io.read_json(path))


def save_features(directory: Path, split: str, features: np.ndarray, labels: np.ndarray) -> None:
    """One split's embeddings and labels: <split>_features.npy and <split>_labels.npy."""
    io.save_array(io.split_file(directory, split, "features"), features)
    io.save_array(io.split_file(directory, split, "labels"), labels)


def load_features(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of one split, as save_features wrote them."""
    return (
        io.load_array(io.split_file(directory, split, "features")),
        io.load_array(io.split_file(directory, split, "labels")),
    )
