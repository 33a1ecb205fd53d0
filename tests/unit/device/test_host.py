import os
from pathlib import Path

import pytest
import torch

from transferlab.device import host
from transferlab.errors import UserError


def test_resolve_device():
    assert host.resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert host.resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            host.resolve_device("cuda")


def test_usable_cpus_follow_the_affinity(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert host.usable_cpus() == 3


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_peak_rss_is_the_kernels_high_water_mark_in_mib():
    status = Path("/proc/self/status").read_text()
    (line,) = [row for row in status.splitlines() if row.startswith("VmHWM:")]
    high_water_kib = int(line.split()[1])
    assert host.peak_rss_mb() == pytest.approx(high_water_kib / 1024, abs=8)
