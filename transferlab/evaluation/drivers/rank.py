"""The backbone comparison: one row per candidate from its stages' outputs, the ranking the
rank stage writes, and, after fine-tuning, the leaderboard (table, PNG, DVC plot table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transferlab import io
from transferlab.evaluation.statistics import ranking, verdict
from transferlab.params import BASELINE, Params, Verdict

PROBES = ("probe", "knn")
PROBE_ACCURACIES = tuple(f"{probe}_accuracy" for probe in PROBES)
# Per accuracy column, per candidate: each seed's per-test-image correctness behind it.
Correct = dict[str, dict[str, list[np.ndarray]]]


def correct_in(folder: Path, labels: np.ndarray, seed_index: int = 0) -> np.ndarray:
    """Per test image, whether the predictions a method wrote in `folder` are right."""
    return io.load_array(folder / io.predictions_file(seed_index)).argmax(1) == labels


def accuracy_in(folder: Path, labels: np.ndarray, seed_index: int = 0) -> float:
    """Test accuracy of the predictions a method wrote in `folder`."""
    return round(float(correct_in(folder, labels, seed_index).mean()), 6)


def method_correct(
    params: Params, labels: np.ndarray, method: str, keys: list[str], seeds: int = 1
) -> dict[str, list[np.ndarray]]:
    """Per candidate in `keys`, each seed's test correctness of `method`."""
    return {
        key: [
            correct_in(io.method_dir(params.paths.methods, method, key), labels, i)
            for i in range(seeds)
        ]
        for key in keys
    }


def candidate_rows(params: Params, test_labels: np.ndarray) -> dict[str, dict]:
    """What the per-candidate stages measured, one row per candidate in params order."""
    paths, rows = params.paths, {}
    for key in params.backbones:
        model = params.model(key)
        extract = io.read_json(io.backbone_file(paths.extract_report, key))
        scores = io.read_json(io.backbone_file(paths.scores, key))
        row = {
            "model": model.name,
            "weights": model.weights,
            "pretrained": model.pretrained,
            "parameters": extract["parameters"],
            "feature_dim": extract["feature_dim"],
            "input_size": extract["input_size"],
            "images_per_s": extract["images_per_s"],
            "extract_device": extract["device"],
            **{name: scores[name] for name in ranking.SCORE_FIELDS},
        }
        for probe in PROBES:
            folder = io.method_dir(paths.methods, probe, key)
            row[f"{probe}_val_accuracy"] = io.read_json(folder / io.RECORD_FILE)["val_accuracy"]
            row[f"{probe}_accuracy"] = accuracy_in(folder, test_labels)
        rows[key] = row
    return rows


def rank_candidates(params: Params, test_labels: np.ndarray) -> dict:
    """The rank stage's record: every candidate's row, the ranking, the choice, and how well
    each score agreed with the probes' test accuracies."""
    rows = candidate_rows(params, test_labels)
    order = ranking.rank(rows, params.select.by)
    chosen = ranking.choose(order, top_k=params.select.top_k, explicit=params.select.backbones)
    return {
        "by": params.select.by,
        "order": order,
        "selected": chosen,
        "candidates": rows,
        **judged(rows, probe_correct(params, test_labels), config=params.verdict),
    }


def probe_correct(params: Params, test_labels: np.ndarray) -> Correct:
    """Every candidate's probe and kNN test correctness, by accuracy column."""
    keys = list(params.backbones)
    return {
        column: method_correct(params, test_labels, probe, keys)
        for probe, column in zip(PROBES, PROBE_ACCURACIES, strict=True)
    }


def judged(rows: dict[str, dict], correct: Correct, *, config: Verdict) -> dict:
    """Kendall's tau of each score against each accuracy in `correct`, and the
    best-vs-runner-up gaps judged on the correctness behind them."""
    return {
        "agreement": ranking.rank_agreement(rows, list(correct)),
        "gaps": {
            accuracy: ranking.gap(rows, accuracy, correct=by_key, config=config)
            for accuracy, by_key in correct.items()
        },
    }


def with_finetuned(record: dict, params: Params, test_labels: np.ndarray) -> tuple[dict, Correct]:
    """The rank record with each chosen candidate's fine-tuned test accuracies (mean over
    seeds) and the judgements redone with them (each gap alone: evaluate judges them again in
    the conclusions family); and the correctness behind each accuracy column."""
    rows = {key: dict(row) for key, row in record["candidates"].items()}
    correct = probe_correct(params, test_labels)
    for strategy in params.finetune.runs:
        column = f"{strategy}_accuracy"
        seeds = method_correct(
            params, test_labels, strategy, record["selected"], params.finetune.seeds
        )
        for key, by_seed in seeds.items():
            rows[key][column] = round(float(np.mean([c.mean() for c in by_seed])), 6)
        if strategy != BASELINE:  # scratch starts from no weights: nothing to rank it by
            correct[column] = seeds
    out = {**record, "candidates": rows}
    out.update(judged(rows, correct, config=params.verdict))
    out["intervals"] = probe_intervals(correct, config=params.verdict)
    return out, correct


def probe_intervals(correct: Correct, *, config: Verdict) -> dict:
    """Per probe accuracy column, per candidate: [low, high] of its test accuracy at
    config.confidence (one fit: the exact Clopper-Pearson interval on the test images), and
    that confidence. The plots draw them as error bars, so that a spread between candidates
    inside the test set's sampling noise does not look like a difference."""
    out: dict = {"confidence": config.confidence}
    for column in PROBE_ACCURACIES:
        out[column] = {}
        for key, fits in correct[column].items():
            _, low, high = verdict.accuracy_interval(fits, confidence=config.confidence)
            out[column][key] = [round(low, 6), round(high, 6)]
    return out


# Properties of the machine or of the input, not of the result: a rerun elsewhere would
# change them, so they stay out of the DVC metrics (they are in the ranking and the report).
NOT_METRICS = ("images_per_s", "input_size")


def metrics(record: dict) -> dict[str, dict[str, float]]:
    """Per candidate, the numbers `dvc exp show` and `dvc metrics diff` compare: scores,
    accuracies, size and feature width."""
    return {
        key: {
            k: v
            for k, v in row.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in NOT_METRICS
        }
        for key, row in record["candidates"].items()
    }
