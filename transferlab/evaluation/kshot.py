"""k-shot subsets and the per-seed curve summaries that every data-efficiency curve shares."""

from __future__ import annotations

import numpy as np

# Each curve stage's outputs, in its own folder: the DVC plot's table, the summary, the PNG.
CSV_FILE = "data_efficiency.csv"
SUMMARY_FILE = "summary.json"
FIGURE_FILE = "data_efficiency.png"
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
    return "all" if shot is None else str(shot)
