"""The bench and the GPU script run end to end on CPU at toy size, with dvc and mlflow
unimportable, exactly as on the bare GPU box."""

import json
import os
import subprocess
import sys

import pytest

from bench import gpu
from bench import run as bench_run
from tests.conftest import REPO, TINY_MODEL

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@pytest.fixture
def no_dvc_no_mlflow(tmp_path) -> dict[str, str]:
    """An environment where `import dvc` and `import mlflow` raise ImportError."""
    blocked = tmp_path / "blocked"
    for name in ("dvc", "mlflow"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocked}{os.pathsep}{REPO}"}
    for name in ("dvc", "mlflow"):
        probe = subprocess.run([sys.executable, "-c", f"import {name}"], env=env, cwd=REPO)
        assert probe.returncode != 0, f"{name} should be unimportable here"
    return env


def test_no_flag_default_repeats_a_param():
    for args in (bench_run.parse_args([]), gpu.parse_args(["--out", "x"])):
        flags = {k: v for k, v in vars(args).items() if k not in ("out", "params")}
        assert all(v in (None, False, []) for v in flags.values()), flags


@pytest.mark.slow
def test_bench_runs_without_dvc_or_mlflow(tmp_path, no_dvc_no_mlflow):
    out = tmp_path / "bench.json"
    args = ["--tiny", "--backbone", TINY_MODEL, "--weights", "none", "--image-size", "32"]
    args += ["--grid-size", "2", "--data-path", FASHION_MNIST, "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        env=no_dvc_no_mlflow,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["device"] == "cpu"
    for section, key in [
        ("extract", "images_per_s"),
        ("extract", "ceiling_images_per_s"),
        ("extract", "ratio"),
        ("extract", "peak_rss_mb"),
        ("finetune", "images_per_s"),
        ("finetune", "ceiling_images_per_s"),
        ("probe", "fit_seconds"),
        ("probe", "sklearn_fit_seconds"),
        ("probe", "grid_seconds"),
        ("reference_loader", "images_per_s"),
    ]:
        assert report[section][key] > 0, (section, key)
    assert 0 <= report["probe"]["accuracy"] <= 1 and 0 <= report["probe"]["sklearn_accuracy"] <= 1
    assert report["probe"]["grid_size"] == 2
    assert "probe fit s" in done.stdout  # the table


@pytest.mark.slow
def test_gpu_script_runs_at_tiny_size(tmp_path, no_dvc_no_mlflow):
    env = {
        **no_dvc_no_mlflow,
        "OUT": str(tmp_path / "out"),
        "FMNIST": FASHION_MNIST,
        "PYTHON": sys.executable,
    }
    # After the script's full-data -S (8 epochs, batches 512 and 128): later ones win.
    args = ["--tiny", "-S", "finetune.epochs=1", "-S", "finetune.batch_size=16"]
    args += ["-S", "extract.batch_size=24", "--grid-size", "2"]
    done = subprocess.run(
        ["bash", "bench/gpu_run.sh", *args], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pipeline = json.loads((tmp_path / "out" / "pipeline.json").read_text())
    assert pipeline["input_size"] == gpu.TINY_SIZE
    for method in ("probe", "full", "scratch"):
        assert 0 <= pipeline[method]["accuracy"] <= 1
    # The bench measures at the batch sizes the pipeline core ran with.
    bench = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert bench["extract"]["batch_size"] == pipeline["extract"]["batch_size"] == 24
    assert bench["finetune"]["batch_size"] == pipeline["finetune"]["batch_size"] == 16
    assert pipeline["finetune"]["epochs"] == 1
    assert pipeline["finetune"]["random_erase"] == 0.25  # bench/full_data.txt's, not overridden
    assert done.stdout.strip().splitlines()[-1].startswith("total")


@pytest.mark.slow
def test_variation_reports_identical_cpu_runs(tmp_path):
    from bench import variation

    report = variation.main(
        [
            "--per-class",
            "6",
            "--image-size",
            "32",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "v.json"),
        ]
    )
    # The stages are deterministic on CPU: two identical runs agree exactly.
    assert report["extract_identical"] and report["extract_max_abs_diff"] == 0.0
    assert report["finetune_max_abs_weight_diff"] == 0.0
    assert report["finetune_predictions_differing"] == 0
    assert (tmp_path / "v.json").is_file()
