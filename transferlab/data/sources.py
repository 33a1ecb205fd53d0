"""List a user's images, from an image folder or a CSV manifest, before any is opened.

imagefolder: root/<class>/<any depth>/<image>; hidden files and folders are ignored.
csv: <root>/<manifest> with columns path,label and an optional split (train|val|test or
empty); paths are relative to the manifest's folder and must resolve inside root.
Files left out before decoding (another extension, outside any class folder, a symlinked
folder) are returned as `skipped`, so the rejects report names them too.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferlab.data.fashion_mnist import FASHION_MNIST_SIDE
from transferlab.errors import UserError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
GIVEN_SPLITS = ("train", "val", "test")
SHOWN = 5  # how many offending rows an error message lists


@dataclass(frozen=True)
class Listing:
    """Image files found in a source: what to open, what to call it, its label and split."""

    paths: tuple[Path, ...]  # what is opened
    files: tuple[str, ...]  # the name reports use: POSIX path relative to the root
    labels: np.ndarray  # int64 index into classes
    given_split: np.ndarray  # "train" | "val" | "test" | "" where the source says nothing
    classes: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (file, why) for files never opened


def stored_side(source: str, image_size: int) -> int:
    """The side prepare stores a source's images at: Fashion-MNIST's own 28 px, or
    data.image_size for a user's images (the shorter side resized, then centre-cropped)."""
    return FASHION_MNIST_SIDE if source == "fashion-mnist" else image_size


def list_imagefolder(root: Path) -> Listing:
    """Walk root/<class>/...; classes are the sorted names of root's visible folders."""
    if not root.is_dir():
        raise UserError(
            f"data.path {root} is not a folder; for data.source imagefolder point it at a "
            "folder laid out as <root>/<class>/<image>."
        )
    skipped: list[tuple[str, str]] = []
    class_dirs = []
    for entry in sorted(root.iterdir()):
        if _hidden(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            class_dirs.append(entry)
        else:
            skipped.append((entry.name, "not inside a class folder"))
    if not class_dirs:
        raise UserError(
            f"no class folders in {root}: expected {root}/<class>/<image>, one folder per "
            "class; move the images into class folders or check data.path."
        )
    found: list[tuple[str, int]] = []
    inside = root.resolve()
    for label, folder in enumerate(class_dirs):
        for directory, subdirs, names in os.walk(folder):
            here = Path(directory)
            for sub in sorted(subdirs):
                if not _hidden(sub) and (here / sub).is_symlink():
                    skipped.append((_rel(here / sub, root), "symlinked folder, not followed"))
            subdirs[:] = sorted(d for d in subdirs if not _hidden(d))
            for name in sorted(names):
                if _hidden(name):
                    continue
                if not (here / name).resolve().is_relative_to(inside):
                    # As a manifest may not, a symlink may not read files outside data.path.
                    skipped.append((_rel(here / name, root), "resolves outside data.path"))
                elif Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                    found.append((_rel(here / name, root), label))
                else:
                    skipped.append((_rel(here / name, root), "not an image file extension"))
    found.sort()
    return Listing(
        paths=tuple(root / name for name, _ in found),
        files=tuple(name for name, _ in found),
        labels=np.array([label for _, label in found], dtype=np.int64),
        given_split=np.full(len(found), "", dtype="<U5"),
        classes=tuple(d.name for d in class_dirs),
        skipped=tuple(sorted(skipped)),
    )


def manifest_rows(manifest: Path) -> list[tuple[int, dict]]:
    """(line number, row) of every data row, under a header naming path and label."""
    with manifest.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        if not {"path", "label"} <= set(columns):
            raise UserError(
                f"{manifest}: the header must name the columns path,label (and optionally "
                f"split); found {','.join(columns) or 'nothing'}."
            )
        reader.fieldnames = columns
        return list(enumerate(reader, start=2))


def read_manifest(root: Path, manifest_name: str) -> Listing:
    """Read <root>/<manifest_name>; every path must exist and resolve inside root."""
    if not root.is_dir():
        raise UserError(
            f"data.path {root} is not a folder; for data.source csv point it at the folder "
            "holding the manifest and the images."
        )
    root = root.resolve()
    manifest = safe_path(root, root, manifest_name, "data.manifest")
    if not manifest.is_file():
        raise UserError(
            f"manifest {root / manifest_name} not found; set data.manifest to the CSV's "
            f"path inside data.path ({root})."
        )
    rows = manifest_rows(manifest)
    entries: list[tuple[str, Path, str, str]] = []
    missing: list[str] = []
    for line, row in rows:
        where = f"{manifest.name} line {line}"
        path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        split = (row.get("split") or "").strip().lower()
        if not path or not label:
            raise UserError(f"{where}: path and label must both be filled in; fix that row.")
        if split not in ("", *GIVEN_SPLITS):
            raise UserError(
                f"{where}: split {split!r} is not one of train, val, test (or empty); fix it."
            )
        resolved = safe_path(root, manifest.parent, path, where)
        if not resolved.is_file():
            missing.append(f"{where}: {path}")
        entries.append((_rel(resolved, root), resolved, label, split))
    if missing:
        shown = "; ".join(missing[:SHOWN])
        if len(missing) > SHOWN:
            shown += f"; and {len(missing) - SHOWN} more"
        raise UserError(
            f"{len(missing)} file(s) listed in {manifest} do not exist ({shown}); "
            "fix the paths (relative to the manifest's folder) or remove those rows."
        )
    if not entries:
        raise UserError(f"{manifest} lists no images; add rows of path,label.")
    entries.sort()
    classes = tuple(sorted({label for _, _, label, _ in entries}))
    index = {name: i for i, name in enumerate(classes)}
    return Listing(
        paths=tuple(p for _, p, _, _ in entries),
        files=tuple(name for name, _, _, _ in entries),
        labels=np.array([index[label] for _, _, label, _ in entries], dtype=np.int64),
        given_split=np.array([split for *_, split in entries], dtype="<U5"),
        classes=classes,
        skipped=(),
    )


def safe_path(root: Path, base: Path, entry: str, where: str) -> Path:
    """base/entry resolved, refused unless relative and inside root (symlinks included)."""
    if Path(entry).is_absolute() or Path(entry).drive:
        raise UserError(
            f"{where}: {entry!r} is an absolute path; refused so that a manifest cannot read "
            f"arbitrary files. Write it relative to the manifest's folder ({base})."
        )
    resolved = (base / entry).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise UserError(
            f"{where}: {entry!r} resolves to {resolved}, outside the data folder {root}; "
            "refused so that a manifest cannot read arbitrary files. Move the file inside "
            "data.path and list it relative to the manifest."
        )
    return resolved


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
