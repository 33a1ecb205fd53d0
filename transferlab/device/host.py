"""What this process may use: CPUs, memory, and the torch device."""

from __future__ import annotations

import os
import resource

import torch

from transferlab.errors import UserError


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
