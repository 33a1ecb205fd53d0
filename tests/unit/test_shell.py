"""The stage command wrapper: one-line errors, --help without running, a recovery hint."""

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

STAGES = sorted(p.stem for p in (REPO / "stages").glob("*.py") if p.stem != "__init__")


def run(*args: str, cwd=REPO, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, env=env
    )


HELP_ALL = """
import contextlib, io, json, runpy, sys
out = {}
for stage in sys.argv[1:]:
    sys.argv = [stage, "--help"]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        try:
            runpy.run_module(f"stages.{stage}", run_name="__main__", alter_sys=True)
            code = None
        except SystemExit as done:
            code = done.code
    out[stage] = [code, buffer.getvalue()]
print(json.dumps(out))
"""


def test_every_stage_answers_help_with_its_usage_and_runs_nothing(tmp_path):
    # In an empty folder: no params.yaml, so a stage that ran would fail.
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", HELP_ALL, *STAGES],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(answers) == STAGES and len(STAGES) >= 9
    for stage, (code, text) in answers.items():
        assert code == 0 and text.startswith(f"python -m stages.{stage}\n\nStage {stage}")
    assert not list(tmp_path.iterdir())


def test_a_user_error_under_dvc_is_one_line_and_says_how_to_recover(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["knn"]["kk"] = 5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")  # its vars: where outputs go
    env = {"PYTHONPATH": str(REPO), "DVC_STAGE": "knn", "PATH": "/usr/bin:/bin"}
    done = run("stages.knn", "lite0", cwd=tmp_path, env=env)
    assert done.returncode == 2
    first, hint = done.stderr.strip().splitlines()
    assert first.startswith("error: unknown key knn.kk; did you mean knn.k?")
    assert (
        hint.startswith("hint: DVC removed knn's previous outputs") and "dvc checkout knn" in hint
    )
    outside = run(
        "stages.knn", cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    )
    assert len(outside.stderr.strip().splitlines()) == 1  # no dvc, no hint


def test_help_into_a_closed_pipe_is_quiet(monkeypatch):
    from stages import rank

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "argv", [rank.__file__, "--help"])
    monkeypatch.setattr(sys, "stdout", ClosedPipe())  # `--help | head`: the reader has gone
    with pytest.raises(SystemExit) as done:
        rank.main()
    assert done.value.code == 0


def test_library_logs_go_to_stderr_as_it_is_when_they_come(monkeypatch):
    import io
    import logging

    from transferlab.shell import show_logs

    logger = logging.getLogger("transferlab")
    monkeypatch.setattr(logger, "handlers", [])
    show_logs()
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logging.getLogger("transferlab.test").warning("one")
    first.close()  # e.g. a test's captured stderr, gone after that test
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("transferlab.test").warning("two")
    assert second.getvalue() == "warning: two\n"
