"""The recommendation: the cheapest method shown within the margin of the most accurate, else
the most accurate; intervals simultaneous over the methods the rule looked at."""

import numpy as np
from scipy import stats

from transferlab.evaluation.rendering import words
from transferlab.evaluation.statistics.recommend import (
    AS_GOOD,
    CANNOT_TELL,
    WORSE,
    Method,
    needed,
    recommend,
)
from transferlab.params import Verdict

CONFIG = Verdict(confidence=0.95, adjust="holm")
N = 1000


def correct(right: int, offset: int = 0, n: int = N) -> np.ndarray:
    """n test images, `right` of them right, starting at `offset` (mod n): two arms with the
    same offset agree wherever the smaller is right."""
    out = np.zeros(n, dtype=bool)
    out[(offset + np.arange(right)) % n] = True
    return out


def swapped(base: np.ndarray, gained: int, lost: int) -> np.ndarray:
    """`base` with `gained` of its wrong images right and `lost` of its right ones wrong."""
    out = base.copy()
    out[np.flatnonzero(~base)[:gained]] = True
    out[np.flatnonzero(base)[:lost]] = False
    return out


def test_a_tiny_test_set_never_recommends_the_cheaper_method_because_nothing_is_significant():
    """40 test images: kNN two images behind the rest, none of which can be told apart. The
    old rule (cheapest not beaten at 95 %) recommended kNN; nothing shows it within 1 point."""
    probe = np.ones(40, dtype=bool)
    knn = swapped(probe, 0, 2)  # 0.95
    methods = [
        Method("knn", [knn], 0),
        Method("probe", [probe], 12_810),
        Method("full", [probe.copy()], 3_371_008),
    ]
    rec = recommend(methods, CONFIG, margin=1.0)
    assert rec["best"] == "probe" and rec["method"] == "probe"  # the cheaper of the two best
    (knn_found,) = rec["cheaper"]
    assert knn_found["outcome"] == CANNOT_TELL and knn_found["difference"]["low"] <= 0
    assert knn_found["needed_units"] == "test images" and knn_found["needed"] > 40
    text = words.recommendation_text(rec)
    assert "kNN (0.9500; 0 trainable parameters): cannot tell within the margin" in text
    assert f"about {knn_found['needed']:,} test images would decide it" in text


def test_on_a_large_test_set_a_cheaper_method_within_the_margin_is_recommended():
    n = 20_000
    full = correct(18_000, n=n)
    probe = swapped(full, 40, 100)  # -0.3 points, shown within 1 point
    methods = [Method("full", [full], 3_371_008), Method("probe", [probe], 12_810)]
    rec = recommend(methods, CONFIG, margin=1.0)
    assert rec["method"] == "probe" and rec["best"] == "full"
    (found,) = rec["cheaper"]
    assert found["outcome"] == AS_GOOD and found["difference"]["high"] < 0.01
    text = words.recommendation_text(rec, {"probe": 31.0, "full": 180.0})
    assert text.startswith("Use the linear probe (probe): test accuracy 0.8970 [")
    assert (
        "as good as the most accurate, full fine-tuning (full) (0.9000), within the 1-point" in text
    )
    narrow = recommend(methods, CONFIG, margin=0.1)  # a stricter margin: full is kept
    assert narrow["method"] == "full" and narrow["cheaper"][0]["outcome"] != AS_GOOD


def test_a_method_shown_worse_is_named_so_and_the_best_recommended():
    probe = correct(800)
    full = correct(900)
    rec = recommend([Method("full", [full], 3_371_008), Method("probe", [probe], 12_810)],
                    CONFIG, margin=1.0)  # fmt: skip
    assert rec["method"] == "full" and rec["cheaper"][0]["outcome"] == WORSE
    text = words.recommendation_text(rec, {"full": 186.0, "probe": 31.0})
    assert "Use full fine-tuning (full): test accuracy 0.9000" in text
    assert (
        "the linear probe (probe) (0.8000; 31 s, 12.8 k trainable parameters): worse, +10.0" in text
    )


def test_every_interval_is_simultaneous_over_the_methods_looked_at():
    """The choice looks at K test accuracies, so each interval is Bonferroni's 1 - 0.05 / K."""
    methods = [Method(name, [correct(800, offset=i)], i) for i, name in enumerate("abcde")]
    rec = recommend(methods, CONFIG, margin=1.0)
    assert rec["looked_at"] == 5 and rec["level"] == 0.99
    exact = stats.binomtest(800, N).proportion_ci(0.99, method="exact")
    assert (rec["low"], rec["high"]) == (round(exact.low, 6), round(exact.high, 6))
    assert all(c["difference"]["level"] == 0.99 for c in rec["cheaper"])
    alone = recommend(methods[:1], CONFIG, margin=1.0)
    assert alone["level"] == 0.95 and "No method is cheaper." in words.recommendation_text(alone)


def test_the_order_is_what_a_method_trains_never_its_wall_time():
    """Equal accuracy: the method that trains fewer parameters is recommended, whatever the
    times measured (they vary between runs; the recommendation must reproduce)."""
    a = correct(800)
    methods = [Method("full", [a], 3_371_008), Method("lpft", [a.copy()], 3_371_008)]
    methods.insert(1, Method("probe", [a.copy()], 12_810))
    rec = recommend(methods, CONFIG, margin=1.0)
    assert rec["order"] == ["probe", "full", "lpft"] and rec["method"] == "probe"
    assert "seconds" not in str(rec)
    slow_probe = words.recommendation_text(rec, {"probe": 500.0, "full": 180.0})
    assert "Use the linear probe (probe)" in slow_probe and ", 500 s, 12.8 k" in slow_probe


def test_seeds_are_paired_and_the_best_is_judged_by_what_picked_it():
    """Three seeds each: picked by the mean over seeds, and judged by the t over the same
    seeds, never by its first seed alone."""
    full = [correct(900), correct(880), correct(890)]
    probe = [correct(800)]  # deterministic: one fit, paired with each seed
    rec = recommend([Method("full", full, 3_371_008), Method("probe", probe, 12_810)],
                    CONFIG, margin=1.0)  # fmt: skip
    assert rec["best_accuracy"] == 0.89 and rec["interval"] == "t over 3 seeds"
    assert rec["cheaper"][0]["difference"]["test"] == "paired t over 3 seeds"


def test_what_would_decide_is_where_the_normal_half_width_clears_the_nearer_bound():
    # 2 of 40 images one way: variance 0.05 - 0.05^2 per image; 5 points of gain clear 0
    # once z * sqrt(v / n) < 0.05
    z = stats.norm.ppf(1 - 0.05 / 6)
    expected = int(np.ceil(0.0475 * (z / 0.05) ** 2))
    assert needed(0.05, 0.0475, margin=1.0, level=1 - 0.05 / 3) == expected == 109
    # no gain: only the margin can be cleared, 1 point away
    assert needed(0.0, 0.01, margin=1.0, level=0.95) == int(np.ceil(0.01 * (1.96 / 0.01) ** 2))
    assert needed(0.0, 0.0, margin=1.0, level=0.95) is None  # no spread: nothing to shrink
