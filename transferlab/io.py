"""Atomic writes and array storage: a killed stage never leaves a half-written output."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from transferlab.errors import UserError


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it into place only on success."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise UserError(f"cannot write {path}: {_why(err)}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; outputs follow the umask
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise UserError(f"cannot write {path}: {_why(err)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def current_umask() -> int:
    """The process's umask (read by setting it, then restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: Path | str, data: Any) -> None:
    """Write JSON atomically, with sorted keys so reruns are byte-identical. NaN and infinities
    are not JSON (strict parsers reject the file), so they raise UserError and write nothing."""
    try:
        text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False)
    except ValueError:
        found = _first_non_finite(data, "", ())
        if found is None:
            raise
        where, value = found
        raise UserError(
            f"cannot write {path}: {where or 'the value'} is {_JSON_NAMES[str(value)]}; "
            "this is a bug in the stage that computed it"
        ) from None
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


_JSON_NAMES = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # as json.dumps spells them


def _first_non_finite(data: Any, where: str, parents: tuple[int, ...]) -> tuple[str, float] | None:
    """The key path ('a.b[2].c') and value of the first NaN or infinity in file order."""
    if isinstance(data, float):
        return None if math.isfinite(data) else (where, data)
    if id(data) in parents:  # a cycle: json.dumps reports it
        return None
    if isinstance(data, dict):
        children = [(f"{where}.{key}" if where else str(key), v) for key, v in sorted(data.items())]
    elif isinstance(data, list | tuple):
        children = [(f"{where}[{i}]", v) for i, v in enumerate(data)]
    else:
        return None
    for child_where, child in children:
        found = _first_non_finite(child, child_where, (*parents, id(data)))
        if found is not None:
            return found
    return None


def read_json(path: Path | str) -> Any:
    return json.loads(Path(path).read_text())


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_array(path: Path | str, array: np.ndarray) -> None:
    """Save one .npy atomically; never pickled."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


def load_array(path: Path | str, *, mmap: bool = False) -> np.ndarray:
    """Load one .npy (memory-mapped on request, so large splits stay on disk)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing; run the stage that produces it (dvc repro).")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as err:  # object arrays are pickles: never executed from a data input
        raise UserError(
            f"{path} cannot be loaded safely ({err}); rerun the stage that made it."
        ) from None


def save_rows(path: Path | str, source: Path, index: np.ndarray) -> None:
    """Rows `index` of the .npy `source`, in order, as a new .npy, atomically and streaming:
    memory holds one row at a time, whatever the size of the source."""
    header = np.load(source, mmap_mode="r", allow_pickle=False)
    shape, dtype, offset = header.shape, header.dtype, header.offset
    del header
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    meta = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": (len(index), *shape[1:]),
    }
    with atomic_path(path) as tmp, open(source, "rb") as reader, open(tmp, "wb") as writer:
        np.lib.format.write_array_header_1_0(writer, meta)
        for i in index:
            writer.write(os.pread(reader.fileno(), row_bytes, offset + int(i) * row_bytes))


def split_file(directory: Path | str, split: str, kind: str) -> Path:
    """The one naming rule for per-split arrays: <dir>/<split>_<kind>.npy."""
    return Path(directory) / f"{split}_{kind}.npy"


CLASSES_FILE = "classes.json"  # beside the prepared splits: class names, index = label

# Inside each method's folder (paths.methods/<method>/): one name per artefact.
PREDICTIONS_FILE = "test_probs.npy"
RECORD_FILE = "record.json"
CHECKPOINT_FILE = "model.pt"
HEAD_FILE = "head.npz"  # the probe's fitted standardiser and linear head, for LP-FT
ADAPTER_FILE = "adapter.npz"  # lora: what it trained (adapters and head), apart from the backbone


def method_dir(root: Path | str, method: str, backbone: str) -> Path:
    """Where one method's outputs on one candidate backbone live: <root>/<method>/<backbone>."""
    return Path(root) / method / backbone


def backbone_file(folder: Path | str, backbone: str) -> Path:
    """One candidate backbone's JSON record in a per-backbone folder."""
    return Path(folder) / f"{backbone}.json"


def predictions_file(seed_index: int) -> str:
    """Test predictions of a method's n-th training seed: the first keeps the plain name."""
    return PREDICTIONS_FILE if seed_index == 0 else f"test_probs.seed{seed_index}.npy"


def save_arrays(path: Path | str, **arrays: np.ndarray) -> None:
    """Several named arrays in one .npz, atomically; never pickled."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{k: np.asarray(v) for k, v in arrays.items()})


def load_arrays(path: Path | str) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing; run the stage that produces it (dvc repro).")
    with np.load(path, allow_pickle=False) as stored:
        return {key: stored[key] for key in stored.files}


def save_checkpoint(path: Path | str, checkpoint: dict[str, Any]) -> None:
    """torch.save atomically; loadable with torch.load(weights_only=True)."""
    import torch

    # Through a Python file object, so a full disk surfaces as OSError (ENOSPC) rather than
    # torch's opaque "enforce fail at inline_container.cc" RuntimeError.
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(checkpoint, handle)


def _why(err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return "the disk is full; free space and rerun"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied; check the folder's permissions"
    return err.strerror or str(err)
