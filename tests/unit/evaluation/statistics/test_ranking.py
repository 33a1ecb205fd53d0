"""Ranking candidate backbones: the rules in statistics/ranking.py's docstring."""

import itertools

import numpy as np
import pytest
from scipy import stats

from transferlab.evaluation.statistics import ranking
from transferlab.params import Verdict

CONFIG = Verdict(confidence=0.95, adjust="holm")


def row(logme, probe, pretrained=True, **more):
    return {
        "pretrained": pretrained,
        "logme": logme,
        "hscore": logme * 10,
        "probe_val_accuracy": probe,
        "knn_val_accuracy": probe,
        "probe_accuracy": probe,
        **more,
    }


def test_pretrained_rank_by_the_chosen_field_and_random_init_comes_last():
    rows = {
        "b": row(0.3, 0.80),
        "a": row(0.5, 0.70),
        "random": row(0.9, 0.95, pretrained=False),  # best numbers, still last
        "c": row(0.3, 0.60),  # ties b on LogME: by key
    }
    assert ranking.rank(rows, "logme") == ["a", "b", "c", "random"]
    assert ranking.rank(rows, "probe") == ["b", "a", "c", "random"]


def test_random_init_ones_keep_their_own_order_after_the_pretrained():
    rows = {"r1": row(0.1, 0.5, pretrained=False), "r2": row(0.2, 0.4, pretrained=False)}
    assert ranking.rank({**rows, "p": row(-1.0, 0.1)}, "logme") == ["p", "r2", "r1"]


def test_choose_takes_the_top_k_or_the_explicit_list_in_its_order():
    order = ["a", "b", "c"]
    assert ranking.choose(order, top_k=1) == ["a"]
    assert ranking.choose(order, top_k=5) == order
    assert ranking.choose(order, top_k=1, explicit=["c", "a"]) == ["c", "a"]


def test_gap_by_mcnemar_on_the_two_candidates_test_predictions():
    # 10000 test images: a alone right on 400, b alone on 100, both on 8900.
    a = np.zeros(10000, bool)
    b = np.zeros(10000, bool)
    a[:9300], b[400:9400] = True, True
    rows = {"a": row(0, 0.93), "b": row(0, 0.90), "r": row(0, 0.99, pretrained=False)}
    correct = {"a": [a], "b": [b], "r": [np.ones(10000, bool)]}
    gap = ranking.gap(rows, "probe_accuracy", correct=correct, config=CONFIG)
    assert (gap["best"], gap["runner_up"]) == ("a", "b")  # random init is never the best
    assert gap["gain"] == pytest.approx(0.03) and gap["verdict"] == "positive"
    assert gap["p"] == pytest.approx(stats.binomtest(400, 500, 0.5).pvalue, rel=1e-3)
    assert gap["test"] == "McNemar exact, 10000 paired test images"
    assert gap["low"] > 0
    # +0.5 points, but the two disagree on 750 images (400 against 350): within the noise
    close_a, close_b = np.zeros(10000, bool), np.zeros(10000, bool)
    close_a[:9050], close_b[400:9400] = True, True
    close = {"a": row(0, 0.905), "b": row(0, 0.90)}
    judged = ranking.gap(
        close, "probe_accuracy", correct={"a": [close_a], "b": [close_b]}, config=CONFIG
    )
    assert judged["gain"] == pytest.approx(0.005) and judged["verdict"] == "inconclusive"
    assert judged["p"] == pytest.approx(stats.binomtest(400, 750, 0.5).pvalue, rel=1e-3)
    assert judged["low"] < 0 < judged["high"]


def test_gap_of_several_fine_tuning_seeds_is_a_t_over_seeds():
    seeds = {
        key: [np.arange(100) < n for n in counts]
        for key, counts in {"a": (90, 91, 92), "b": (80, 80, 82)}.items()
    }
    rows = {"a": row(0, 0.8, full_accuracy=0.91), "b": row(0, 0.8, full_accuracy=0.8067)}
    gap = ranking.gap(rows, "full_accuracy", correct=seeds, config=CONFIG)
    assert gap["test"] == "paired t over 3 seeds" and gap["gain"] == pytest.approx(0.1033, abs=1e-4)


def test_no_gap_without_two_pretrained_candidates():
    rows = {"a": row(0, 0.9), "r": row(0, 0.8, pretrained=False)}
    assert ranking.gap(rows, "probe_accuracy", correct={}, config=CONFIG) is None
    assert ranking.gap(rows, "full_accuracy", correct={}, config=CONFIG) is None  # not trained


def kendall_by_pairs(a, b):
    """tau-a from its definition, (concordant - discordant) / pairs: equals tau-b without ties."""
    pairs = list(itertools.combinations(range(len(a)), 2))
    sign = [(a[i] - a[j]) * (b[i] - b[j]) for i, j in pairs]
    return (sum(s > 0 for s in sign) - sum(s < 0 for s in sign)) / len(pairs)


def test_kendall_tau_against_counting_pairs():
    logme = [0.1, 0.4, 0.3, 0.9, 0.2]
    accuracy = [0.50, 0.70, 0.80, 0.90, 0.40]
    rows = {str(i): row(s, a) for i, (s, a) in enumerate(zip(logme, accuracy, strict=True))}
    expected = kendall_by_pairs(logme, accuracy)
    assert expected == pytest.approx(0.6)
    assert ranking.kendall_tau(rows, "logme", "probe_accuracy") == pytest.approx(expected)
    reversed_rows = {k: {**r, "probe_accuracy": -r["probe_accuracy"]} for k, r in rows.items()}
    assert ranking.kendall_tau(reversed_rows, "logme", "probe_accuracy") == pytest.approx(-0.6)


def test_kendall_tau_only_over_candidates_with_both_and_never_on_a_constant():
    rows = {"a": row(0.1, 0.5, full_accuracy=0.6), "b": row(0.2, 0.6), "c": row(0.3, 0.7)}
    assert ranking.kendall_tau(rows, "logme", "full_accuracy") is None  # one trained
    rows["b"]["full_accuracy"] = 0.7
    assert ranking.kendall_tau(rows, "logme", "full_accuracy") == 1.0
    flat = {k: row(0.5, a) for k, a in (("a", 0.1), ("b", 0.2))}
    assert ranking.kendall_tau(flat, "logme", "probe_accuracy") is None


def test_rank_agreement_covers_every_score_and_accuracy():
    rows = {"a": row(0.1, 0.5), "b": row(0.2, 0.6)}
    agreement = ranking.rank_agreement(rows, ["probe_accuracy"])
    assert agreement == {"logme": {"probe_accuracy": 1.0}, "hscore": {"probe_accuracy": 1.0}}
