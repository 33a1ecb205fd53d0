"""Families of verdicts: Holm's step-down adjustment, intervals that agree with it, and the
curves' per-comparison families."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from transferlab.evaluation.statistics import family
from transferlab.evaluation.statistics.verdict import (
    INCONCLUSIVE,
    POSITIVE,
    Paired,
    judge,
    probe_pairs,
)
from transferlab.params import Verdict

HOLM = Verdict(confidence=0.95, adjust="holm")
NONE = Verdict(confidence=0.95, adjust="none")


def closed_testing(p_values: list[float], alpha: float) -> list[bool]:
    """An oracle independent of family.holm: the closed testing principle with Bonferroni's
    test of every intersection (Marcus, Peritz & Gabriel 1976), which is what Holm's method
    is. H_i is rejected when every subset holding i has min p < alpha / |subset|."""
    m = len(p_values)
    rejected = []
    for i in range(m):
        others = [j for j in range(m) if j != i]
        ok = all(
            min(p_values[j] for j in (i, *subset)) < alpha / (len(subset) + 1)
            for size in range(m)
            for subset in itertools.combinations(others, size)
        )
        rejected.append(ok)
    return rejected


def test_holm_by_hand():
    # sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 -> 0.06 (monotone)
    assert family.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert family.holm([0.5, math.nan]) == pytest.approx([1.0, 1.0])  # no test counts as 1


@pytest.mark.parametrize("seed", range(20))
def test_holm_rejects_exactly_what_closed_testing_rejects(seed):
    rng = np.random.default_rng(seed)
    p_values = list(rng.choice([1e-4, 0.004, 0.009, 0.012, 0.02, 0.03, 0.2], rng.integers(2, 7)))
    adjusted = family.holm(p_values)
    assert [a < 0.05 for a in adjusted] == closed_testing(p_values, 0.05)


def paired(b: int, c: int, both: int = 200) -> Paired:
    """One fit per arm: b images only the method gets right, c only the reference."""
    method = np.repeat([True, False, True], [b, c, both])
    reference = np.repeat([False, True, True], [b, c, both])
    return Paired([method], [reference])


def test_a_verdict_significant_alone_reads_inconclusive_in_its_family():
    members = {"strong": paired(40, 2), "weak": paired(12, 3), "null": paired(5, 5)}
    alone = judge(members["weak"].method, members["weak"].reference, config=HOLM)
    assert alone["verdict"] == POSITIVE and alone["p"] < 0.05  # p = 0.035 alone
    judged = family.judge_family(members, config=HOLM, name="conclusions")
    weak = judged["weak"]
    assert weak["p"] == alone["p"] and weak["p_adjusted"] == pytest.approx(2 * alone["p"], 1e-3)
    assert weak["verdict"] == INCONCLUSIVE and weak["low"] <= 0 <= weak["high"]
    assert weak["family"] == {"name": "conclusions", "size": 3, "adjust": "holm"}
    strong = judged["strong"]  # the smallest p: tested at Bonferroni's 1 - 0.05 / 3
    assert strong["verdict"] == POSITIVE and strong["level"] == pytest.approx(1 - 0.05 / 3)
    assert weak["level"] == pytest.approx(1 - 0.05 / 2) == judged["null"]["level"]
    uncorrected = family.judge_family(members, config=NONE, name="conclusions")
    assert uncorrected["weak"]["verdict"] == POSITIVE and uncorrected["weak"]["level"] == 0.95


@pytest.mark.parametrize("seed", range(10))
def test_every_interval_excludes_0_exactly_when_its_family_verdict_is_decisive(seed):
    rng = np.random.default_rng(seed)
    members = {f"c{i}": paired(*rng.integers(0, 30, 2)) for i in range(rng.integers(2, 8))}
    for name, v in family.judge_family(members, config=HOLM, name="f").items():
        decisive = v["verdict"] != INCONCLUSIVE
        assert decisive == (v["low"] > 0 or v["high"] < 0) == (v["p_adjusted"] < 0.05), name


def rows(shot, seed, subset, **correct):
    return [
        {"series": s, "shot": shot, "seed": seed, "subset": subset,
         "accuracy": float(c.mean()), "correct": c}
        for s, c in correct.items()
    ]  # fmt: skip


def accuracies(correct: float, n: int = 100) -> np.ndarray:
    return np.arange(n) < round(correct * n)


def test_a_curve_comparison_is_one_family_and_its_stated_shot_is_left_to_the_caller():
    table = []
    for seed, (pre, ref) in enumerate([(0.80, 0.60), (0.82, 0.63), (0.79, 0.58)]):
        table += rows("1", seed, f"s{seed}", pretrained_linear=accuracies(pre),
                      random_init_linear=accuracies(ref))  # fmt: skip
    method = np.repeat([True, False, True, False], [40, 20, 900, 40])
    reference = np.repeat([False, True, True, False], [40, 20, 900, 40])
    for seed in range(3):  # 'all': every seed drew the same subset, so one fit
        table += rows("all", seed, "same", pretrained_linear=method, random_init_linear=reference)
    out = family.curve_comparisons(table, probe_pairs(("linear",)), config=HOLM, transferred=True)
    by_shot = out["linear_vs_random_init"]
    assert list(by_shot) == ["1", "all"]
    assert by_shot["1"]["test"] == "paired t over 3 seeds"
    assert by_shot["all"]["test"].startswith("McNemar exact") and by_shot["all"]["seeds"] == 1
    assert by_shot["all"]["p"] == pytest.approx(stats.binomtest(40, 60, 0.5).pvalue, rel=1e-3)
    assert {v["family"]["name"] for v in by_shot.values()} == {"curve linear_vs_random_init"}
    assert all(v["family"]["size"] == 2 for v in by_shot.values())
    stated = family.curve_comparisons(
        table, probe_pairs(("linear",)), config=HOLM, transferred=True,
        stated={"linear_vs_random_init": "all"},
    )["linear_vs_random_init"]  # fmt: skip
    assert list(stated) == ["1"] and stated["1"]["family"]["size"] == 1
    assert out["linear_vs_raw_pixels"] == {}  # no such series in these rows


def test_fine_tuning_seeds_on_one_subset_are_fits_of_their_own():
    table = []
    for seed, (full, scratch) in enumerate([(0.9, 0.5), (0.92, 0.52)]):
        for row in rows("all", seed, "same", finetune_full=accuracies(full),
                        finetune_scratch=accuracies(scratch)):  # fmt: skip
            table.append({**row, "train_seed": 42 + seed})
    pairs = {"full_vs_scratch": ("finetune_full", "finetune_scratch")}
    by_shot = family.curve_comparisons(table, pairs, config=HOLM, transferred=True)
    cell = by_shot["full_vs_scratch"]["all"]
    assert cell["seeds"] == 2 and cell["test"].endswith("each averaged over 2 seeds")
    assert cell["gain"] == pytest.approx(0.4)


def test_curve_cells_come_in_curve_order_whatever_order_the_rows_are_in():
    table = []
    for shot in ("all", "10", "2"):
        table += rows(shot, 0, shot, pretrained_knn=accuracies(0.9), raw_pixels_knn=accuracies(0.8))
    out = family.curve_comparisons(table, probe_pairs(("knn",)), config=HOLM, transferred=True)
    assert list(out["knn_vs_raw_pixels"]) == ["2", "10", "all"]
