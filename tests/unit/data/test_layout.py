import numpy as np
import pytest

from tests.conftest import make_images, save_prepared
from transferlab.data import curate, reports
from transferlab.data import layout as data
from transferlab.errors import UserError


def test_cap_per_class_is_seeded_and_capped():
    labels = np.repeat(np.arange(3), [10, 2, 7])
    kept = curate.cap_per_class(labels, 4, seed=1)
    assert np.bincount(labels[kept]).tolist() == [4, 2, 4]
    np.testing.assert_array_equal(kept, curate.cap_per_class(labels, 4, seed=1))
    assert len(curate.cap_per_class(labels, None, seed=1)) == len(labels)


def test_stratified_split_holds_out_each_class():
    labels = np.repeat(np.arange(4), 20)
    keep, held = curate.stratified_split(labels, 0.25, seed=0)
    assert np.bincount(labels[held]).tolist() == [5] * 4
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == 80


def test_stratified_split_names_too_small_class():
    labels = np.array([0] * 10 + [1])
    with pytest.raises(UserError, match="class 1 has 1 images"):
        curate.stratified_split(labels, 0.2, seed=0)


def test_prepared_round_trip_and_card(tmp_path):
    splits = {"train": make_images(4), "val": make_images(1), "test": make_images(2, seed=1)}
    classes = ("a", "b", "c")
    save_prepared(tmp_path, splits, classes)
    for split, part in splits.items():
        loaded = data.load_prepared(tmp_path, split)
        np.testing.assert_array_equal(loaded.images, part.images)
        np.testing.assert_array_equal(loaded.labels, part.labels)
    assert isinstance(data.load_prepared(tmp_path, "train").images, np.memmap)
    assert not isinstance(data.load_prepared(tmp_path, "train", mmap=False).images, np.memmap)
    assert data.load_classes(tmp_path) == classes
    card = reports.data_card(splits, classes)
    assert card["splits"]["test"]["per_class"] == {"a": 2, "b": 2, "c": 2}
    assert card["splits"]["train"]["total"] == 12
    assert card["image_shape"] == [16, 16, 1]


def test_missing_classes_say_which_stage_to_run(tmp_path):
    with pytest.raises(UserError, match="run `dvc repro prepare` first"):
        data.load_classes(tmp_path)


def test_features_round_trip(tmp_path):
    features = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    labels = np.array([0, 2, 1, 1, 0])
    data.save_features(tmp_path, "val", features, labels)
    loaded, loaded_labels = data.load_features(tmp_path, "val")
    np.testing.assert_array_equal(loaded, features)
    np.testing.assert_array_equal(loaded_labels, labels)


@pytest.mark.parametrize(("fraction", "smallest"), [(0.5, 2), (0.1, 6), (0.25, 3), (0.34, 2)])
def test_min_class_size_is_the_smallest_class_a_split_leaves_non_empty(fraction, smallest):
    assert curate.min_class_size(fraction) == smallest
    labels = np.array([0] * smallest + [1] * 20)
    keep, held = curate.stratified_split(labels, fraction, seed=0)
    assert set(labels[keep]) == set(labels[held]) == {0, 1}
    with pytest.raises(UserError, match=f"class 0 has {smallest - 1} images"):
        curate.stratified_split(labels[1:], fraction, seed=0)
