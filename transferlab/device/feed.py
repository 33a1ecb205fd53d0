"""uint8 arrays to the device: resident when they fit, otherwise streamed with overlapped copies.

Images stay uint8 until they are on the device (4x fewer bytes than float32 to move);
resizing, normalising and augmenting happen there, in batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from transferlab.device import host

RESIDENT_FRACTION = 0.25  # of free device memory; the rest is for activations and weights


def setup_device(device: torch.device) -> None:
    """Process-wide speed settings: cudnn autotuning on CUDA, no CPU thread over-subscription."""
    if device.type == "cuda":
        # Every batch has the same shape (extraction pads, training drops the ragged batch),
        # so autotuning runs once per shape and pays for itself within a few batches.
        torch.backends.cudnn.benchmark = True
    else:
        cores = host.usable_cpus()
        if torch.get_num_threads() > cores:  # containers often allow fewer CPUs than exist
            torch.set_num_threads(cores)


def resident(array: np.ndarray, device: torch.device) -> torch.Tensor | None:
    """The whole array on a CUDA device when it fits comfortably, else None."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    if array.nbytes > free * RESIDENT_FRACTION:
        return None
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def stream(
    take: Callable[[int], np.ndarray], count: int, device: torch.device
) -> Iterator[torch.Tensor]:
    """Yield take(i) for i < count as tensors on `device`.

    On CUDA the next batch is gathered into pinned memory and copied on a side stream while
    the caller's kernels for the current batch run, so the copy costs no compute time.
    """
    if device.type != "cuda":
        for i in range(count):
            # Slices of a memory-mapped split are read-only, and torch warns on wrapping
            # read-only memory: copied then (one batch is small beside the model's work).
            yield torch.from_numpy(np.require(take(i), requirements=["C", "W"]))
        return
    compute = torch.cuda.current_stream(device)
    copier = torch.cuda.Stream(device)

    def issue(i: int) -> tuple[torch.Tensor, torch.cuda.Event]:
        pinned = torch.from_numpy(np.ascontiguousarray(take(i))).pin_memory()
        with torch.cuda.stream(copier):
            on_device = pinned.to(device, non_blocking=True)  # the host allocator keeps `pinned`
            done = torch.cuda.Event()  # alive until this copy has finished
            done.record(copier)
        return on_device, done

    pending = issue(0) if count else None
    for i in range(count):
        batch, done = pending
        pending = issue(i + 1) if i + 1 < count else None
        compute.wait_event(done)
        batch.record_stream(compute)  # allocated on the side stream, used on the compute one
        yield batch
