import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from transferlab.data import fashion_mnist
from transferlab.errors import UserError

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_parse_idx_round_trip():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(fashion_mnist.parse_idx(idx_bytes(array)), array)


def test_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist.read_fashion_mnist(tmp_path)


def test_wrong_checksum_is_rejected(tmp_path):
    for name in fashion_mnist.FASHION_MNIST_FILES:
        (tmp_path / name).write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2), np.uint8))))
    with pytest.raises(UserError, match="does not match the published Fashion-MNIST MD5"):
        fashion_mnist.read_fashion_mnist(tmp_path)


def test_not_gzip_is_rejected(tmp_path):
    for name in fashion_mnist.FASHION_MNIST_FILES:
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
    for other in fashion_mnist.FASHION_MNIST_FILES:
        shutil.copy(FMNIST / other, tmp_path / other)
    (tmp_path / name).write_bytes(gzip.compress(gzip.decompress((FMNIST / name).read_bytes()), 1))
    assert len(fashion_mnist.read_fashion_mnist(tmp_path).test) == 10000
