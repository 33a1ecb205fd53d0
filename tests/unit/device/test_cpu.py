from transferlab.device.cpu import CPU_PINS, apply_cpu_pins


def test_pins_fill_what_the_environment_leaves_unset_and_keep_the_rest():
    environ = {"OMP_NUM_THREADS": "16"}  # a user who traded bit-identity for speed
    applied = apply_cpu_pins(environ)
    assert applied["OMP_NUM_THREADS"] == "16"
    assert applied["ATEN_CPU_CAPABILITY"] == "avx2" and applied["DNNL_MAX_CPU_ISA"] == "AVX2"
    assert set(applied) == set(CPU_PINS) and environ == applied


def test_a_stage_process_runs_pinned_before_torch_is_imported():
    import subprocess
    import sys

    from tests.conftest import REPO

    code = (
        "import os, sys; os.environ.pop('ATEN_CPU_CAPABILITY', None); import stages, torch; "
        "print(torch.backends.cpu.get_cpu_capability(), os.environ['DNNL_MAX_CPU_ISA'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["AVX2", "AVX2"]
