"""What this process may use: CPUs, memory, and the torch device."""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator

import torch

from transferlab.errors import UserError


@contextlib.contextmanager
def one_thread(device: torch.device) -> Iterator[None]:
    """On CPU, torch on one thread inside the block; the caller's count is restored after.

    For work made of many small torch calls, each a parallel region whose second thread
    must be woken: on a shared machine, waiting for a descheduled thread costs more than
    the call. Measured on the 2-core development machine: augmenting 64 images took 31 ms
    on two threads under load and 12 ms on one; an L-BFGS probe iteration was up to 1.4x
    faster on two threads when nothing else ran, and 2x (54,000 images) to 30x (65) slower
    when another job held a core (docs/benchmarks.md, 2026-12-07). One thread also makes a
    reduction's summation order, hence its bits, independent of the core count. Model layers
    are large and keep every thread. Elsewhere than on CPU it changes nothing.
    """
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def usable_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity where the OS tells us)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resolve_device(choice: str) -> torch.device:
    """'auto' -> cuda when present, else cpu; asking for absent cuda is a UserError."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("device is 'cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'.")
    return torch.device(choice)
