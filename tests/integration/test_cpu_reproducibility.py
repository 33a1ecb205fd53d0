"""Results are bit-identical across x86-64 machines with AVX2 and 2+ cores, because a stage
process computes with the CPU pins in force: a short fine-tune and a probe fit, run as a
stage process runs them (the `stages` package applies the pins before torch computes).

The limit of what one machine shows: it cannot compute as another CPU does. Capping this
machine's ISA gives the same bits as the pins by construction, so the test below checks what
can fail here, that the pins are in force (torch dispatches to AVX2, not this machine's
AVX-512, and runs 2 threads on a machine claiming 4), and the controls show that each pin
changes the bits. No AVX2-only CPU was available to run on: that a real one gives the same
bits is the claim these checks support, not one they prove."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def fingerprint(extra_env: dict[str, str], drop: tuple[str, ...] = (), line: int = -1) -> str:
    env = {k: v for k, v in os.environ.items() if k not in drop}
    for name in (
        "ATEN_CPU_CAPABILITY",
        "DNNL_MAX_CPU_ISA",
        "ONEDNN_MAX_CPU_ISA",
        "OMP_NUM_THREADS",
    ):
        env.pop(name, None)  # this process's own settings never leak into the run
    env.update(extra_env)
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.reproducibility_probe"],
        cwd=REPO,
        env={**env, "TQDM_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[line]


def computed_with(extra_env: dict[str, str]) -> str:
    """The probe's ISA and thread count, as `fingerprint` runs it."""
    return fingerprint(extra_env, line=-2)


def has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def test_a_stage_process_computes_with_the_pins_whatever_the_machine_offers():
    assert computed_with({}) == "AVX2 2"
    assert computed_with({"SIMULATED_CORES": "4"}) == "AVX2 2"  # not 4 threads


def test_without_the_pins_the_thread_count_changes_the_bits():
    pinned = fingerprint({"SIMULATED_CORES": "4"})
    unpinned = fingerprint({"SIMULATED_CORES": "4", "PROBE_SKIP_PINS": "1"})
    assert pinned != unpinned


@pytest.mark.skipif(not has_avx512(), reason="the native ISA is AVX2 already")
def test_without_the_pins_the_vector_isa_changes_the_bits():
    native = fingerprint({"PROBE_SKIP_PINS": "1", "OMP_NUM_THREADS": "2"})
    capped = fingerprint(
        {
            "PROBE_SKIP_PINS": "1",
            "OMP_NUM_THREADS": "2",
            "ATEN_CPU_CAPABILITY": "avx2",
            "DNNL_MAX_CPU_ISA": "AVX2",
        }
    )
    assert native != capped
