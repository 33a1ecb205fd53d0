import numpy as np
import pytest
from scipy import stats

from transferlab.evaluation.verdict import (
    INCONCLUSIVE,
    NEGATIVE,
    NOT_TRANSFER,
    POSITIVE,
    curve_comparisons,
    judge,
    mcnemar,
    mcnemar_counts,
    paired_t,
    probe_pairs,
)
from transferlab.params import Verdict

CONFIG = Verdict(confidence=0.95)


def paired(b: int, c: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness of two arms on b + c + both + neither test images, shuffled."""
    method = np.repeat([True, False, True, False], [b, c, both, neither])
    reference = np.repeat([False, True, True, False], [b, c, both, neither])
    order = np.random.default_rng(0).permutation(len(method))
    return method[order], reference[order]


def accuracies(correct: np.ndarray, n: int = 100) -> np.ndarray:
    return np.arange(n) < round(correct * n)


# One fit per arm: McNemar's exact test on the paired test images.


def test_mcnemar_counts_the_discordant_images_and_tests_them_exactly():
    method, reference = paired(b=30, c=12, both=150, neither=8)
    assert mcnemar_counts(method, reference) == (30, 12, 200)
    gain, low, high, p = mcnemar(30, 12, 200, confidence=0.95)
    assert gain == pytest.approx((30 - 12) / 200)
    assert gain == pytest.approx(method.mean() - reference.mean())  # the accuracy difference
    assert p == pytest.approx(stats.binomtest(30, 42, 0.5).pvalue)
    ci = stats.binomtest(30, 42, 0.5).proportion_ci(confidence_level=0.95, method="exact")
    assert (low, high) == pytest.approx((42 / 200 * (2 * ci.low - 1), 42 / 200 * (2 * ci.high - 1)))
    result = judge([method], [reference], config=CONFIG)
    assert result == {
        "verdict": POSITIVE,  # p = 0.008
        "gain": 0.09,
        "low": round(low, 6),
        "high": round(high, 6),
        "confidence": 0.95,
        "p": float(f"{p:.4g}"),
        "seeds": 1,
        "test": "McNemar exact, 200 paired test images",
        "noise": result["noise"],
    }
    assert "test-set sampling" in result["noise"]
    assert judge([reference], [method], config=CONFIG)["verdict"] == NEGATIVE


def test_mcnemar_ignores_what_both_arms_agree_on():
    # 10 against 4 discordant images: not significant however many images both get right
    for both in (0, 1000, 100000):
        method, reference = paired(b=10, c=4, both=both, neither=0)
        assert judge([method], [reference], config=CONFIG)["verdict"] == INCONCLUSIVE


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_the_interval_excludes_0_exactly_when_the_exact_test_is_significant(confidence):
    for b in range(0, 25):  # every split of up to 48 discordant images, both sides of 0
        for c in range(0, 25):
            gain, low, high, p = mcnemar(b, c, 100, confidence=confidence)
            assert (low > 0 or high < 0) == (p < 1 - confidence), (b, c)
            assert low <= gain <= high


def test_no_discordant_image_is_no_gain_and_inconclusive():
    same = np.array([True, True, False, True])
    assert mcnemar(0, 0, 4, confidence=0.95) == (0.0, 0.0, 0.0, 1.0)
    result = judge([same], [same.copy()], config=CONFIG)
    assert (result["verdict"], result["gain"], result["p"]) == (INCONCLUSIVE, 0.0, 1.0)


def test_unpaired_correctness_is_refused():
    with pytest.raises(ValueError, match="unpaired"):
        mcnemar_counts(np.ones(5, bool), np.ones(6, bool))
    with pytest.raises(ValueError, match="unpaired"):
        judge([np.ones(5, bool)], [], config=CONFIG)


# Two or more fits: the paired t interval over seeds.


def t_judge(gains, config=CONFIG, transferred=True):
    """judge on seeds whose accuracies (out of 1000 images) differ by `gains`."""
    reference = [accuracies(0.5, 1000) for _ in gains]
    method = [accuracies(0.5 + g, 1000) for g in gains]
    return judge(method, reference, config=config, transferred=transferred)


def test_consistent_gains_beyond_their_spread_are_positive_or_negative():
    assert t_judge([0.05, 0.06, 0.055])["verdict"] == POSITIVE
    assert t_judge([-0.05, -0.06, -0.055])["verdict"] == NEGATIVE


def test_gains_within_seed_noise_are_inconclusive_and_say_what_noise_they_measured():
    # mean +0.01 but seeds disagree in sign: the t interval (df=2) covers 0
    result = t_judge([0.04, -0.01, 0.0])
    assert result["verdict"] == INCONCLUSIVE
    assert result["seeds"] == 3 and result["gain"] == pytest.approx(0.01)
    assert result["test"] == "paired t over 3 seeds"
    assert "one fixed test set" in result["noise"] and "left out" in result["noise"]
    half = stats.t.ppf(0.975, 2) * np.std([0.04, -0.01, 0.0], ddof=1) / np.sqrt(3)
    assert (result["low"], result["high"]) == pytest.approx((0.01 - half, 0.01 + half), abs=1e-6)
    expected = stats.ttest_1samp([0.04, -0.01, 0.0], 0.0).pvalue
    assert result["p"] == pytest.approx(expected, rel=1e-3)


def test_three_seeds_need_more_than_two_standard_errors():
    # mean/se = 3.0 > 1.96 but < t(0.975, df=2) = 4.30: not enough with three seeds
    gains = [0.02, 0.01, 0.03]
    assert t_judge(gains)["verdict"] == INCONCLUSIVE
    assert t_judge(gains, config=Verdict(0.5))["verdict"] == POSITIVE


def test_identical_gains_have_no_spread_and_no_p():
    mean, low, high, p = paired_t([0.02, 0.02], confidence=0.95)
    assert (mean, low, high) == (0.02, 0.02, 0.02) and np.isnan(p)
    assert t_judge([0.0, 0.0])["p"] is None


def test_random_weights_are_never_positive_transfer():
    result = t_judge([0.05, 0.06, 0.055], transferred=False)
    assert result["verdict"] == INCONCLUSIVE and result["gain"] > 0
    assert result["note"] == NOT_TRANSFER
    assert t_judge([-0.05, -0.06, -0.055], transferred=False)["verdict"] == NEGATIVE
    method, reference = paired(b=50, c=0, both=50, neither=0)
    one = judge([method], [reference], config=CONFIG, transferred=False)
    assert one["verdict"] == INCONCLUSIVE and one["note"] == NOT_TRANSFER
    same = accuracies(0.9)
    assert judge([same], [same], config=CONFIG)["verdict"] == INCONCLUSIVE  # identical features


# Curves: one verdict per shot, by the fits each shot has.


def rows(shot, seed, subset, **correct):
    return [
        {
            "series": s,
            "shot": shot,
            "seed": seed,
            "subset": subset,
            "accuracy": float(c.mean()),
            "correct": c,
        }
        for s, c in correct.items()
    ]


def test_curve_comparisons_judge_identical_subsets_by_mcnemar_on_their_correctness():
    table = []
    for seed, (pre, ref) in enumerate([(0.80, 0.60), (0.82, 0.63), (0.79, 0.58)]):
        table += rows(
            "1",
            seed,
            f"s{seed}",
            pretrained_linear=accuracies(pre),
            random_init_linear=accuracies(ref),
        )
    # 'all': every seed drew the same subset, so the probe was one fit
    method, reference = paired(b=40, c=20, both=900, neither=40)
    for seed in range(3):
        table += rows("all", seed, "same", pretrained_linear=method, random_init_linear=reference)
    out = curve_comparisons(table, probe_pairs(), config=CONFIG, transferred=True)
    by_shot = out["linear_vs_random_init"]
    assert by_shot["1"]["seeds"] == 3 and by_shot["1"]["verdict"] == POSITIVE
    assert by_shot["1"]["test"] == "paired t over 3 seeds"
    assert by_shot["all"] == judge([method], [reference], config=CONFIG)
    assert by_shot["all"]["seeds"] == 1 and by_shot["all"]["test"].startswith("McNemar exact")
    assert by_shot["all"]["p"] == pytest.approx(stats.binomtest(40, 60, 0.5).pvalue, rel=1e-3)
    assert out["knn_vs_raw_pixels"] == {}  # no such series in these rows


def test_fine_tuning_seeds_on_one_subset_are_fits_of_their_own():
    table = []
    for seed, (full, scratch) in enumerate([(0.9, 0.5), (0.92, 0.52)]):
        for row in rows(
            "all",
            seed,
            "same",
            finetune_full=accuracies(full),
            finetune_scratch=accuracies(scratch),
        ):
            table.append({**row, "train_seed": 42 + seed})
    pairs = {"full_vs_scratch": ("finetune_full", "finetune_scratch")}
    by_shot = curve_comparisons(table, pairs, config=CONFIG, transferred=True)["full_vs_scratch"]
    assert by_shot["all"]["seeds"] == 2 and by_shot["all"]["test"] == "paired t over 2 seeds"
    assert by_shot["all"]["gain"] == pytest.approx(0.4)


def test_curve_comparisons_come_in_curve_order_whatever_order_the_rows_are_in():
    table = []
    for shot in ("all", "10", "2"):
        table += rows(shot, 0, shot, pretrained_knn=accuracies(0.9), raw_pixels_knn=accuracies(0.8))
    out = curve_comparisons(table, probe_pairs(("knn",)), config=CONFIG, transferred=True)
    assert list(out["knn_vs_raw_pixels"]) == ["2", "10", "all"]
