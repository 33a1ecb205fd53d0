"""`python -m bench`: one entry point whose sub-commands read params.yaml with `-S`
overrides, print usage without running anything, and run end to end on CPU at toy size
with dvc and mlflow unimportable, exactly as on the bare GPU box."""

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import cli
from tests.conftest import REPO, TINY_MODEL
from transferlab.errors import UserError
from transferlab.params import load_params

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
COMMANDS = tuple(cli.COMMANDS)
# Toy size for every run below: the tiny timm model at 32 px on 12 images per class.
TOY = [
    f"backbones.lite0.name={TINY_MODEL}",
    "backbones.lite0.weights=none",
    "backbone.image_size=32",
    "data.train_per_class=12",
    "data.test_per_class=12",
    "extract.batch_size=24",
    "probe.C_num=2",
    "finetune.epochs=1",
    "finetune.batch_size=16",
]


def blocked_env(tmp_path: Path, names: tuple[str, ...]) -> dict[str, str]:
    """An environment where importing any of `names` raises ImportError."""
    blocked = tmp_path / "blocked"
    for name in names:
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocked}{os.pathsep}{REPO}"}
    for name in names:
        probe = subprocess.run([sys.executable, "-c", f"import {name}"], env=env, cwd=REPO)
        assert probe.returncode != 0, f"{name} should be unimportable here"
    return env


def bench(*args: str, env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], env=env, cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.parametrize("command", [(), *((c,) for c in COMMANDS)])
def test_help_prints_usage_and_runs_nothing(tmp_path, command):
    # torch and timm blocked too: --help must not even load what a measurement needs.
    env = blocked_env(tmp_path, ("torch", "timm", "dvc", "mlflow"))
    out = tmp_path / "out.json"
    extra = ["--out", str(out)] if command else []
    done = bench(*command, *extra, "--help", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m bench {' '.join(command)}".rstrip())
    if command:
        assert "-S KEY=VALUE" in done.stdout and "--device" in done.stdout
    else:
        assert all(c in done.stdout for c in COMMANDS)
    assert list(tmp_path.iterdir()) == [tmp_path / "blocked"]  # nothing written


def test_no_command_prints_usage_and_fails(tmp_path):
    done = bench(env=blocked_env(tmp_path, ("torch",)))
    assert done.returncode == 2
    assert "usage: python -m bench" in done.stderr and "COMMAND" in done.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_no_flag_default_repeats_a_param(command):
    # params.yaml is the only source of defaults: unset flags are empty, and the params
    # a sub-command runs with are params.yaml's.
    args = cli.parse_args([command])
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "out", "params")}
    assert all(v in (None, False, []) for v in flags.values()), flags
    assert cli.configure(args) == load_params(REPO / "params.yaml")


def test_overrides_are_dvc_style_and_device_sets_every_section():
    args = cli.parse_args(
        ["pipeline", "-S", "finetune.epochs=7", "-S", "data.train_per_class=null"]
        + ["-S", "probe.C_min=3e-4", "-S", "extract.device=cuda", "--device", "cpu"]
    )
    params = cli.configure(args)
    assert params.finetune.epochs == 7
    assert params.data.train_per_class is None
    assert params.probe.C_min == 3e-4  # a float, as `dvc exp run -S` reads it
    # --device wins over an earlier -S and reaches every section with a device.
    assert {params.extract.device, params.probe.device, params.finetune.device} == {"cpu"}
    with pytest.raises(UserError, match="finetune.epochz"):
        cli.configure(cli.parse_args(["speed", "-S", "finetune.epochz=1"]))


def test_full_data_configuration_is_valid_params():
    # Users pass bench/full_data.txt to `dvc exp run -S`, the device scripts to dvc and to
    # every sub-command: each line must be an override params.yaml accepts.
    text = (REPO / "bench" / "full_data.txt").read_text()
    lines = [kv for kv in text.splitlines() if kv and kv[0] != "#"]
    params = load_params(REPO / "params.yaml", lines)
    assert params.data.train_per_class is None and params.backbone.image_size is None
    assert params.data.test_per_class is None  # the whole test split, as the GPU run reports
    assert params.finetune.random_erase == 0.25 and params.finetune.epochs == 8


def test_speed_sizes_are_the_ones_the_command_line_offers():
    from bench import speed

    assert set(speed.SIZES) == set(cli.SIZES)


