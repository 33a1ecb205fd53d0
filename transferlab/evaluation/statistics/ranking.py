"""Rank candidate backbones before fine-tuning, choose which to fine-tune, and check the
ranking afterwards. Pure functions over one row per candidate.

A row holds what the comparison measured of one candidate: `pretrained` (its weights are
not `none`), the transferability scores (transferlab.evaluation.scores.transferability), the probes'
val and test accuracies, and fine-tuned test accuracies where trained. The rules:
- Ranking: pretrained candidates first, by the chosen field, highest first (ties by key);
  random-init candidates after them, by the same field. A random-init candidate transfers
  nothing, so it is never ranked above a pretrained one nor called the best.
- Choice: the explicit list when given, else the first `top_k` of the ranking.
- The best candidate is the pretrained one with the highest measured test accuracy; its gap
  to the runner-up is judged by the transfer verdict on the two candidates' test predictions
  (verdict.judge): one seed is McNemar's exact test on the shared test images, several
  fine-tuning seeds the paired t over seeds.
- Kendall's tau between a score and a measured accuracy, over the candidates that have both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from transferlab.evaluation.statistics import verdict
from transferlab.params import Verdict

# select.by -> the row field it ranks by: a score, or a probe's val accuracy (never test).
RANK_FIELDS = {
    "logme": "logme",
    "hscore": "hscore",
    "probe": "probe_val_accuracy",
    "knn": "knn_val_accuracy",
}
SCORE_FIELDS = ("logme", "hscore")


def rank(rows: dict[str, dict], by: str) -> list[str]:
    """Candidate keys, best first: pretrained by `by`, then random-init ones by `by`."""
    field = RANK_FIELDS[by]
    return sorted(rows, key=lambda key: (not rows[key]["pretrained"], -rows[key][field], key))


def choose(order: Sequence[str], *, top_k: int, explicit: Sequence[str] = ()) -> list[str]:
    """The candidates to fine-tune, the studied one first."""
    return list(explicit) if explicit else list(order[:top_k])


def by_accuracy(rows: dict[str, dict], accuracy: str) -> list[str]:
    """Pretrained candidates with a measured `accuracy`, highest first (ties by key)."""
    have = [k for k, row in rows.items() if row["pretrained"] and row.get(accuracy) is not None]
    return sorted(have, key=lambda key: (-rows[key][accuracy], key))


def gap(
    rows: dict[str, dict],
    accuracy: str,
    *,
    correct: Mapping[str, Sequence[np.ndarray]],
    config: Verdict,
) -> dict | None:
    """Best against runner-up by a measured test `accuracy`: is the gap beyond the noise?
    `correct`: per candidate, the per-test-image correctness of each seed behind `accuracy`.
    None when fewer than two pretrained candidates have that accuracy."""
    found = gap_pair(rows, accuracy, correct=correct)
    if found is None:
        return None
    best, runner_up, pair = found
    judged = verdict.judge(pair.method, pair.reference, config=config)
    return {"best": best, "runner_up": runner_up, "accuracy": accuracy, **judged}


def gap_pair(
    rows: dict[str, dict], accuracy: str, *, correct: Mapping[str, Sequence[np.ndarray]]
) -> tuple[str, str, verdict.Paired] | None:
    """(best, runner-up, their fits paired) by a measured test `accuracy`; None when fewer
    than two pretrained candidates have it."""
    ranked = by_accuracy(rows, accuracy)
    if len(ranked) < 2:
        return None
    best, runner_up = ranked[:2]
    return best, runner_up, verdict.Paired(correct[best], correct[runner_up])


def kendall_tau(rows: dict[str, dict], score: str, accuracy: str) -> float | None:
    """Kendall's tau-b between `score` and `accuracy` across candidates having both; None
    below two candidates or when either is constant (tau is undefined then)."""
    keys = [k for k, row in rows.items() if row.get(score) is not None]
    keys = [k for k in keys if rows[k].get(accuracy) is not None]
    if len(keys) < 2:
        return None
    a = [rows[k][score] for k in keys]
    b = [rows[k][accuracy] for k in keys]
    if len(set(a)) < 2 or len(set(b)) < 2:
        return None
    return round(float(stats.kendalltau(a, b).statistic), 6)


def rank_agreement(rows: dict[str, dict], accuracies: Sequence[str]) -> dict[str, dict]:
    """Kendall's tau of every score against each measured accuracy: {score: {accuracy: tau}}."""
    return {
        score: {accuracy: kendall_tau(rows, score, accuracy) for accuracy in accuracies}
        for score in SCORE_FIELDS
    }
