"""Fashion-MNIST from its four idx files, each verified against its published MD5 sum."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferlab.data.layout import LabelledImages
from transferlab.errors import UserError

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# MD5 sums of each file as published (.gz) and of its decompressed idx payload. Debian's
# dataset-fashion-mnist recompresses the archives, so its .gz sums differ while the
# payload matches upstream's; either sum identifies the real data.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    ),
    "train-labels-idx1-ubyte.gz": (
        "25c81989df183df01b3e8a0aad5dffbe",
        "9018921c3c673c538a1fc5bad174d6f9",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "bef4ecab320f06d8554ea6380940ec79",
        "8181f5470baa50b63fa0f6fddb340f0a",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "bb300cfdad3c16e7a12a480ee83cd310",
        "15d484375f8d13e6eb1aabb0c3f46965",
    ),
}
FASHION_MNIST_SIDE = 28  # every image is 28 x 28, one grey channel
FASHION_MNIST_HOWTO = (
    "install it with `sudo apt-get install dataset-fashion-mnist` "
    "(or point data.path at a folder holding the four idx .gz files)"
)


@dataclass(frozen=True)
class Dataset:
    """A source as read: a train pool, a test split and the class names."""

    train: LabelledImages
    test: LabelledImages
    classes: tuple[str, ...]


def read_fashion_mnist(root: Path) -> Dataset:
    """Read the four idx files, each verified against its published MD5 sum."""
    arrays = {
        name: _read_verified_idx(root / name, *sums) for name, sums in FASHION_MNIST_FILES.items()
    }
    return Dataset(
        train=LabelledImages(
            arrays["train-images-idx3-ubyte.gz"][..., None],  # (N, 28, 28, 1): one grey channel
            arrays["train-labels-idx1-ubyte.gz"].astype(np.int64),
        ),
        test=LabelledImages(
            arrays["t10k-images-idx3-ubyte.gz"][..., None],
            arrays["t10k-labels-idx1-ubyte.gz"].astype(np.int64),
        ),
        classes=FASHION_MNIST_CLASSES,
    )


def _read_verified_idx(path: Path, archive_md5: str, payload_md5: str) -> np.ndarray:
    """Parse one gzipped idx file after checking the archive's or the payload's MD5."""
    if not path.is_file():
        raise UserError(f"Fashion-MNIST file {path} is missing; {FASHION_MNIST_HOWTO}.")
    packed = path.read_bytes()
    try:
        raw = gzip.decompress(packed)
    except (OSError, EOFError) as err:
        raise UserError(
            f"{path} is not a readable gzip file ({err}); {FASHION_MNIST_HOWTO}."
        ) from None
    if (
        hashlib.md5(packed).hexdigest() != archive_md5
        and hashlib.md5(raw).hexdigest() != payload_md5
    ):
        raise UserError(
            f"{path} does not match the published Fashion-MNIST MD5 sum ({archive_md5}): "
            f"the file is corrupt or not Fashion-MNIST; reinstall it: {FASHION_MNIST_HOWTO}."
        )
    return parse_idx(raw)


def parse_idx(raw: bytes) -> np.ndarray:
    """Parse idx bytes (big-endian header: magic, then one uint32 per dim) into uint8."""
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
