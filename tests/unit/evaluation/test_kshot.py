import numpy as np
import pytest

from transferlab import io
from transferlab.evaluation.kshot import (
    curve_shots,
    headline,
    in_curve_order,
    kshot_subsets,
    pack_correct,
    read_summary,
    shot_label,
    single_fit_correct,
    summarise,
    unpack_correct,
    without_correct,
)


def test_kshot_subsets_are_stratified_nested_and_seeded():
    labels = np.repeat(np.arange(4), [30, 12, 20, 7])
    subsets = kshot_subsets(labels, (1, 5, 10, None), seed=3)
    for shot, index in subsets.items():
        counts = np.bincount(labels[index], minlength=4)
        expected = np.bincount(labels) if shot is None else np.minimum(shot, np.bincount(labels))
        assert np.array_equal(counts, expected), shot
        assert len(np.unique(index)) == len(index)
    chain = [set(subsets[s]) for s in (1, 5, 10, None)]
    assert all(small <= big for small, big in zip(chain, chain[1:], strict=False))
    again = kshot_subsets(labels, (1, 5, 10, None), seed=3)
    other = kshot_subsets(labels, (1, 5, 10, None), seed=4)
    assert all(np.array_equal(subsets[s], again[s]) for s in subsets)
    assert not np.array_equal(subsets[5], other[5])


def test_summary_has_mean_and_seed_std():
    rows = [
        {"series": "a", "shot": "1", "seed": s, "accuracy": acc} for s, acc in enumerate([0.5, 0.7])
    ]
    rows.append({"series": "a", "shot": "all", "seed": 0, "accuracy": 0.9})
    summary = summarise(rows)["a"]
    assert summary["1"]["mean"] == pytest.approx(0.6)
    assert summary["1"]["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert summary["1"]["by_seed"] == {0: 0.5, 1: 0.7}
    assert summary["all"] == {"by_seed": {0: 0.9}, "mean": 0.9, "std": 0.0}  # one seed: no spread


def test_shot_labels():
    assert [shot_label(s) for s in (1, 25, None)] == ["1", "25", "all"]


def test_shots_come_back_from_json_in_curve_order_not_string_order(tmp_path):
    # JSON sorts keys as strings: "10" < "2" < "all". Curve order is 2, 10, all.
    rows = [
        {"series": "a", "shot": shot_label(shot), "seed": 0, "accuracy": acc}
        for shot, acc in ((2, 0.5), (10, 0.7), (None, 0.9))
    ]
    summary = {"series": summarise(rows), "comparisons": {"a_vs_b": {"2": 1, "10": 2, "all": 3}}}
    assert list(summary["series"]["a"]) == ["2", "10", "all"]
    io.write_json(tmp_path / "summary.json", summary)
    assert list(io.read_json(tmp_path / "summary.json")["series"]["a"]) == ["10", "2", "all"]
    back = read_summary(tmp_path / "summary.json")
    assert list(back["series"]["a"]) == ["2", "10", "all"]
    assert list(back["comparisons"]["a_vs_b"]) == ["2", "10", "all"]
    assert back["series"]["a"]["10"]["mean"] == 0.7


def test_the_headline_is_the_largest_shot_all_when_present():
    assert headline({"10": "ten", "25": "twenty-five", "5": "five", "all": "all"}) == "all"
    assert headline({"10": "ten", "25": "twenty-five", "5": "five"}) == "twenty-five"  # not "5"
    assert list(in_curve_order({"all": 0, "25": 0, "5": 0, "10": 0, "1": 0})) == [
        "1",
        "5",
        "10",
        "25",
        "all",
    ]
    assert curve_shots((None, 10, 2)) == (2, 10, None)


def test_correctness_packs_to_hex_and_back():
    correct = np.random.default_rng(0).random(1001) < 0.7
    text = pack_correct(correct)
    assert len(text) == 2 * 126  # 1001 bits in 126 bytes
    np.testing.assert_array_equal(unpack_correct(text, 1001), correct)


def test_the_correctness_record_keeps_single_fit_shots_only():
    right, wrong = np.array([True, False, True]), np.array([False, False, True])
    rows = [
        {"series": "a", "shot": "1", "seed": s, "subset": f"s{s}", "correct": right} for s in (0, 1)
    ] + [{"series": "a", "shot": "all", "seed": s, "subset": "x", "correct": wrong} for s in (0, 1)]
    record = single_fit_correct(rows)
    assert record == {"n_test": 3, "correct": {"a": {"all": pack_correct(wrong)}}}
    # fine-tuning seeds on one subset are fits of their own: nothing single to keep
    tuned = [{**row, "train_seed": 42 + row["seed"]} for row in rows]
    assert single_fit_correct(tuned) == {"n_test": 0, "correct": {}}
    assert all("correct" not in row for row in without_correct(rows))
