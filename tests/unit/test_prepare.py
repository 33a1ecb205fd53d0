import dataclasses

import numpy as np

from stages.data import Dataset
from stages.prepare import make_splits
from tests.conftest import make_images


def test_make_splits_caps_and_stratifies(params):
    dataset = Dataset(train=make_images(20), test=make_images(9, seed=1), classes=("a", "b", "c"))
    config = dataclasses.replace(
        params.data, train_per_class=10, test_per_class=5, val_fraction=0.2
    )
    splits = make_splits(dataset, config)
    assert np.bincount(splits["train"].labels).tolist() == [8, 8, 8]
    assert np.bincount(splits["val"].labels).tolist() == [2, 2, 2]
    assert np.bincount(splits["test"].labels).tolist() == [5, 5, 5]
    again = make_splits(dataset, config)
    np.testing.assert_array_equal(splits["val"].images, again["val"].images)
