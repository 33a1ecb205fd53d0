"""k-shot subsets and what every data-efficiency curve stage writes: per-fit rows, their
per-seed summary, the DVC plot's table and each fit's per-test-image correctness. The curve
stages measure; evaluate reads the rows back (read_rows) to judge and draw them, so a verdict
rule or a figure never refits a curve.

Shot-indexed results (a series' cells, a comparison's verdicts) have one order, the curve
order: shot counts ascending, 'all' last. JSON stores them with sorted keys ("10" < "5"),
so whatever reads a summary back restores that order with `in_curve_order` (read_summary).
"""

from __future__ import annotations

import csv
import io as text_io
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np

from transferlab import io

# Each curve stage's outputs, in its own folder: the DVC plot's table, the summary (series
# and rows) and every row's per-test-image correctness. FIGURE_FILE: evaluate's drawing.
CSV_FILE = "data_efficiency.csv"
SUMMARY_FILE = "summary.json"
CORRECT_FILE = "test_correct.json"
FIGURE_FILE = "data_efficiency.png"
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


def series_name(strategy: str) -> str:
    """The curve's name beside the probe series (e.g. finetune_full)."""
    return f"finetune_{strategy}"


def shot_label(shot: int | None) -> str:
    return ALL if shot is None else str(shot)


def shot_order(label: str) -> tuple[bool, int]:
    """Sort key of a shot label: counts by number (not as strings), 'all' last."""
    return (label == ALL, 0 if label == ALL else int(label))


def curve_shots(shots: tuple[int | None, ...]) -> tuple[int | None, ...]:
    """curves.shots in curve order: counts ascending, None ('all') last."""
    return tuple(sorted(shots, key=lambda s: shot_order(shot_label(s))))


def usable_shots(shots: tuple[int | None, ...], train_labels: np.ndarray) -> tuple[int | None, ...]:
    """curves.shots as this train split can draw them, in curve order. A count at or above
    the smallest class's train images is no k-shot subset: that class would give all it has,
    and where every class does, the subset is 'all' again. Such a count is judged as 'all'
    (None), once: never as a column of its own beside it."""
    smallest = int(np.unique(train_labels, return_counts=True)[1].min())
    usable = {None if shot is not None and shot >= smallest else shot: None for shot in shots}
    return curve_shots(tuple(usable))


def unusable_shots(shots: tuple[int | None, ...], train_labels: np.ndarray) -> list[int]:
    """The counts of curves.shots that usable_shots judges as 'all', ascending."""
    kept = usable_shots(shots, train_labels)
    return sorted(shot for shot in shots if shot is not None and shot not in kept)


Cell = TypeVar("Cell")


def in_curve_order(by_shot: Mapping[str, Cell]) -> dict[str, Cell]:
    """A shot-keyed mapping with its keys in curve order, whatever order they came in."""
    return {label: by_shot[label] for label in sorted(by_shot, key=shot_order)}


def headline(by_shot: Mapping[str, Cell]) -> Cell:
    """The entry at the largest shot count ('all' when present)."""
    return by_shot[max(by_shot, key=shot_order)]


def read_summary(path: Path | str) -> dict:
    """A curve stage's summary as it was written, every series' cells keyed by shot in curve
    order (the JSON holds them sorted as strings)."""
    summary = io.read_json(path)
    summary["series"] = {name: in_curve_order(cells) for name, cells in summary["series"].items()}
    return summary


def read_rows(folder: Path) -> list[dict]:
    """A curve stage's rows as it measured them, each with its per-test-image `correct`."""
    rows = io.read_json(folder / SUMMARY_FILE)["rows"]
    stored = io.read_json(folder / CORRECT_FILE)
    n_test = stored["n_test"]
    packed = stored["correct"]
    return [
        {**row, "correct": unpack_correct(text, n_test)}
        for row, text in zip(rows, packed, strict=True)
    ]


def shot_counts(shots: tuple[int | None, ...], train_labels: np.ndarray) -> list[int]:
    """Images per class each shot stands for; 'all' is the largest class's count."""
    largest = int(np.bincount(train_labels).max())
    return [largest if s is None else min(s, largest) for s in shots]


def curve_csv(summary: dict, shots: tuple[int | None, ...], train_labels: np.ndarray) -> str:
    """The DVC plot's table: one row per shot count, shots, then mean and std accuracy per
    series."""
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["shots", *[f"{s}{suffix}" for s in summary for suffix in ("", "_std")]])
    shots = curve_shots(shots)
    labels = [shot_label(s) for s in shots]
    for label, count in zip(labels, shot_counts(shots, train_labels), strict=True):
        cells = [summary[s][label] for s in summary]
        writer.writerow([count, *[f"{c[k]:.6f}" for c in cells for k in ("mean", "std")]])
    return buffer.getvalue()


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


def write_curve(
    out: Path,
    rows: list[dict],
    *,
    shots: tuple[int | None, ...],
    train_labels: np.ndarray,
    columns: Mapping[str, str] | None = None,
) -> dict:
    """What every curve stage writes into `out`: the curve's table (its DVC plot; `columns`
    maps a column name to its series, default every series under its own name) and every
    fit's correctness. Returns the summary record: series and rows (evaluate judges them)."""
    summary = summarise(rows)
    names = columns or {series: series for series in summary}
    table = {column: summary[series] for column, series in names.items()}
    io.write_text(out / CSV_FILE, curve_csv(table, shots, train_labels))
    io.write_json(out / CORRECT_FILE, correct_record(rows))
    return {"series": summary, "rows": without_correct(rows)}


def correct_record(rows: list[dict]) -> dict:
    """The correctness file's record: {n_test, correct: [packed, one per row in order]}."""
    n_test = len(rows[0]["correct"]) if rows else 0
    return {"n_test": n_test, "correct": [pack_correct(row["correct"]) for row in rows]}


def without_correct(rows: list[dict]) -> list[dict]:
    """Rows as recorded in a summary: the per-image arrays go to CORRECT_FILE instead."""
    return [{k: v for k, v in row.items() if k != "correct"} for row in rows]
