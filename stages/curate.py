"""Decide every listed image's fate (rejected, dropped as a duplicate, or its split) in writing."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from stages import data
from stages.errors import UserError
from stages.params import Data

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
        keep, held = data.stratified_split(
            labels[drawable], config.test_fraction, seed=config.seed,
            classes=classes, key="data.test_fraction",
        )  # fmt: skip
        test, rest = (
            drawable[held],
            np.sort(np.concatenate([drawable[keep], index[given == "val"]])),
        )
    test = test[data.cap_per_class(labels[test], config.test_per_class, seed=config.seed)]
    given_val = pool.given_split[rest] == "val"
    pool_index = rest[~given_val]
    _require_every_class(labels[pool_index], classes, "for training")
    pool_index = pool_index[data.cap_per_class(labels[pool_index], config.train_per_class,
                                               seed=config.seed)]  # fmt: skip
    if given_val.any():
        return {"train": pool_index, "val": rest[given_val], "test": test}
    keep, held = data.stratified_split(
        labels[pool_index], config.val_fraction, seed=config.seed,
        classes=classes, key="data.val_fraction",
    )  # fmt: skip
    return {"train": pool_index[keep], "val": pool_index[held], "test": test}


def _require_every_class(labels: np.ndarray, classes: tuple[str, ...], purpose: str) -> None:
    counts = np.bincount(labels, minlength=len(classes))
    if (counts == 0).any():
        name = classes[int(np.flatnonzero(counts == 0)[0])]
        raise UserError(
            f"class {name!r} has no usable images {purpose}; add readable images to it "
            "(the rejects and duplicates reports say what was left out) or remove the class."
        )


def rejects_report(
    pool: Pool, classes: tuple[str, ...], skipped: tuple[tuple[str, str], ...], max_fraction: float
) -> dict:
    """Every file not used, with its reason; skipped files never counted as images."""
    bad = np.flatnonzero(~pool.readable)
    return {
        "summary": {
            "listed": len(pool.files),
            "rejected": len(bad),
            "reject_fraction": round(len(bad) / max(1, len(pool.files)), 6),
            "max_reject_fraction": max_fraction,
            "skipped": len(skipped),
        },
        "rejected": [
            {
                "file": pool.files[i],
                "label": classes[pool.labels[i]],
                "given_split": str(pool.given_split[i]) or None,
                "reason": pool.reasons[i],
                "detail": pool.details[i],
            }
            for i in bad
        ],
        "skipped": [{"file": name, "reason": why} for name, why in skipped],
    }


def duplicates_report(
    pool: Pool,
    classes: tuple[str, ...],
    groups: list[np.ndarray],
    dropped: np.ndarray,
    splits: dict[str, np.ndarray],
    policy: str,
) -> dict:
    """Each group of identical images: label conflict, leakage across splits, fate of copies."""
    where = np.full(len(pool.files), None, dtype=object)
    for split, index in splits.items():
        where[index] = split
    records = []
    for group in groups:
        landed = sorted({where[i] for i in group if where[i] is not None})
        records.append(
            {
                "hash": pool.hashes[group[0]],
                "label_conflict": len(np.unique(pool.labels[group])) > 1,
                "leakage": len(landed) > 1,
                "members": [
                    {
                        "file": pool.files[i],
                        "label": classes[pool.labels[i]],
                        "given_split": str(pool.given_split[i]) or None,
                        "split": where[i],
                        "dropped": bool(dropped[i]),
                    }
                    for i in group
                ],
            }
        )
    summary = {
        "groups": len(records),
        "label_conflicts": sum(r["label_conflict"] for r in records),
        "leakage": sum(r["leakage"] for r in records),
        "dropped": int(dropped.sum()),
    }
    return {"policy": policy, "summary": summary, "groups": records}


def enforce_duplicates(summary: dict, policy: str, report: object) -> None:
    """Under data.duplicates: fail, any group of identical images stops the stage."""
    if policy == "fail" and summary["groups"]:
        raise UserError(
            f"{summary['groups']} group(s) of identical images ({summary['label_conflicts']} "
            f"under conflicting labels, {summary['leakage']} across splits); {report} lists "
            "them. Remove the copies, or set data.duplicates to drop or keep."
        )


def card_extras(pool: Pool, classes: tuple[str, ...], dropped: np.ndarray, train: np.ndarray):
    """Rejected and dropped counts per class and given split; class imbalance in train."""
    rejected: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(classes, 0))
    for i in np.flatnonzero(~pool.readable):
        rejected[str(pool.given_split[i]) or "unassigned"][classes[pool.labels[i]]] += 1
    dropped_counts = np.bincount(pool.labels[dropped], minlength=len(classes))
    train_counts = np.bincount(pool.labels[train], minlength=len(classes))
    return {
        "rejected": {"total": int((~pool.readable).sum()), "per_split": dict(rejected)},
        "dropped_duplicates": {
            "total": int(dropped.sum()),
            "per_class": {name: int(n) for name, n in zip(classes, dropped_counts, strict=True)},
        },
        "imbalance": {
            "train_largest_class": classes[int(train_counts.argmax())],
            "train_smallest_class": classes[int(train_counts.argmin())],
            "train_largest_over_smallest": round(
                float(train_counts.max()) / max(1, int(train_counts.min())), 3
            ),
        },
    }
