"""`dvc repro` checks all of params.yaml and the data folder before any stage runs."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.integration.conftest import Workspace, copy_repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("validate")
    copy_repo(root)
    (root / "dvc.lock").unlink(missing_ok=True)
    ws = Workspace(root)
    ws.run("git", "init", "-q")
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "copy")
    ws.dvc("repro", "validate")
    return ws


def edited(ws: Workspace, edit, *targets: str) -> subprocess.CompletedProcess:
    """`dvc repro [targets]` after `edit` changed the params mapping; params.yaml restored."""
    path = ws.root / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    edit(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        return ws.dvc("repro", *targets, check=False)
    finally:
        path.write_text(original)


def rename(section: str, key: str, typo: str):
    def edit(params: dict) -> None:
        params[section][typo] = params[section].pop(key)

    return edit


@pytest.mark.parametrize(
    ("section", "key", "typo"),
    [
        ("finetune", "epochs", "epochz"),
        ("curves", "shots", "shotz"),
        ("tracking", "required", "requird"),
        ("data", "seed", "sed"),
        ("verdict", "confidence", "confidense"),
    ],
)
def test_a_typo_in_any_section_fails_naming_the_key_before_any_stage(repo, section, key, typo):
    done = edited(repo, rename(section, key, typo))
    assert done.returncode != 0
    assert f"error: unknown key {section}.{typo}; did you mean {section}.{key}?" in done.stderr
    assert "Running stage 'prepare'" not in done.stdout


def test_a_misspelled_section_is_named(repo):
    done = edited(repo, lambda p: p.update(verdikt=p.pop("verdict")))
    assert "error: unknown key verdikt; did you mean verdict?" in done.stderr


def test_a_missing_data_folder_names_the_param_and_touches_no_output(repo):
    done = edited(repo, lambda p: p["data"].update(path="no/such/folder"))
    assert done.returncode != 0
    assert "error: data.path: no/such/folder does not exist" in done.stderr
    assert "Errno 2" not in done.stdout + done.stderr
    assert "Running stage 'prepare'" not in done.stdout


def test_a_valid_edit_reruns_validate_but_leaves_its_output_unchanged(repo):
    repo.dvc("repro", "validate")
    out = repo.root / "data" / "params.ok"
    before = out.read_bytes()
    done = edited(repo, lambda p: p["knn"].update(k=7), "validate")
    assert done.returncode == 0 and "Running stage 'validate'" in done.stdout
    assert out.read_bytes() == before


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def with_lora(**lora: object):
    def edit(params: dict) -> None:
        params["finetune"]["strategies"] = ["full", "lora", "scratch"]
        params["finetune"]["lora"].update(lora)

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (with_lora(rank=0), "error: finetune.lora.rank: got 0; allowed range [1, inf)."),
        (with_lora(rank=2.5), "error: finetune.lora.rank: expected int, got 2.5."),
        (
            with_lora(targets=["conv_pw", "conv_pwll"]),
            "error: finetune.lora.targets: 'conv_pwll' matches no 1x1 convolution of "
            "backbones.lite0 (tf_efficientnet_lite0); its 1x1 convolutions include "
            "blocks.0.0.conv_pw, blocks.1.0.conv_pwl, conv_head; a target is the end of such a "
            "name (here one of: conv_pw, conv_pwl, conv_head).",
        ),
        (
            lambda p: p["finetune"].update(strategies=["full", "lroa", "scratch"]),
            "error: finetune.strategies: got 'lroa'; allowed: full, freeze, llrd, norm, bitfit, "
            "lora, scratch.",
        ),
    ],
    ids=["rank-zero", "rank-fraction", "lora-target", "strategy-typo"],
)
def test_bad_parameter_efficient_settings_stop_in_validate_in_one_line(repo, edit, expected):
    done = edited(repo, edit, "validate")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    [line] = error_lines(done)
    assert line.startswith(expected + " Nothing else ran"), line
