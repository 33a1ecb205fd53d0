"""Small hostile image folders written with Pillow: one file per thing that goes wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 12  # side of every generated image; tests store at this size so pixels stay exact


def noise(seed: int, size: int = SIZE) -> Image.Image:
    """A distinct RGB image per seed (so no two are accidental duplicates)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def save_noise(path: Path, seed: int, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise(seed).save(path, format=fmt)
    return path


def truncated_jpeg(path: Path) -> Path:
    save_noise(path, 999, "JPEG")
    path.write_bytes(path.read_bytes()[:-200])
    return path


def odd_valid(folder: Path) -> dict[str, Image.Image]:
    """Valid images in unusual modes, written into folder; returns name -> source image."""
    folder.mkdir(parents=True, exist_ok=True)
    images = {
        "rgba.png": Image.new("RGBA", (SIZE, SIZE), (200, 100, 0, 128)),
        "cmyk.jpg": Image.new("CMYK", (SIZE, SIZE), (10, 20, 30, 40)),
        "grey16.png": Image.fromarray(np.full((SIZE, SIZE), 128 * 257, dtype=np.uint16)),
        "palette.png": noise(7).convert("P"),
        "la.png": Image.new("LA", (SIZE, SIZE), (100, 0)),
        "grey.bmp": Image.new("L", (SIZE, SIZE), 77),
    }
    for name, image in images.items():
        image.save(folder / name, **({"quality": 100} if name.endswith(".jpg") else {}))
    return images


def exif_rotated_jpeg(path: Path) -> Path:
    """Stored 2S wide x S high, left half black; EXIF 6 says display it turned 90 deg CW."""
    stored = np.full((SIZE, 2 * SIZE, 3), 255, dtype=np.uint8)
    stored[:, :SIZE] = 0
    exif = Image.Exif()
    exif[0x0112] = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    return path


def image_folder(root: Path, per_class: int = 8) -> Path:
    """Two healthy classes, one file per failure, odd modes, a label conflict, clutter."""
    for c, name in enumerate(("cat", "dog")):
        for i in range(per_class):
            # nested two levels deep for some: any depth below the class folder counts
            sub = "deep/er/" if i % 3 == 0 else ""
            save_noise(root / name / f"{sub}{i}.png", seed=100 * c + i)
    truncated_jpeg(root / "cat" / "truncated.jpg")
    (root / "cat" / "empty.jpg").write_bytes(b"")
    (root / "dog" / "notes.jpg").write_text("not an image\n")
    odd_valid(root / "dog" / "odd")
    exif_rotated_jpeg(root / "cat" / "rotated.jpg")
    save_noise(root / "cat" / "twin.png", seed=4242)  # the same picture under two labels
    save_noise(root / "dog" / "twin.png", seed=4242)
    save_noise(root / "cat" / ".hidden.png", seed=1)  # hidden: ignored, never listed
    save_noise(root / ".cache" / "x.png", seed=2)
    (root / "cat" / "labels.json").write_text("{}")
    (root / "README.txt").write_text("my photos\n")
    return root


# Real photos the project did not make: scikit-image's samples (a dev dependency), one class
# per photo, each image a crop of it at its own place and scale.
PHOTOS = {"cat": "chelsea", "coffee": "coffee", "rocket": "rocket"}


def photo_crops(name: str, count: int, *, seed: int, side: int) -> list[Image.Image]:
    """`count` square crops of scikit-image's sample photo `name`, 35-70 % of its shorter
    side, some mirrored, each resized to `side` px."""
    from skimage import data

    photo = getattr(data, name)()
    rng = np.random.default_rng(seed)
    height, width = photo.shape[:2]
    crops = []
    for _ in range(count):
        size = int(min(height, width) * rng.uniform(0.35, 0.7))
        top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
        crop = photo[top : top + size, left : left + size]
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        crops.append(Image.fromarray(np.ascontiguousarray(crop)).resize((side, side)))
    return crops


def photo_folder(root: Path, counts: dict[str, int], side: int = 96) -> Path:
    """An image folder of photo crops as a user would bring it: JPEGs per class, one
    truncated file, and one picture filed under two classes."""
    for c, (label, count) in enumerate(counts.items()):
        for i, crop in enumerate(photo_crops(PHOTOS[label], count, seed=c, side=side)):
            (root / label).mkdir(parents=True, exist_ok=True)
            crop.save(root / label / f"{label}_{i:03d}.jpg", quality=90)
    first = next(iter(counts))
    truncated = root / first / "broken.jpg"
    truncated.write_bytes((root / first / f"{first}_000.jpg").read_bytes()[:-400])
    second, third = list(counts)[1:3]
    (root / third / "also_here.jpg").write_bytes((root / second / f"{second}_001.jpg").read_bytes())
    return root
