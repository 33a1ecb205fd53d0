"""The recommendation: the cheapest method the most accurate one does not beat beyond noise,
with what it gains over the cheaper choice and what it costs."""

import numpy as np
from scipy import stats

from transferlab.evaluation import words
from transferlab.evaluation.recommend import Method, recommend
from transferlab.evaluation.verdict import accuracy_interval
from transferlab.params import Verdict

CONFIG = Verdict(confidence=0.95)
N = 1000


def correct(right: int, offset: int = 0) -> np.ndarray:
    """N test images, `right` of them right, starting at `offset` (mod N): two arms with the
    same offset agree wherever the smaller is right."""
    out = np.zeros(N, dtype=bool)
    out[(offset + np.arange(right)) % N] = True
    return out


def test_within_the_noise_the_cheaper_method_is_recommended_and_the_text_says_so():
    # Full gets 20 images right that the probe misses and misses 14 it gets: +0.6 points.
    probe = correct(800)
    full = probe.copy()
    full[np.flatnonzero(~probe)[:20]] = True
    full[np.flatnonzero(probe)[:14]] = False
    methods = [
        Method("full", [full], trainable=3_371_008),
        Method("probe", [probe], trainable=12_810),
    ]
    rec = recommend(methods, CONFIG)
    assert rec["method"] == "probe" and rec["best"] == "full"
    assert rec["compared_with"] is None  # nothing is cheaper than the probe
    assert rec["best_vs_recommended"]["verdict"] == "inconclusive"
    text = words.recommendation_text(rec, {"probe": 31.0, "full": 180.0})
    assert text.startswith("Use the linear probe (probe): test accuracy 0.8000 [")
    assert "No method beats it beyond the noise, and it is the cheapest." in text
    assert "Full fine-tuning (full) scores higher but not beyond the noise: +0.6 points" in text


def test_a_gain_beyond_the_noise_is_bought_and_its_price_is_stated():
    probe = correct(800)
    knn = correct(795, offset=3)  # within the noise of the probe, and cheaper
    full = correct(900)  # beyond it
    methods = [
        Method("full", [full], trainable=3_371_008),
        Method("probe", [probe], trainable=12_810),
        Method("knn", [knn], trainable=0),
    ]
    rec = recommend(methods, CONFIG)
    assert rec["order"] == ["knn", "probe", "full"]
    assert rec["method"] == "full" and rec["best_vs_recommended"] is None
    # Among the cheaper ones the probe is best, but kNN is within its noise and cheaper.
    assert rec["compared_with"]["method"] == "knn"
    assert rec["compared_with"]["verdict"]["verdict"] == "positive"
    text = words.recommendation_text(rec, {"full": 186.0, "probe": 31.0, "knn": 30.0})
    assert "Use full fine-tuning (full): test accuracy 0.9000" in text
    assert "3.37 M trainable parameters" in text
    assert "Against kNN, the cheaper choice (0.7950; 30 s, 0 trainable parameters, 6.2x" in text
    assert "+10.5 points" in text and text.endswith("positive.")


def test_the_accuracy_interval_is_clopper_pearson_for_one_fit_and_a_t_over_seeds():
    rec = recommend([Method("probe", [correct(800)], 12_810)], CONFIG)
    exact = stats.binomtest(800, N).proportion_ci(0.95, method="exact")
    assert (rec["low"], rec["high"]) == (round(exact.low, 6), round(exact.high, 6))
    assert rec["interval"] == f"exact binomial, {N} test images"
    seeds = [correct(800), correct(820)]
    mean, low, high = accuracy_interval(seeds, confidence=0.95)
    half = stats.t.ppf(0.975, 1) * np.std([0.8, 0.82], ddof=1) / np.sqrt(2)
    assert np.isclose(mean, 0.81) and np.isclose(high - mean, half) and np.isclose(mean - low, half)


def test_the_order_is_what_a_method_trains_never_its_wall_time():
    """Equal accuracy: the method that trains fewer parameters is recommended, whatever the
    times measured (they vary between runs; the recommendation must reproduce)."""
    a, b = correct(800), correct(800, offset=5)
    methods = [Method("full", [a], 3_371_008), Method("lpft", [b], 3_371_008)]
    methods.insert(1, Method("probe", [correct(800, offset=9)], 12_810))
    rec = recommend(methods, CONFIG)
    assert rec["order"] == ["probe", "full", "lpft"] and rec["method"] == "probe"
    assert "seconds" not in str(rec)
    slow_probe = words.recommendation_text(rec, {"probe": 500.0, "full": 180.0})
    assert "Use the linear probe (probe)" in slow_probe and ", 500 s, 12.8 k" in slow_probe
    untimed = words.recommendation_text(rec)  # no timings: the size alone
    assert untimed.split("test images), ")[1].startswith("12.8 k trainable parameters.")
