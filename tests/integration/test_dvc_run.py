"""bench/device/dvc_run.sh, the whole `dvc exp run` for a lent GPU box, driven as on the box:
a tree without .git, `stash` in one call, the run in the next. dvc itself is a carried stub
that records how it was called (the real `dvc exp run -S` is tested in test_sharing.py):
what is tested here is the script, not dvc."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.conftest import copy_repo

FULL_DATA = REPO / "bench" / "full_data.txt"
STUB_DVC = """\
import json, shutil, subprocess, sys
from pathlib import Path

git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True)
Path("stub_dvc.json").write_text(json.dumps({
    "argv": sys.argv[1:],
    "python_on_path": shutil.which("python"),
    "committed": git("rev-parse", "HEAD").returncode == 0,
    "uncommitted": git("status", "--porcelain").stdout,
}))
Path("reports").mkdir(exist_ok=True)
Path("reports/metrics.json").write_text('{"full": {"accuracy": 0.5}}')
Path("reports/report.md").write_text("report\\n")
Path("dvc.lock").write_text("schema: '2.0'\\n")
print("stub dvc ran")
"""


def wheels(tmp_path: Path, **packages: dict[str, str]) -> dict[str, Path]:
    """One wheel per package {name: {module file: text}}, built in a single pip call."""
    sources = []
    for name, files in packages.items():
        source = tmp_path / "src" / name
        for path, text in files.items():
            (source / path).parent.mkdir(parents=True, exist_ok=True)
            (source / path).write_text(text)
        (source / "pyproject.toml").write_text(
            f'[project]\nname = "{name}"\nversion = "1"\n[build-system]\nrequires = '
            '["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        )
        sources.append(str(source))
    built = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*build, "-w", str(built), *sources], check=True)
    return {name: next(built.glob(f"{name.replace('-', '_')}-*.whl")) for name in packages}


@pytest.mark.slow
def test_stash_then_run_in_a_tree_without_git(tmp_path):
    root = tmp_path / "tree"  # what the device receives: the working tree, no .git
    root.mkdir()
    copy_repo(root)
    built = wheels(
        tmp_path,
        weights={"weights_probe/__init__.py": ""},  # stands in for the weights' wheel
        dvc={"dvc/__init__.py": "", "dvc/__main__.py": STUB_DVC},
    )
    for folder, wheel in ((".whl", built["weights"]), (".dvcwhl", built["dvc"])):
        (root / folder).mkdir()
        shutil.copy(wheel, root / folder)
    (root / ".fmnist").mkdir()
    (root / ".fmnist" / "train-images-idx3-ubyte.gz").write_bytes(b"images")
    out = tmp_path / "out"
    env = {
        **os.environ,
        "OUT": str(out),
        "PYTHON": sys.executable,
        "SITE": str(tmp_path / "site"),
        "PATH": f"/usr/bin{os.pathsep}/bin",  # the script puts $PYTHON's folder first itself
    }
    env.pop("FMNIST", None)
    script = ["bash", "bench/device/dvc_run.sh"]

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*script, *args], cwd=root, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    # Call 1 carries the data and the weights; .device/ outlives the call on a warm machine.
    run("stash")
    assert (root / ".device" / "fmnist" / "train-images-idx3-ubyte.gz").read_bytes() == b"images"
    shutil.rmtree(root / ".fmnist")
    shutil.rmtree(root / ".whl")
    # Call 2 carries dvc's wheels; our -S come after the full-data configuration's.
    ours = ["finetune.epochs=1", "data.train_per_class=6"]
    done = run(*ours)

    stub = json.loads((root / "stub_dvc.json").read_text())
    full_data = [kv for kv in FULL_DATA.read_text().splitlines() if kv and kv[0] != "#"]
    expected = [*full_data, "data.path=.device/fmnist", *ours]  # later -S win in dvc
    assert stub["argv"] == ["exp", "run", *(arg for kv in expected for arg in ("-S", kv))]
    assert Path(stub["python_on_path"]).parent == Path(sys.executable).parent
    assert stub["committed"] and stub["uncommitted"] == ""  # `dvc exp run` needs a commit
    assert (tmp_path / "site" / "weights_probe" / "__init__.py").is_file()  # from the stash
    assert (tmp_path / "site" / "dvc" / "__main__.py").is_file()

    record = json.loads((out / "run.json").read_text())
    assert record["overrides"] == expected and record["seconds"] > 0
    assert done.stdout.strip().splitlines()[-1] == f"dvc exp run: {record['seconds']} s"
    assert "stub dvc ran" in (out / "dvc.log").read_text()
    assert json.loads((out / "metrics.json").read_text()) == {"full": {"accuracy": 0.5}}
    assert (out / "report.md").is_file() and (out / "dvc.lock").is_file()
