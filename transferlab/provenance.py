"""What a result came from: code, params, data, model, seeds, library versions and machine.

Written beside the report by the evaluate stage and logged on the pipeline's MLflow parent
run, so a number in git or in MLflow says what produced it. Imports neither dvc nor mlflow:
their versions are read from the installed packages' metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from transferlab.params import Params, to_dict

PACKAGES = ("torch", "timm", "numpy", "scikit-learn", "dvc", "mlflow")
# What decides results: a difference from the commit in any of these makes a run 'dirty'. The
# pipeline's own outputs (dvc.lock, reports/) change during every run and are not counted.
CODE = ("stages", "transferlab", "params.yaml", "dvc.yaml", "pyproject.toml")


def repo_root() -> Path:
    """The DVC repository the stages run for: DVC_ROOT (DVC sets it; in a queued experiment's
    temporary copy it names the main repository), else the working directory."""
    return Path(os.environ.get("DVC_ROOT", ".")).resolve()


def git_state() -> dict[str, str]:
    """The code's git commit and whether CODE differs from it ('true'/'false'); 'unknown' for
    both outside a git repository, or without git or GitPython."""
    try:
        import git

        repo = git.Repo(repo_root(), search_parent_directories=True)
        commit = repo.head.commit.hexsha
        present = [s for s in CODE if (Path(repo.working_tree_dir) / s).exists()]
        dirty = any(repo.is_dirty(untracked_files=False, path=source) for source in present)
    except Exception:  # no git binary, no repository, no commit yet, or GitPython missing
        return {"commit": "unknown", "dirty": "unknown"}
    return {"commit": commit, "dirty": str(dirty).lower()}


def params_digest(params: Params) -> str:
    """sha256 of every param, in a canonical form: equal digests mean equal params."""
    canonical = json.dumps(to_dict(params), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def versions() -> dict[str, str]:
    """Python's and the key packages' versions ('not installed' where absent)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def cpu_model() -> str:
    """The CPU's model name where Linux tells it, else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_run(
    params: Params, *, git: dict[str, str], data_card: dict, extract_report: dict
) -> dict[str, Any]:
    """The provenance record of one pipeline result; `extract_report`: the studied (chosen)
    candidate's, which names its backbone."""
    import torch

    return {
        "git": git,
        "params_sha256": params_digest(params),
        "data": {
            "source": params.data.source,
            "path": params.data.path,
            "content_sha256": data_card["content"],
            "images": {split: part["total"] for split, part in data_card["splits"].items()},
            "classes": len(data_card["classes"]),
        },
        "backbone": {
            "key": extract_report["backbone"],
            "name": extract_report["model"],
            "weights": extract_report["weights"],
            "input_size": extract_report["input_size"],
            "feature_dim": extract_report["feature_dim"],
        },
        "seeds": {
            "data": params.data.seed,
            "backbone": params.backbone.seed,
            "finetune": params.finetune.seed,
            "curves": params.curves.seeds,
        },
        "versions": versions(),
        "device": {
            "extract": extract_report["device"],
            "cpu": cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine(),
        },
    }
