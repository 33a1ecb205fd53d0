import numpy as np
import pytest

from transferlab.evaluation.kshot import kshot_subsets, shot_label, summarise


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
