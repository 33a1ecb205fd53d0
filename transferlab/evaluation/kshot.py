"""k-shot subsets and the per-seed curve summaries that every data-efficiency curve shares.

Shot-indexed results (a series' cells, a comparison's verdicts) have one order, the curve
order: shot counts ascending, 'all' last. JSON stores them with sorted keys ("10" < "5"),
so whatever reads a summary back restores that order with `in_curve_order` (read_summary).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np

from transferlab import io

# Each curve stage's outputs, in its own folder: the DVC plot's table, the summary, the PNG,
# and the per-test-image correctness of the fits judged by McNemar's test (single-fit shots).
CSV_FILE = "data_efficiency.csv"
SUMMARY_FILE = "summary.json"
FIGURE_FILE = "data_efficiency.png"
CORRECT_FILE = "test_correct.json"
ALL = "all"  # the label of the shot count null: the whole train split
CURVE_PROBES = ("linear", "knn")  # one probe-curve stage each, in <paths.curves>/<probe>/


def kshot_subsets(
    labels: np.ndarray, shots: tuple[int | None, ...], *, seed: int
) -> dict[int | None, np.ndarray]:
    """Per shot count, sorted indices with that many items of every class (None: all).

    One permutation per class and seed, cut at each count: the subsets are nested.
    """
    rng = np.random.default_rng(seed)
    members = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    return {
        shot: np.sort(np.concatenate([m[:shot] if shot is not None else m for m in members]))
        for shot in shots
    }


def summarise(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """{series: {shot: {mean, std, seeds, accuracy_by_seed}}} from per-seed rows."""
    out: dict[str, dict[str, dict]] = {}
    for row in rows:
        cell = out.setdefault(row["series"], {}).setdefault(row["shot"], {"by_seed": {}})
        cell["by_seed"][row["seed"]] = row["accuracy"]
    for series in out.values():
        for cell in series.values():
            values = np.array(list(cell["by_seed"].values()))
            cell["mean"] = float(values.mean())
            cell["std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


def shot_label(shot: int | None) -> str:
    return ALL if shot is None else str(shot)


def shot_order(label: str) -> tuple[bool, int]:
    """Sort key of a shot label: counts by number (not as strings), 'all' last."""
    return (label == ALL, 0 if label == ALL else int(label))


def curve_shots(shots: tuple[int | None, ...]) -> tuple[int | None, ...]:
    """curves.shots in curve order: counts ascending, None ('all') last."""
    return tuple(sorted(shots, key=lambda s: shot_order(shot_label(s))))


Cell = TypeVar("Cell")


def in_curve_order(by_shot: Mapping[str, Cell]) -> dict[str, Cell]:
    """A shot-keyed mapping with its keys in curve order, whatever order they came in."""
    return {label: by_shot[label] for label in sorted(by_shot, key=shot_order)}


def headline(by_shot: Mapping[str, Cell]) -> Cell:
    """The entry at the largest shot count ('all' when present)."""
    return by_shot[max(by_shot, key=shot_order)]


def read_summary(path: Path | str) -> dict:
    """A curve stage's summary as it was written: every series' cells and every comparison's
    verdicts keyed by shot in curve order (the JSON holds them sorted as strings)."""
    summary = io.read_json(path)
    for section in ("series", "comparisons"):
        summary[section] = {
            name: in_curve_order(by_shot) for name, by_shot in summary[section].items()
        }
    return summary


def fit_key(row: dict) -> tuple[str, int | None]:
    """What makes two rows one fit: the same training subset and, where training draws
    random numbers (fine-tuning), the same training seed. A probe on one subset is one fit."""
    return row["subset"], row.get("train_seed")


def pack_correct(correct: np.ndarray) -> str:
    """Per-image correctness (bool, N) as hex of its packed bits: N/4 characters."""
    return np.packbits(np.asarray(correct, dtype=bool)).tobytes().hex()


def unpack_correct(text: str, n: int) -> np.ndarray:
    """The inverse of pack_correct for `n` images."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8), count=n)
    return bits.astype(bool)


def single_fit_correct(rows: list[dict]) -> dict:
    """The correctness file's record: {n_test, correct: {series: {shot: packed}}} for every
    series and shot whose seeds are one fit (those McNemar's test judges)."""
    fits: dict[tuple[str, str], dict] = {}
    for row in rows:
        fits.setdefault((row["series"], row["shot"]), {}).setdefault(fit_key(row), row)
    correct: dict[str, dict[str, str]] = {}
    n_test = 0
    for (series, shot), by_fit in fits.items():
        if len(by_fit) == 1:
            (row,) = by_fit.values()
            n_test = len(row["correct"])
            correct.setdefault(series, {})[shot] = pack_correct(row["correct"])
    return {"n_test": n_test, "correct": correct}


def without_correct(rows: list[dict]) -> list[dict]:
    """Rows as recorded in a summary: the per-image arrays go to CORRECT_FILE instead."""
    return [{k: v for k, v in row.items() if k != "correct"} for row in rows]
