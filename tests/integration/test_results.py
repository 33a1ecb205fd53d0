"""Reading and comparing results as a user does: what a knob reruns, `dvc exp show`,
`make results` on an experiment, and the report's conclusion and HTML page."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.integration.test_pipeline import _changed_after, readers

TIMING_KEYS = ("images_per_s", "peak_rss_mb", "seconds", "steady_s", "ready_s")
WIDTH = 120  # a terminal's columns: every comparison the README gives fits


def test_a_knn_knob_never_refits_a_linear_probe_and_the_other_way_round(reproduced_copy):
    ws = reproduced_copy
    knn = _changed_after(ws, {"knn": {"k": 5}})
    assert "curves_knn" in knn and "curves_linear" not in knn
    linear = _changed_after(ws, {"probe": {"C_num": 4}})
    assert "curves_linear" in linear and "curves_knn" not in linear


def test_an_experiment_compares_in_120_columns_with_its_param_change_first(reproduced_copy):
    ws = reproduced_copy
    ws.run("git", "add", "-A")  # the shared run as the user's baseline commit
    ws.run("git", "commit", "-qm", "baseline run")
    ws.dvc("exp", "run", "-n", "k5", "-S", "knn.k=5")
    # The README's recipe, `make compare`: the changed param first, then the headline.
    lines = _module(ws, "transferlab.commands.compare").splitlines()
    assert max(map(len, lines)) <= WIDTH, lines
    header = lines[0].split()
    assert header[:3] == ["experiment", "knn.k", "recommended"], lines
    assert {"probe", "knn", "full", "lpft", "scratch"} <= set(header)
    (k5,) = [line.split() for line in lines if line.startswith("k5 ")]
    assert k5[1] == "5"
    # DVC's own views read only the headline file: narrow too, and quality only.
    shown = ws.dvc("exp", "show", "--only-changed", "--md", "--drop", ".*/.*").stdout
    rows = [line for line in shown.splitlines() if line.strip()]
    assert max(map(len, rows)) <= WIDTH and "knn.k" in rows[0], shown
    assert not any(key in rows[0] for key in TIMING_KEYS)
    assert "params.yaml" not in rows[0]  # params show as params, not as a file hash
    # The experiment ran kNN and what follows it; the rest kept the baseline run's timings,
    # which the timeline marks cached instead of passing them off as this run's.
    timeline = {t["stage"]: t for t in json.loads((ws.root / "reports/timeline.json").read_text())}
    assert not timeline["knn@tiny"]["cached"] and not timeline["evaluate"]["cached"]
    assert timeline["prepare"]["cached"] and timeline["finetune@full"]["cached"]
    # `make results EXP=k5`: the param change, every quality delta, and no time delta for a
    # stage the experiment did not run.
    text = _module(ws, "transferlab.commands.results", "k5")
    assert text.startswith("k5, change against HEAD in brackets\n\nUse ")
    assert "params changed against HEAD:\n  knn.k: 20 -> 5\n" in text
    assert max(map(len, text.splitlines())) <= WIDTH
    prepare = next(line for line in text.splitlines() if line.startswith("prepare "))
    assert "cached, measured earlier" in prepare and " s)" not in prepare


def _module(ws, module: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ws.root,
        capture_output=True,
        text=True,
        env=ws.env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_typo_stopped_by_validate_leaves_the_workspace_as_it_was(reproduced_copy):
    ws = reproduced_copy
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "baseline run")
    done = ws.dvc("exp", "run", "-S", "+knn.kk=5", check=False)
    assert done.returncode != 0
    assert "error: unknown key knn.kk" in done.stderr
    assert "git checkout params.yaml" in done.stderr  # how to go on
    assert (ws.root / "data" / "params.ok").is_file()  # validate's output is still there
    # `dvc status` lists the params change: the stages that read the knn section or the
    # whole file, and nothing else.
    status = json.loads(ws.dvc("status", "--json").stdout)
    assert set(status) <= readers(ws, "knn.kk") and "validate" in status, status
    dry = ws.dvc("repro", "--dry", check=False)
    assert "Errno" not in dry.stdout + dry.stderr


def test_report_concludes_in_words_and_has_a_self_contained_page(reproduced):
    reports = reproduced.root / "reports"
    text = (reports / "report.md").read_text()
    conclusion = text.split("## Conclusion", 1)[1].split("##", 1)[0]
    verdicts = json.loads((reports / "metrics.json").read_text())["transfer"]
    assert conclusion.count("\n- ") == len(verdicts) + 2  # the backbones, the one studied
    assert text.index("## Recommendation") < text.index("## Conclusion")
    assert "- Studied in depth (fine-tuning, curves, verdicts): tiny (" in conclusion
    assert "training the same architecture from scratch" in conclusion
    page = (reports / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') >= 5 and 'src="figures/' not in page


def test_the_parent_run_carries_params_final_metrics_and_provenance(reproduced):
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NOTE

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
    # The answer is on the run a user opens: its description, the report and the verdicts.
    report = (reproduced.root / "reports" / "report.md").read_text()
    recommendation = report.split("## Recommendation\n\n", 1)[1].split("\n", 1)[0]
    assert recommendation.startswith("Use ")
    assert parent.data.tags[MLFLOW_RUN_NOTE] == recommendation
    assert parent.data.tags["recommended"] == metrics["recommendation"]["method"]
    for name, v in metrics["transfer"].items():
        assert parent.data.tags[f"verdict.{name}"] == v["verdict"]
    files = {a.path for a in client.list_artifacts(parent_id, "report")}
    assert {"report/report.md", "report/report.html", "report/metrics.json"} <= files
    figures = {a.path for a in client.list_artifacts(parent_id, "report/figures")}
    assert "report/figures/timeline.png" in figures


def test_a_verdict_significant_alone_reads_inconclusive_in_the_report_once_corrected(
    reproduced_copy,
):
    """Planted test predictions: full fine-tuning right on 6 of the 50 test images that
    scratch gets wrong, and the same elsewhere: McNemar's p = 0.031 alone, positive at 95%,
    but one of the conclusions family's comparisons, so Holm makes it inconclusive. The
    evaluate stage reruns as dvc runs it, through the launcher."""
    ws = reproduced_copy
    methods, test = ws.root / ws.paths()["methods"], ws.root / ws.paths()["prepared"]
    labels = np.load(test / "test_labels.npy")
    classes = int(labels.max()) + 1
    right = np.eye(classes, dtype=np.float32)[labels]
    wrong = np.eye(classes, dtype=np.float32)[(labels + 1) % classes]
    scratch = np.where(np.arange(len(labels))[:, None] < 6, wrong, right)  # 6 wrong
    np.save(methods / "scratch" / "tiny" / "test_probs.npy", scratch)
    np.save(methods / "full" / "tiny" / "test_probs.npy", right)
    ws.run(sys.executable, "-m", "transferlab.runner.launch", "-m", "stages.evaluate")
    judged = json.loads((ws.root / ws.paths()["metrics"]).read_text())["transfer"][
        "full_vs_scratch"
    ]
    assert judged["p"] == pytest.approx(0.03125) and judged["p_adjusted"] > 0.05
    assert judged["verdict"] == "inconclusive" and judged["low"] <= 0
    assert judged["family"]["name"] == "conclusions" and judged["family"]["size"] >= 5
    report = (ws.root / ws.paths()["report"]).read_text()
    row = next(line for line in report.splitlines() if line.startswith("| full_vs_scratch |"))
    assert "**inconclusive**" in row and "| 0.031 |" in row
    ws.set_params({"verdict": {"adjust": "none"}})  # alone, it reads positive
    ws.run(sys.executable, "-m", "transferlab.runner.launch", "-m", "stages.evaluate")
    alone = json.loads((ws.root / ws.paths()["metrics"]).read_text())["transfer"]
    assert alone["full_vs_scratch"]["verdict"] == "positive"
