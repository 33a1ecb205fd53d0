import pytest

from transferlab.evaluation.verdict import (
    INCONCLUSIVE,
    NEGATIVE,
    POSITIVE,
    accuracy_difference_se,
    curve_comparisons,
    judge,
    probe_pairs,
)
from transferlab.params import Verdict

CONFIG = Verdict(confidence=0.95, single_seed_factor=3.0)


def test_consistent_gains_beyond_their_spread_are_positive_or_negative():
    assert judge([0.05, 0.06, 0.055], config=CONFIG)["verdict"] == POSITIVE
    assert judge([-0.05, -0.06, -0.055], config=CONFIG)["verdict"] == NEGATIVE


def test_gains_within_seed_noise_are_inconclusive():
    # mean +0.01 but seeds disagree in sign: the t interval (df=2) covers 0
    result = judge([0.04, -0.01, -0.0], config=CONFIG)
    assert result["verdict"] == INCONCLUSIVE
    assert result["seeds"] == 3 and result["gain"] == pytest.approx(0.01)
    assert result["spread"] == pytest.approx(0.0264575, abs=1e-6)


def test_three_seeds_need_more_than_two_standard_errors():
    # mean/se = 3.0 > 1.96 but < t(0.975, df=2) = 4.30: not enough with three seeds
    gains = [0.02, 0.01, 0.03]
    assert judge(gains, config=CONFIG)["verdict"] == INCONCLUSIVE
    assert judge(gains, config=Verdict(0.5, 3.0))["verdict"] == POSITIVE


def test_single_seed_needs_a_gap_far_beyond_the_measured_noise():
    assert judge([0.05], config=CONFIG, noise=0.01)["verdict"] == POSITIVE  # 5 > 3 spreads
    assert judge([0.02], config=CONFIG, noise=0.01)["verdict"] == INCONCLUSIVE  # 2 < 3
    assert judge([-0.05], config=CONFIG, noise=0.01)["verdict"] == NEGATIVE
    # no noise estimate at all: a single seed says nothing
    assert judge([0.5], config=CONFIG)["verdict"] == INCONCLUSIVE
    assert judge([0.5], config=CONFIG, noise=0.0)["verdict"] == INCONCLUSIVE


def test_random_weights_are_never_positive_transfer():
    result = judge([0.05, 0.06, 0.055], config=CONFIG, transferred=False)
    assert result["verdict"] == INCONCLUSIVE and result["gain"] > 0
    assert judge([-0.05, -0.06, -0.055], config=CONFIG, transferred=False)["verdict"] == NEGATIVE
    assert judge([0.0, 0.0, 0.0], config=CONFIG)["verdict"] == INCONCLUSIVE  # identical features


def test_binomial_floor():
    assert accuracy_difference_se(0.9, 10000) == pytest.approx((2 * 0.09 / 10000) ** 0.5)


def rows(shot, seed, subset, **accuracy):
    return [
        {"series": s, "shot": shot, "seed": seed, "subset": subset, "accuracy": a}
        for s, a in accuracy.items()
    ]


def test_curve_comparisons_treat_identical_subsets_as_one_seed():
    table = []
    for seed, (pre, ref) in enumerate([(0.80, 0.60), (0.82, 0.63), (0.79, 0.58)]):
        table += rows("1", seed, f"s{seed}", pretrained_linear=pre, random_init_linear=ref)
    for seed in range(3):  # 'all': every seed drew the same subset
        table += rows("all", seed, "same", pretrained_linear=0.95, random_init_linear=0.90)
    out = curve_comparisons(table, probe_pairs(), config=CONFIG, transferred=True)[
        "linear_vs_random_init"
    ]
    assert out["1"]["seeds"] == 3 and out["1"]["verdict"] == POSITIVE
    assert out["all"]["seeds"] == 1
    # noise for 'all' is the gains' spread at shot 1 (0.02 .. 0.03 -> std ~0.0058)
    assert out["all"]["spread"] == pytest.approx(out["1"]["spread"])
    assert out["all"]["verdict"] == POSITIVE  # 0.05 > 3 x 0.0058
