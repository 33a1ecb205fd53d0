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
