"""Results are bit-identical across x86-64 machines with AVX2 and 2+ cores: a short fine-tune
and a probe fit, run as a stage process runs them (the `stages` package applies the CPU pins
before torch is imported), on this machine, on a simulated AVX2-only machine, and on a
simulated machine with more cores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def fingerprint(extra_env: dict[str, str], drop: tuple[str, ...] = ()) -> str:
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
    return done.stdout.strip().splitlines()[-1]


def has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def test_pinned_results_match_on_an_avx2_machine_and_with_more_cores():
    here = fingerprint({})
    avx2_machine = fingerprint({"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"})
    more_cores = fingerprint({"SIMULATED_CORES": "4"})
    assert here == avx2_machine == more_cores


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
