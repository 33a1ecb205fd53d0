import numpy as np

from transferlab.evaluation.curves import kshot_subsets, linear_probe_accuracy, raw_pixels, summarise
from tests.conftest import make_images


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


def test_linear_probe_on_k_shots_learns_separable_blobs():
    train, val, test = make_images(5), make_images(5, seed=1), make_images(10, seed=2)
    accuracy = linear_probe_accuracy(
        train_features=raw_pixels(train.images, 8),
        train_labels=train.labels,
        val_features=raw_pixels(val.images, 8),
        val_labels=val.labels,
        test_features=raw_pixels(test.images, 8),
        test_labels=test.labels,
        grid=np.logspace(-3, 1, 3),
        max_iter=200,
    )
    assert accuracy == 1.0
    assert raw_pixels(train.images, 8).shape == (15, 64)
    assert raw_pixels(train.images, 32).shape == (15, 256)  # never upsampled


def test_summary_has_mean_and_seed_std():
    rows = [
        {"series": "a", "shot": "1", "seed": s, "accuracy": acc} for s, acc in enumerate([0.5, 0.7])
    ]
    cell = summarise(rows)["a"]["1"]
    assert cell["mean"] == 0.6 and np.isclose(cell["std"], np.std([0.5, 0.7], ddof=1))
