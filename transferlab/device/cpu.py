"""CPU settings that make results bit-identical across x86-64 machines with AVX2 and two or
more cores. They must be in the environment before torch computes, so they are applied
where a stage process starts (stages/__init__.py), before torch is imported.

Measured on the 2-core AMD EPYC development machine (AVX-512): without them, fine-tuning
weights and the probe's coefficients change with the vector ISA that ATen and oneDNN pick
(AVX-512 here, AVX2 elsewhere) and with the thread count (summation order); features do not.
With them, a simulated AVX2-only machine and a machine claiming more cores give the same
bits. Their cost there: fine-tuning about 32 % slower (oneDNN's AVX2 convolutions), and
extraction about 14 % slower (docs/benchmarks.md). An environment that sets any of these
variables itself keeps its own value: export them to trade bit-identity for speed.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

CPU_PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own vector kernels
    "DNNL_MAX_CPU_ISA": "AVX2",  # oneDNN (mkldnn): convolutions and matrix products on CPU
    "OMP_NUM_THREADS": "2",  # summation order follows the thread count; also OpenBLAS's
}


def apply_cpu_pins(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set each pin the environment does not already set; returns the values in force."""
    for name, value in CPU_PINS.items():
        environ.setdefault(name, value)
    return {name: environ[name] for name in CPU_PINS}
