"""bench/dvc_run.sh, the whole `dvc exp run` for a lent GPU box, on CPU at toy size."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.integration.conftest import BIN, SHRINK, copy_repo

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.slow
def test_script_runs_and_times_the_full_data_experiment_in_a_tree_without_git(tmp_path):
    root = tmp_path / "tree"  # what the device receives: the working tree, no .git
    root.mkdir()
    copy_repo(root)
    (root / "dvc.lock").unlink(missing_ok=True)
    # A carried wheel (stands in for dvc's): the script installs .dvcwhl/ before it runs.
    package = tmp_path / "carried"
    (package / "carried_probe").mkdir(parents=True)
    (package / "carried_probe" / "__init__.py").write_text("")
    (package / "pyproject.toml").write_text(
        '[project]\nname = "carried-probe"\nversion = "1"\n'
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*build, "-w", str(root / ".dvcwhl"), str(package)], check=True)
    out = tmp_path / "out"
    env = {
        **os.environ,
        "OUT": str(out),
        "PYTHON": sys.executable,
        "FMNIST": FASHION_MNIST,
        "SITE": str(tmp_path / "site"),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    # The toy size comes after the full-data configuration and wins where both set a key.
    toy = [f"{s}.{k}={json.dumps(v)}" for s, values in SHRINK.items() for k, v in values.items()]
    done = subprocess.run(
        ["bash", "bench/dvc_run.sh", *toy],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    run = json.loads((out / "run.json").read_text())
    assert run["seconds"] > 0
    assert f"data.path={FASHION_MNIST}" in run["overrides"]
    assert done.stdout.strip().splitlines()[-1] == f"dvc exp run: {run['seconds']} s"
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"probe", "knn", "full", "scratch", "lpft", "transfer"} <= set(metrics)
    assert (out / "report.md").read_text().strip()

    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["data"]["path"] == FASHION_MNIST
    assert params["finetune"]["random_erase"] == 0.25  # the full-data setting, kept
    assert params["finetune"]["epochs"] == SHRINK["finetune"]["epochs"]  # the toy's, later
    assert params["data"]["train_per_class"] == SHRINK["data"]["train_per_class"]
    lock = yaml.safe_load((out / "dvc.lock").read_text())
    assert lock["stages"]["finetune@full"]["params"]["params.yaml"]["finetune.random_erase"] == 0.25
    assert (tmp_path / "site" / "carried_probe" / "__init__.py").is_file()
    assert (root / "mlflow.db").is_file()  # MLflow recorded the stages, in its default store