@pytest.mark.slow
def test_gpu_script_runs_speed_and_pipeline_without_dvc_or_mlflow(tmp_path):
    env = {
        **blocked_env(tmp_path, ("dvc", "mlflow")),
        "OUT": str(tmp_path / "out"),
        "FMNIST": FASHION_MNIST,
        "PYTHON": sys.executable,
        "SIZE": "tiny",
    }
    # After the script's full-data -S (8 epochs, batches 512 and 128) and its 45-value
    # probe grid: later ones win.
    overrides = [arg for kv in TOY for arg in ("-S", kv)]
    done = subprocess.run(
        ["bash", "bench/device/gpu_run.sh", *overrides, "--device", "cpu"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    speed = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert speed["device"] == "cpu" and speed["mode"] == "tiny"
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
        assert speed[section][key] > 0, (section, key)
    assert 0 <= speed["probe"]["accuracy"] <= 1 and 0 <= speed["probe"]["sklearn_accuracy"] <= 1
    assert speed["probe"]["grid_size"] == 2 and speed["probe"]["max_iter"] == 200
    assert "probe fit s" in done.stdout  # speed's table

    pipeline = json.loads((tmp_path / "out" / "pipeline.json").read_text())
    assert pipeline["input_size"] == 32
    assert pipeline["images"] == {"train": 110, "val": 10, "test": 120}  # prepared as prepare does
    for method in ("probe", "knn", "full", "scratch", "lpft"):
        assert 0 <= pipeline[method]["accuracy"] <= 1
        assert {"macro_f1", "ece"} <= set(pipeline[method])  # method_metrics, as evaluate scores
    # finetune.from_probe too: LP-FT starts from this run's own probe head, BatchNorm frozen
    assert pipeline["lpft"]["head"] == "probe" and pipeline["lpft"]["bn"] == "frozen"
    assert pipeline["lpft"]["history"][0]["epoch"] == 0
    expected = {"prepare", "extract", "probe", "knn", "scores", "rank", "full", "scratch", "lpft"}
    assert set(pipeline["elapsed_s"]) == expected
    # Both measured the same configuration: the full-data file's, then ours.
    assert speed["extract"]["batch_size"] == pipeline["extract"]["batch_size"] == 24
    assert speed["finetune"]["batch_size"] == pipeline["finetune"]["batch_size"] == 16
    assert pipeline["finetune"]["epochs"] == 1
    assert pipeline["finetune"]["random_erase"] == 0.25  # bench/full_data.txt's, not overridden
    assert done.stdout.strip().splitlines()[-1].startswith("total")


@pytest.mark.slow
def test_variation_reports_identical_cpu_runs(tmp_path, capsys):
    out = tmp_path / "v.json"
    overrides = [arg for kv in TOY for arg in ("-S", kv)]
    report = cli.main(["variation", *overrides, "--device", "cpu", "--out", str(out)])
    # The stages are deterministic on CPU: two identical runs agree exactly.
    assert report["extract_identical"] and report["extract_max_abs_diff"] == 0.0
    assert report["finetune_strategy"] == "full"  # the first of finetune.strategies
    assert report["finetune_max_abs_weight_diff"] == 0.0
    assert report["finetune_predictions_differing"] == 0
    assert report["images"]["test"] == 120 and report["input_size"] == 32
    assert json.loads(out.read_text()) == json.loads(capsys.readouterr().out)


def test_every_stage_exposes_the_run_that_its_main_and_the_bench_call():

    for path in sorted((REPO / "stages").glob("*.py")):
        if path.stem in ("__init__", "validate"):  # validate records nothing: no recorder
            continue
        module = importlib.import_module(f"stages.{path.stem}")
        assert list(inspect.signature(module.run).parameters)[:2] == ["params", "recorder"]
        assert "run(params, recorder" in inspect.getsource(module.main), path.stem


def test_the_bench_pipeline_is_the_stages_in_dvc_order_with_no_wiring_of_its_own():
    from bench import pipeline

    params = pipeline.alone(load_params(REPO / "params.yaml"))
    assert list(params.backbones) == ["lite0"] and params.select.top_k == 1
    names = [name for name, _ in pipeline.steps(params)]
    assert names == ["extract", "probe", "knn", "scores", "rank", *params.finetune.runs]
    tree = ast.parse((REPO / "bench" / "pipeline.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    # the stages' computations come through their run functions, never called directly
    assert not {m for m in imported if m and m.startswith(("transferlab.models", "bench.measure"))}
    assert "transferlab.evaluation.probes.probe" not in imported
