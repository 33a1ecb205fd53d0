import numpy as np
import pytest
from scipy import stats

from transferlab.evaluation.statistics.power import smallest_significant_gain
from transferlab.evaluation.statistics.verdict import (
    INCONCLUSIVE,
    NEGATIVE,
    NO_TEST,
    NOT_TRANSFER,
    POSITIVE,
    judge,
    mcnemar,
    mcnemar_counts,
    pair_fits,
    paired_t,
)
from transferlab.params import Verdict

CONFIG = Verdict(confidence=0.95, adjust="holm")


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
        "level": 0.95,
        "p": float(f"{p:.4g}"),
        "p_adjusted": float(f"{p:.4g}"),  # judged alone: a family of one
        "family": {"name": "alone", "size": 1, "adjust": "none"},
        "seeds": 1,
        "test": "McNemar exact, 200 paired test images",
        "noise": result["noise"],
        "decidable": result["decidable"],
    }
    # the least split of the 42 discordant images that is significant: 28 against 14
    assert result["decidable"] == pytest.approx((28 - 14) / 200)
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
    with pytest.raises(ValueError, match="no fit"):
        judge([], [], config=CONFIG)


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
    assert t_judge(gains, config=Verdict(0.5, "holm"))["verdict"] == POSITIVE


def test_identical_gains_have_no_spread_and_no_p():
    mean, low, high, p = paired_t([0.02, 0.02], confidence=0.95)
    assert (mean, low, high) == (0.02, 0.02, 0.02) and np.isnan(p)
    assert t_judge([0.0, 0.0])["p"] is None


def test_a_spread_of_zero_never_makes_a_verdict_without_a_test():
    # three k-shot fits that all gained the same: a zero-width interval above 0, but no test
    result = t_judge([0.02, 0.02, 0.02])
    assert (result["low"], result["high"]) == pytest.approx((0.02, 0.02))
    assert result["verdict"] == INCONCLUSIVE and result["p"] is None
    assert result["note"] == NO_TEST


@pytest.mark.parametrize(
    ("n", "confidence", "expected"),
    [(3000, 0.95, 6 / 3000), (18, 0.95, 6 / 18), (5, 0.95, None), (100, 0.99, 8 / 100)],
)
def test_the_smallest_significant_gain_is_b_images_one_way_and_none_the_other(
    n, confidence, expected
):
    assert smallest_significant_gain(n, confidence=confidence) == expected
    if expected is not None:  # McNemar's own verdict agrees: b is enough, b - 1 is not
        b = round(expected * n)
        assert mcnemar(b, 0, n, confidence=confidence)[3] < 1 - confidence
        assert mcnemar(b - 1, 0, n, confidence=confidence)[3] >= 1 - confidence


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


# How many fits: one (McNemar), two (the images as units), three or more (t over seeds).


def test_two_fits_make_the_images_the_units_not_a_t_with_one_degree_of_freedom():
    rng = np.random.default_rng(0)
    reference = [rng.random(400) < 0.6, rng.random(400) < 0.6]
    # seeds that gain unlike amounts (about +10 and +2 points): a t over two seeds cannot tell
    method = [
        r | (rng.random(400) < share) for r, share in zip(reference, (0.25, 0.05), strict=True)
    ]
    result = judge(method, reference, config=CONFIG)
    d = np.mean([m.astype(float) - r for m, r in zip(method, reference, strict=True)], axis=0)
    se = d.std(ddof=1) / np.sqrt(400)
    assert result["test"] == "paired z over 400 test images, each averaged over 2 seeds"
    assert result["gain"] == pytest.approx(d.mean(), abs=1e-6)
    assert (result["low"], result["high"]) == pytest.approx(
        (d.mean() - 1.959964 * se, d.mean() + 1.959964 * se), abs=1e-6
    )
    assert result["p"] == pytest.approx(2 * stats.norm.sf(d.mean() / se), rel=1e-3)
    assert result["verdict"] == POSITIVE  # a t over the two seeds' gains would need 12.7 se
    gains = [m.mean() - r.mean() for m, r in zip(method, reference, strict=True)]
    assert paired_t(gains, confidence=0.95)[1] < 0 < result["low"]


def test_unequal_fits_pair_the_seeds_they_share_and_one_fit_pairs_with_each():
    a, b, c = accuracies(0.7), accuracies(0.6), accuracies(0.5)
    assert pair_fits([a], [b, c]) == ([a, a], [b, c])  # a deterministic probe: every seed
    method, reference = pair_fits([a, b, c], [b, c])
    assert len(method) == len(reference) == 2 and method[1] is b  # seeds 0 and 1 only
    two_against_one = judge([a, b], [c], config=CONFIG)
    assert two_against_one["seeds"] == 2 and "averaged over 2 seeds" in two_against_one["test"]
    three = judge([a, a, a], [b, c, b], config=CONFIG)
    assert three["test"] == "paired t over 3 seeds" and three["seeds"] == 3
