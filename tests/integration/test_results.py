"""Reading and comparing results as a user does: what a knob reruns, `dvc exp show`,
`make results` on an experiment, and the report's conclusion and HTML page."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.test_pipeline import _changed_after

TIMING_KEYS = ("images_per_s", "peak_rss_mb", "seconds", "steady_s", "ready_s")


def test_a_knn_knob_never_refits_a_linear_probe_and_the_other_way_round(reproduced_copy):
    ws = reproduced_copy
    knn = _changed_after(ws, {"knn": {"k": 5}})
    assert "curves_knn" in knn and "curves_linear" not in knn
    linear = _changed_after(ws, {"probe": {"C_num": 4}})
    assert "curves_linear" in linear and "curves_knn" not in linear


def test_exp_show_only_changed_is_narrow_and_quality_only(reproduced_copy):
    ws = reproduced_copy
    ws.run("git", "add", "-A")  # the shared run as the user's baseline commit
    ws.run("git", "commit", "-qm", "baseline run")
    ws.dvc("exp", "run", "-n", "k5", "-S", "knn.k=5")
    # --md: unwrapped, one line a row. DVC adds a hash column for each changed dependency
    # path (data/methods, the data folder); the README's recipe drops them by their "/".
    shown = ws.dvc("exp", "show", "--only-changed", "--md").stdout
    header = shown.splitlines()[0]
    assert "knn.k" in header and not any(key in header for key in TIMING_KEYS)
    assert "params.yaml" not in header  # params show as params, not as a file hash
    table = ws.dvc("exp", "show", "--only-changed", "--md", "--drop", ".*/.*").stdout
    rows = [line for line in table.splitlines() if line.strip()]
    # Each changed verdict shows its gain, interval and p: wide until the comparison gets its
    # own headline layout (the issue on the answer first).
    assert max(len(line) for line in rows) <= 360, table
    columns = [c.strip() for c in rows[0].strip("|").split("|")][2:]
    assert columns[:5] + columns[-1:] == [
        "backbones.tiny.knn_accuracy",  # every candidate's kNN accuracy, so both
        "backbones.tiny_random.knn_accuracy",
        "knn.accuracy",
        "knn.ece",
        "knn.macro_f1",
        "knn.k",
    ], table
    # Between them only kNN verdicts: the gain against raw pixels and what moves with it
    # (its interval, its p); a kNN knob leaves the linear and fine-tuning verdicts alone.
    verdicts = columns[5:-1]
    assert "transfer.knn_vs_raw_pixels.gain" in verdicts, table
    knn_keys = {
        f"transfer.knn_vs_{reference}.{key}"
        for reference in ("raw_pixels", "random_init")
        for key in ("gain", "low", "high", "p", "verdict")
    }
    assert set(verdicts) <= knn_keys, table
    # the summary command reads the experiment by name, with deltas against HEAD
    done = subprocess.run(
        [sys.executable, "-m", "transferlab.summary", "k5"],
        cwd=ws.root,
        capture_output=True,
        text=True,
        env=ws.env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("k5, change against HEAD in brackets")
    assert "knn " in done.stdout and "(ready / first step / steady / write)" in done.stdout


def test_report_concludes_in_words_and_has_a_self_contained_page(reproduced):
    reports = reproduced.root / "reports"
    text = (reports / "report.md").read_text()
    conclusion = text.split("## Conclusion", 1)[1].split("##", 1)[0]
    verdicts = json.loads((reports / "metrics.json").read_text())["transfer"]
    assert conclusion.count("\n- ") == len(verdicts) + 2  # the backbones, the one studied
    assert "- Studied in depth (fine-tuning, curves, verdicts): tiny (" in conclusion
    assert "training the same architecture from scratch" in conclusion
    page = (reports / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') >= 5 and 'src="figures/' not in page


def test_the_parent_run_carries_params_final_metrics_and_provenance(reproduced):
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from transferlab import tracking

    client = MlflowClient(f"sqlite:///{reproduced.root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    runs = client.search_runs([experiment.experiment_id])
    (parent_id,) = {
        r.data.tags[MLFLOW_PARENT_RUN_ID] for r in runs if MLFLOW_PARENT_RUN_ID in r.data.tags
    }
    parent = client.get_run(parent_id)
    metrics = json.loads((reproduced.root / "reports" / "metrics.json").read_text())
    assert parent.data.metrics["full.accuracy"] == metrics["full"]["accuracy"]
    assert (
        parent.data.metrics["full_vs_scratch.gain"]
        == metrics["transfer"]["full_vs_scratch"]["gain"]
    )
    assert parent.data.params["knn.k"] == str(reproduced.params()["knn"]["k"])
    provenance = json.loads((reproduced.root / "reports" / "provenance.json").read_text())
    assert parent.data.tags["provenance.params_sha256"] == provenance["params_sha256"]
    assert parent.data.tags["provenance.git.commit"] == provenance["git"]["commit"]
