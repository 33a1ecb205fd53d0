import numpy as np
import pytest

from transferlab import io
from transferlab.evaluation.curves.kshot import (
    CORRECT_FILE,
    SUMMARY_FILE,
    correct_record,
    curve_csv,
    curve_shots,
    headline,
    in_curve_order,
    kshot_subsets,
    pack_correct,
    read_rows,
    read_summary,
    shot_counts,
    shot_label,
    summarise,
    unpack_correct,
    unusable_shots,
    usable_shots,
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
    summary = {"series": summarise(rows)}
    assert list(summary["series"]["a"]) == ["2", "10", "all"]
    io.write_json(tmp_path / "summary.json", summary)
    assert list(io.read_json(tmp_path / "summary.json")["series"]["a"]) == ["10", "2", "all"]
    back = read_summary(tmp_path / "summary.json")
    assert list(back["series"]["a"]) == ["2", "10", "all"]
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


def test_every_row_comes_back_with_its_correctness_as_the_stage_measured_it(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        {"series": "a", "shot": shot, "seed": seed, "subset": f"{shot}{seed}", "accuracy": 0.5}
        for shot in ("1", "all")
        for seed in (0, 1)
    ]
    for row in rows:
        row["correct"] = rng.random(13) < 0.5
    record = correct_record(rows)
    assert record["n_test"] == 13 and len(record["correct"]) == len(rows)  # one per row
    io.write_json(
        tmp_path / SUMMARY_FILE, {"series": summarise(rows), "rows": without_correct(rows)}
    )
    io.write_json(tmp_path / CORRECT_FILE, record)
    back = read_rows(tmp_path)
    assert all("correct" not in row for row in without_correct(rows))
    assert [without_correct([r])[0] for r in back] == without_correct(rows)
    for row, restored in zip(rows, back, strict=True):
        np.testing.assert_array_equal(restored["correct"], row["correct"])
    assert correct_record([]) == {"n_test": 0, "correct": []}


def test_curve_tables_for_dvc_plots():
    train_labels = np.repeat([0, 1], [7, 4])
    assert shot_counts((1, 5, 10, None), train_labels) == [1, 5, 7, 7]
    cell = {"mean": 0.5, "std": 0.1}
    text = curve_csv({"a": {"1": cell, "all": {"mean": 0.9, "std": 0.0}}}, (1, None), train_labels)
    assert text.splitlines() == ["shots,a,a_std", "1,0.500000,0.100000", "7,0.900000,0.000000"]


def test_shot_counts_a_class_cannot_supply_are_judged_once_as_all():
    labels = np.repeat([0, 1, 2], [21, 22, 30])  # the smallest class has 21 train images
    shots = (1, 5, 10, 25, None)
    assert usable_shots(shots, labels) == (1, 5, 10, None)
    assert unusable_shots(shots, labels) == [25]
    assert usable_shots((21, 5), labels) == (5, None)  # 21 is all of the smallest class
    assert usable_shots((20, 5), labels) == (5, 20)  # below it: a k-shot subset still
