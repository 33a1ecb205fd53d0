"""The provenance record: what a result came from."""

import dataclasses

from transferlab import provenance
from transferlab.evaluation.rendering.report import provenance_lines

CARD = {
    "classes": ["a", "b", "c"],
    "splits": {"train": {"total": 9}, "test": {"total": 6}},
    "content": "c0ffee",
}
EXTRACT = {
    "backbone": "tiny",
    "model": "test_efficientnet",
    "weights": "none",
    "input_size": 32,
    "feature_dim": 40,
    "device": "cpu",
}
GIT = {"commit": "0123abc", "dirty": "true"}


def test_record_names_code_params_data_model_seeds_versions_and_device(params):
    record = provenance.describe_run(params, git=GIT, data_card=CARD, extract_report=EXTRACT)
    assert record["git"] == GIT
    assert record["data"]["images"] == {"train": 9, "test": 6} and record["data"]["classes"] == 3
    assert record["data"]["content_sha256"] == "c0ffee"  # which images, whatever their names
    assert record["backbone"] == {
        "key": "tiny",
        "name": "test_efficientnet",
        "weights": "none",
        "input_size": 32,
        "feature_dim": 40,
    }
    assert record["seeds"]["finetune"] == params.finetune.seed
    assert set(record["versions"]) == {"python", *provenance.PACKAGES}
    assert record["versions"]["torch"].split("+")[0].count(".") == 2
    assert record["device"]["extract"] == "cpu" and record["device"]["cpu_capability"]
    text = "\n".join(provenance_lines(record))
    assert "git commit 0123abc with uncommitted changes" in text
    assert f"sha256 {record['params_sha256']}" in text


def test_params_digest_changes_with_any_param_and_only_then(params):
    same = dataclasses.replace(params)
    changed = dataclasses.replace(params, knn=dataclasses.replace(params.knn, k=params.knn.k + 1))
    assert provenance.params_digest(same) == provenance.params_digest(params)
    assert provenance.params_digest(changed) != provenance.params_digest(params)


def test_git_state_is_dirty_only_where_the_code_differs_from_the_commit(tmp_path, monkeypatch):
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True)
        return done.stdout.strip()

    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert provenance.git_state() == {"commit": "unknown", "dirty": "unknown"}  # no repository
    git("init", "-q")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "metrics.json").write_text("{}\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    assert provenance.git_state() == {"commit": git("rev-parse", "HEAD"), "dirty": "false"}
    (tmp_path / "reports" / "metrics.json").write_text('{"a": 1}\n')  # an output: not code
    assert provenance.git_state()["dirty"] == "false"
    (tmp_path / "params.yaml").write_text("a: 2\n")
    assert provenance.git_state()["dirty"] == "true"
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "reports"))  # a folder inside the repository
    assert provenance.git_state()["dirty"] == "true"
