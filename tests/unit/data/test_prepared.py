import gzip
import shutil

import numpy as np
import pytest

from transferlab.data import fashion_mnist
from transferlab.data import prepared as data
from transferlab.errors import UserError
from tests.conftest import save_prepared, make_images

FMNIST = data.Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_parse_idx_round_trip():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(data.parse_idx(idx_bytes(array)), array)


def test_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist.read_fashion_mnist(tmp_path)


def test_wrong_checksum_is_rejected(tmp_path):
    for name in data.FASHION_MNIST_FILES:
        (tmp_path / name).write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2), np.uint8))))
    with pytest.raises(UserError, match="does not match the published Fashion-MNIST MD5"):
        fashion_mnist.read_fashion_mnist(tmp_path)


def test_not_gzip_is_rejected(tmp_path):
    for name in data.FASHION_MNIST_FILES:
        (tmp_path / name).write_bytes(b"not gzip")
    with pytest.raises(UserError, match="not a readable gzip"):
        fashion_mnist.read_fashion_mnist(tmp_path)


@pytest.mark.skipif(not FMNIST.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_reads_and_verifies(tmp_path):
    dataset = fashion_mnist.read_fashion_mnist(FMNIST)
    assert dataset.train.images.shape == (60000, 28, 28, 1)
    assert dataset.test.images.shape == (10000, 28, 28, 1)
    assert np.bincount(dataset.train.labels).tolist() == [6000] * 10
    assert dataset.classes[0] == "T-shirt/top" and dataset.classes[9] == "Ankle boot"
    # a recompressed copy (what Debian ships) is accepted by its payload checksum
    name = "t10k-labels-idx1-ubyte.gz"
    for other in data.FASHION_MNIST_FILES:
        shutil.copy(FMNIST / other, tmp_path / other)
    (tmp_path / name).write_bytes(gzip.compress(gzip.decompress((FMNIST / name).read_bytes()), 1))
    assert len(fashion_mnist.read_fashion_mnist(tmp_path).test) == 10000


def test_cap_per_class_is_seeded_and_capped():
    labels = np.repeat(np.arange(3), [10, 2, 7])
    kept = data.cap_per_class(labels, 4, seed=1)
    assert np.bincount(labels[kept]).tolist() == [4, 2, 4]
    np.testing.assert_array_equal(kept, data.cap_per_class(labels, 4, seed=1))
    assert len(data.cap_per_class(labels, None, seed=1)) == len(labels)


def test_stratified_split_holds_out_each_class():
    labels = np.repeat(np.arange(4), 20)
    keep, held = data.stratified_split(labels, 0.25, seed=0)
    assert np.bincount(labels[held]).tolist() == [5] * 4
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == 80


def test_stratified_split_names_too_small_class():
    labels = np.array([0] * 10 + [1])
    with pytest.raises(UserError, match="class 1 has 1 images"):
        data.stratified_split(labels, 0.2, seed=0)


def test_prepared_round_trip_and_card(tmp_path):
    splits = {"train": make_images(4), "val": make_images(1), "test": make_images(2)}
    classes = ("a", "b", "c")
    save_prepared(tmp_path, splits, classes)
    loaded = data.load_prepared(tmp_path, "train")
    np.testing.assert_array_equal(loaded.images, splits["train"].images)
    assert data.load_classes(tmp_path) == classes
    card = data.data_card(splits, classes)
    assert card["splits"]["test"]["per_class"] == {"a": 2, "b": 2, "c": 2}
    assert card["image_shape"] == [16, 16, 1]
