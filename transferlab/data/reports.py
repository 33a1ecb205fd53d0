"""The written record of prepare: rejects, duplicate groups, and data-card extras."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from transferlab.data.curate import Pool
from transferlab.data.decode import HASH_METHOD
from transferlab.data.prepared import LabelledImages


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
