"""Decode each image file once, in parallel, into uint8 RGB rows of one .npy on disk.

The stored form of a user image, in this order:
1. EXIF orientation is applied (ImageOps.exif_transpose); only the first frame is read.
2. The mode becomes RGB by one rule per family (see to_rgb): transparency is composited
   over BACKGROUND; 16/32-bit integer grey is scaled by 255/65535; float grey is clipped to
   [0, 255]; CMYK uses Pillow's conversion, R = (255 - C)(255 - K) / 255; ICC profiles
   are ignored.
3. The shorter side is resized to `size` (bicubic, antialiased when shrinking) and the
   centre `size` x `size` square is kept, so no image is stretched.
The content hash is BLAKE2b-128 of the decoded RGB pixels after steps 1-2 (before
resizing), with their width and height: the same picture re-saved without metadata or
losslessly in another format matches; a lossy re-encode does not.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from transferlab.device import host

BACKGROUND = (255, 255, 255)  # white: what a transparent product shot or icon is shown on
WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
HASH_METHOD = "BLAKE2b-128 of the decoded RGB pixels and their size, before resizing"


class Rejected(Exception):
    """A file that cannot become an image; `reason` is a stable code, `detail` says more."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Decoded:
    """Per input file: reject reason (None when kept), detail, and content hash."""

    reasons: tuple[str | None, ...]
    details: tuple[str, ...]
    hashes: tuple[str | None, ...]


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB, one documented rule per mode family (module docstring)."""
    if image.mode in WIDE_GREY_MODES:
        wide = np.asarray(image).astype(np.int64).clip(0, 65535)
        grey = ((wide + 128) // 257).astype(np.uint8)  # round(v * 255 / 65535)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode == "F":
        grey = np.asarray(image, dtype=np.float64).clip(0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return composite(np.asarray(image.convert("RGBA")))
    return image.convert("RGB")


def composite(rgba: np.ndarray) -> Image.Image:
    """Alpha-composite (H, W, 4) uint8 over BACKGROUND, rounding to nearest."""
    alpha = rgba[..., 3:].astype(np.uint32)
    colour = rgba[..., :3].astype(np.uint32)
    background = np.array(BACKGROUND, dtype=np.uint32)
    mixed = (colour * alpha + background * (255 - alpha) + 127) // 255
    return Image.fromarray(mixed.astype(np.uint8), "RGB")


def fit_square(image: Image.Image, size: int) -> np.ndarray:
    """Resize the shorter side to `size`, keep the centre square: (size, size, 3) uint8."""
    width, height = image.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    if new != image.size:
        image = image.resize(new, Image.Resampling.BICUBIC)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def content_hash(pixels: np.ndarray) -> str:
    """BLAKE2b-128 of an image's shape and bytes."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(pixels.shape).encode())
    digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()


def decode_file(path: Path, size: int) -> tuple[np.ndarray, str]:
    """One file -> stored pixels and content hash; Rejected says why it cannot be used."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; Pillow reads it lazily
    except OSError as err:
        raise Rejected("unreadable", err.strerror or str(err)) from None
    with handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise Rejected("empty", "the file has 0 bytes")
        try:
            with Image.open(handle) as opened:
                opened.load()
                rgb = to_rgb(ImageOps.exif_transpose(opened))
        except UnidentifiedImageError:
            raise Rejected("not-an-image", "Pillow recognises no image format in it") from None
        except Image.DecompressionBombError as err:
            raise Rejected("too-large", str(err)) from None
        except MemoryError:
            raise
        except Exception as err:  # noqa: BLE001 - any decoder failure is recorded, never fatal
            reason = "truncated" if "truncat" in str(err).lower() else "corrupt"
            raise Rejected(reason, f"{type(err).__name__}: {err}") from None
    pixels = np.asarray(rgb, dtype=np.uint8)
    return fit_square(rgb, size), content_hash(pixels)


def decode_all(
    paths: Sequence[Path], out_file: Path, size: int, *, workers: int | None = None
) -> Decoded:
    """Decode every path into row i of a preallocated (N, size, size, 3) uint8 .npy."""
    rows = np.lib.format.open_memmap(
        out_file, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3)
    )
    offset = rows.offset
    del rows  # workers write with pwrite; nothing here holds pixels
    workers = workers or host.usable_cpus()
    n = len(paths)
    chunk = max(1, min(256, -(-n // (4 * workers))))  # >= 4 chunks per worker balances load
    tasks = [
        (str(out_file), offset, size, [(i, str(paths[i])) for i in range(s, min(s + chunk, n))])
        for s in range(0, n, chunk)
    ]
    if workers == 1 or len(tasks) <= 1:
        results = [_decode_chunk(task) for task in tasks]
    else:
        # forkserver: workers start clean, inheriting no MLflow threads or locks.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context) as pool:
            results = list(pool.map(_decode_chunk, tasks))
    flat = sorted(item for chunk_result in results for item in chunk_result)
    return Decoded(
        reasons=tuple(r[1] for r in flat),
        details=tuple(r[2] for r in flat),
        hashes=tuple(r[3] for r in flat),
    )


def _decode_chunk(
    task: tuple[str, int, int, list[tuple[int, str]]],
) -> list[tuple[int, str | None, str, str | None]]:
    """Worker: decode a chunk of files and pwrite each row at its place in the .npy."""
    out_file, offset, size, items = task
    row_bytes = size * size * 3
    results: list[tuple[int, str | None, str, str | None]] = []
    fd = os.open(out_file, os.O_WRONLY)
    try:
        for index, path in items:
            try:
                pixels, digest = decode_file(Path(path), size)
            except Rejected as err:
                results.append((index, err.reason, err.detail, None))
                continue
            os.pwrite(fd, pixels.tobytes(), offset + index * row_bytes)
            results.append((index, None, "", digest))
    finally:
        os.close(fd)
    return results
