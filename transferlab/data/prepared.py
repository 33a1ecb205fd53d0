"""Data sources, splits and the prepared-array layout shared by every stage."""

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


def cap_per_class(labels: np.ndarray, cap: int | None, *, seed: int) -> np.ndarray:
    """Indices keeping at most `cap` randomly drawn items of each class, in sorted order."""
    if cap is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:cap] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def stratified_split(
    labels: np.ndarray,
    fraction: float,
    *,
    seed: int,
    classes: tuple[str, ...] | None = None,
    key: str = "the split fraction",
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (keep, held_out) with `fraction` of every class held out."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_held = int(round(fraction * len(members)))
        if n_held == 0 or n_held == len(members):
            name = repr(classes[int(c)]) if classes else str(int(c))
            raise UserError(
                f"class {name} has {len(members)} images, too few to hold out "
                f"{fraction:.0%} of them (it needs at least {min_class_size(fraction)}); "
                f"add images to it or change {key}."
            )
        held.append(members[:n_held])
    held_out = np.sort(np.concatenate(held))
    keep = np.setdiff1d(np.arange(len(labels)), held_out)
    return keep, held_out


def min_class_size(fraction: float) -> int:
    """Fewest images a class needs so that holding out `fraction` leaves both sides non-empty."""
    n = 2
    while not 0 < round(fraction * n) < n:
        n += 1
    return n


def data_card(splits: dict[str, LabelledImages], classes: tuple[str, ...]) -> dict:
    """Counts per class and split, plus the image shape, for reports/."""
    return {
        "classes": list(classes),
        "image_shape": list(next(iter(splits.values())).images.shape[1:]),
        "splits": {
            split: {
                "total": len(part),
                "per_class": {
                    name: int((part.labels == i).sum()) for i, name in enumerate(classes)
                },
            }
            for split, part in splits.items()
        },
    }


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
