"""Decide every listed image's fate (rejected, dropped as a duplicate, or its split) in writing."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from transferlab.errors import UserError
from transferlab.params import Data

# Which copy of a duplicate survives `drop`: a user's test copy first, so the benchmark stays.
KEEP_FIRST = {"test": 0, "val": 1, "train": 2, "": 2}


@dataclass(frozen=True)
class Pool:
    """Every listed image after decoding: name, label, given split, reject reason, hash."""

    files: tuple[str, ...]
    labels: np.ndarray
    given_split: np.ndarray  # "train" | "val" | "test" | "" (the source says nothing)
    reasons: tuple[str | None, ...]  # None: decoded fine
    details: tuple[str, ...]
    hashes: tuple[str | None, ...]

    @property
    def readable(self) -> np.ndarray:
        return np.array([r is None for r in self.reasons], dtype=bool)


def check_readable(pool: Pool, max_fraction: float, report: object) -> None:
    """Fail clearly when nothing, or more than max_fraction of the files, could be read."""
    listed, good = len(pool.files), int(pool.readable.sum())
    if listed == 0:
        raise UserError(
            "no image files found in data.path; supported extensions are .jpg .jpeg .png .bmp "
            f".gif .tif .tiff .webp .ppm .pgm .pbm (see {report} for files left out)."
        )
    if good == 0:
        raise UserError(
            f"none of the {listed} image files could be read; {report} gives each file's "
            "reason. Check that data.path points at the right data."
        )
    bad = listed - good
    if bad / listed > max_fraction:
        raise UserError(
            f"{bad} of {listed} image files ({bad / listed:.1%}) could not be read, more than "
            f"data.max_reject_fraction ({max_fraction:.1%}); {report} gives each file's "
            "reason. Fix or remove those files, or raise data.max_reject_fraction."
        )


def duplicate_groups(pool: Pool) -> list[np.ndarray]:
    """Indices of readable images sharing a content hash, one array per group of >= 2."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, digest in enumerate(pool.hashes):
        if digest is not None:
            members[digest].append(i)
    return [np.array(group) for group in members.values() if len(group) > 1]


def drop_duplicates(pool: Pool, groups: list[np.ndarray], policy: str) -> np.ndarray:
    """Mask of images `drop` removes: every copy under conflicting labels, else all but one."""
    dropped = np.zeros(len(pool.files), dtype=bool)
    if policy != "drop":
        return dropped
    for group in groups:
        if len(np.unique(pool.labels[group])) > 1:
            dropped[group] = True  # no copy's label can be trusted
            continue
        keep = min(group, key=lambda i: (KEEP_FIRST[str(pool.given_split[i])], i))
        dropped[group[group != keep]] = True
    return dropped


def assign_splits(
    pool: Pool, usable: np.ndarray, config: Data, classes: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Given splits are respected; a missing test or val split is drawn stratified, seeded."""
    index = np.flatnonzero(usable)
    given = pool.given_split[index]
    labels = pool.labels
    if (given == "test").any():
        test, rest = index[given == "test"], index[given != "test"]
    else:
        drawable = index[given != "val"]
        _require_every_class(labels[drawable], classes, "to draw a test split from")
        keep, held = stratified_split(
            labels[drawable],
            config.test_fraction,
            seed=config.seed,
            classes=classes,
            key="data.test_fraction",
        )
        test = drawable[held]
        rest = np.sort(np.concatenate([drawable[keep], index[given == "val"]]))
    test = test[cap_per_class(labels[test], config.test_per_class, seed=config.seed)]
    given_val = pool.given_split[rest] == "val"
    pool_index = rest[~given_val]
    _require_every_class(labels[pool_index], classes, "for training")
    capped = cap_per_class(labels[pool_index], config.train_per_class, seed=config.seed)
    pool_index = pool_index[capped]
    if given_val.any():
        return {"train": pool_index, "val": rest[given_val], "test": test}
    keep, held = stratified_split(
        labels[pool_index],
        config.val_fraction,
        seed=config.seed,
        classes=classes,
        key="data.val_fraction",
    )
    return {"train": pool_index[keep], "val": pool_index[held], "test": test}


def _require_every_class(labels: np.ndarray, classes: tuple[str, ...], purpose: str) -> None:
    counts = np.bincount(labels, minlength=len(classes))
    if (counts == 0).any():
        name = classes[int(np.flatnonzero(counts == 0)[0])]
        raise UserError(
            f"class {name!r} has no usable images {purpose}; add readable images to it "
            "(the rejects and duplicates reports say what was left out) or remove the class."
        )


def enforce_duplicates(summary: dict, policy: str, report: object) -> None:
    """Under data.duplicates: fail, any group of identical images stops the stage."""
    if policy == "fail" and summary["groups"]:
        raise UserError(
            f"{summary['groups']} group(s) of identical images ({summary['label_conflicts']} "
            f"under conflicting labels, {summary['leakage']} across splits); {report} lists "
            "them. Remove the copies, or set data.duplicates to drop or keep."
        )


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
