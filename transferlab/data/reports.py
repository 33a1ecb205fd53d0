"""The written record of prepare: rejects, duplicate groups, and data-card extras."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from transferlab.data.curate import Pool
from transferlab.data.decode import HASH_METHOD
from transferlab.data.layout import LabelledImages
from transferlab.evaluation.statistics.power import smallest_significant_gain

# Splits coarser than this (in accuracy) decide little: a val split where one image is more
# than 5 points, a test split that cannot call any gain under 5 points significant.
COARSE = 0.05


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
    return {"policy": policy, "hash": HASH_METHOD, "summary": summary, "groups": records}


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


def content_digest(pool: Pool, classes: tuple[str, ...]) -> str:
    """sha256 of what the source holds: every readable image's decoded-pixel hash with its
    class and given split, in sorted order. Runs with equal digests read the same data,
    whatever the files are called and however the caps and fractions drew from it."""
    rows = sorted(
        f"{digest} {classes[label]} {given}"
        for digest, label, given in zip(pool.hashes, pool.labels, pool.given_split, strict=True)
        if digest is not None
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def resolution(card: dict, confidence: float) -> dict:
    """What the splits can decide: the smallest gain the test split can call significant
    (McNemar's exact test, verdict.smallest_significant_gain) and one warning line per split
    too coarse to decide much (COARSE)."""
    test, val = card["splits"]["test"]["total"], card["splits"]["val"]["total"]
    gain = smallest_significant_gain(test, confidence=confidence)
    level = f"{100 * confidence:g}%"
    warnings = []
    if gain is None or gain > COARSE:
        least = "no gain at all" if gain is None else f"no gain under {100 * gain:.1f} points"
        warnings.append(
            f"test: {test} images: McNemar's exact test can call {least} significant at "
            f"{level}, so most verdicts will be inconclusive; give more test images."
        )
    if 1 / val > COARSE:
        warnings.append(
            f"val: {val} images: one image is {100 / val:.1f} points of val accuracy, so what "
            "is chosen on val (probe C, kNN k, epochs, learning rates) is coarse and often tied."
        )
    return {
        "confidence": confidence,
        "test_images": test,
        "smallest_significant_gain": None if gain is None else round(gain, 6),
        "val_images": val,
        "warnings": warnings,
    }
