"""The real `dvc repro` on a shrunk config: outputs, caching and MLflow grouping.

Tests that only read take the shared run (`reproduced`); tests that change params take a
private copy of it (`reproduced_copy`). Which stages a param reruns is derived from
dvc.yaml (the params each stage lists), so the tests check that DVC reruns exactly those
and that the stages that must never rerun are not among them.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID
from sklearn.metrics import f1_score

from tests.conftest import TINY_MODEL, dvc_stages
from tests.integration.conftest import Workspace
from transferlab import io, tracking
from transferlab.evaluation.curves import kshot
from transferlab.evaluation.statistics import family, verdict
from transferlab.params import load_params

pytestmark = pytest.mark.slow

# Stages every default pipeline has (dvc.yaml may add more); each MLflow stage tag, timing
# and report row carries the same name, the one `dvc repro` accepts.
CORE_STAGES = {
    "prepare",
    "extract@tiny",
    "extract@tiny_random",
    "extract_random",
    "probe@tiny",
    "knn@tiny",
    "scores@tiny",
    "rank",
    "finetune@full",
    "finetune@scratch",
    "finetune_from_probe@lpft",
    "curves_finetune",
    "evaluate",
}
EXTRACTION = {"prepare", "extract@tiny", "extract@tiny_random", "extract_random"}
PER_CANDIDATE = ("extract", "probe", "knn", "scores")


def pipeline(ws: Workspace) -> dict[str, dict]:
    """dvc.yaml's stages as DVC expands them with this workspace's params, by name."""
    return dvc_stages((ws.root / "dvc.yaml").read_text(), ws.params())


def readers(ws: Workspace, key: str) -> set[str]:
    """Stages that list param `key` (or its section), or depend on all of params.yaml."""
    found = set()
    for name, spec in pipeline(ws).items():
        listed = spec.get("params", [])
        every = {"params.yaml": None} in listed  # `- params.yaml:`: the whole file
        if every or any(
            isinstance(p, str) and (key == p or key.startswith(f"{p}.")) for p in listed
        ):
            found.add(name)
    return found


def test_stage_list_is_dvc_yaml_expanded_with_every_core_stage(reproduced):
    listed = reproduced.dvc("stage", "list").stdout.splitlines()
    names = {line.split()[0] for line in listed}
    assert names == set(pipeline(reproduced))
    assert names >= CORE_STAGES


def test_metrics_are_those_of_each_methods_test_predictions(reproduced):
    root = reproduced.root
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    methods = {"probe", "knn", "full", "lpft", "scratch"}
    assert set(metrics) == {*methods, "transfer", "backbones", "recommendation", "verdicts"}
    headline = json.loads((root / "reports" / "headline.json").read_text())
    assert headline["accuracy"] == {m: metrics[m]["accuracy"] for m in methods}
    assert headline["recommended"] == metrics["recommendation"]["method"] in methods
    labels = np.load(root / "data" / "prepared" / "test_labels.npy")
    assert len(labels) == 50  # 5 per class of the official test split
    for method in methods:
        values = metrics[method]
        folder = root / "data" / "methods" / method / "tiny"  # the chosen candidate
        probs = io.load_array(folder / io.PREDICTIONS_FILE)
        assert probs.shape == (50, 10) and np.allclose(probs.sum(1), 1, atol=1e-4)
        predicted = probs.argmax(1)
        assert values["accuracy"] == pytest.approx((predicted == labels).mean(), abs=1e-6)
        assert values["macro_f1"] == pytest.approx(
            f1_score(labels, predicted, average="macro"), abs=1e-6
        )
    assert set(metrics["transfer"]) == {
        "full_vs_scratch",
        "lpft_vs_scratch",
        "linear_vs_random_init",
        "linear_vs_raw_pixels",
        "knn_vs_random_init",
        "knn_vs_raw_pixels",
    }
    # A probe's verdict is its data-efficiency curve's at the largest shot count, judged by
    # evaluate on the rows and correctness its curve stage wrote.
    curve_verdicts = {}
    for probe in kshot.CURVE_PROBES:
        rows = kshot.read_rows(root / "reports" / "curves" / probe)
        pairs = verdict.probe_pairs((probe,))
        config = load_params(root / "params.yaml").verdict
        curve_verdicts.update(
            family.curve_comparisons(rows, pairs, config=config, transferred=True)
        )
    for name in ("linear_vs_random_init", "knn_vs_raw_pixels"):
        assert metrics["transfer"][name]["gain"] == curve_verdicts[name]["all"]["gain"]
        # judged once, in the conclusions family, and found there in the curve's cells too
        stated = metrics["verdicts"]["curves"][name]["all"]
        assert stated == metrics["transfer"][name] and stated["family"]["name"] == "conclusions"
    card = json.loads((root / "reports" / "data_card.json").read_text())
    assert card["splits"]["test"]["total"] == 50
    confusion = (root / "reports" / "plots" / "confusion" / "probe.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == 51


def test_probe_ran_the_backend_auto_chooses(reproduced):
    record = io.read_json(reproduced.root / "data/methods/probe/tiny" / io.RECORD_FILE)
    assert reproduced.params()["probe"]["backend"] == "auto"
    assert record["backend"] == "torch" and record["device"] == "cpu"
    assert len(record["val_accuracy_by_C"]) == 3  # the shrunk probe.C_num
    assert any(np.isclose(record["C"], c) for c in np.logspace(-6, 5, 3))


def test_mlflow_groups_every_stage_under_one_parent(reproduced):
    client = MlflowClient(f"sqlite:///{reproduced.root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    found = client.search_runs([experiment.experiment_id])
    children = [r for r in found if MLFLOW_PARENT_RUN_ID in r.data.tags]
    parents = {r.data.tags[MLFLOW_PARENT_RUN_ID] for r in children}
    assert len(parents) == 1
    stages = [r.data.tags["stage"] for r in children]
    assert len(stages) == len(set(stages))  # one run per stage
    assert set(stages) >= CORE_STAGES
    assert all(r.info.status == "FINISHED" for r in children)
    head = reproduced.run("git", "rev-parse", "HEAD").stdout.strip()
    assert {r.data.tags.get(MLFLOW_GIT_COMMIT) for r in children} == {head}


def test_dvc_repro_accepts_every_stage_name_the_report_timeline_and_mlflow_show(reproduced):
    client = MlflowClient(f"sqlite:///{reproduced.root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    runs = client.search_runs([experiment.experiment_id])
    tagged = {r.data.tags["stage"] for r in runs if MLFLOW_PARENT_RUN_ID in r.data.tags}
    tagged -= {r for r in tagged if r.startswith("backbone@")}  # per-candidate records, no stage
    timeline = io.read_json(reproduced.root / "reports" / "timeline.json")
    timed = {t["stage"] for t in timeline}
    report = (reproduced.root / "reports" / "report.md").read_text()
    table = report.split("## Where the time went", 1)[1].split("##", 1)[0]
    rows = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")}
    rows -= {"stage", "---"}
    assert "finetune_from_probe@lpft" in tagged & timed & rows
    names = sorted(tagged | timed | rows)
    done = reproduced.dvc("repro", "--dry", "--single-item", *names, check=False)
    assert done.returncode == 0, done.stderr


# An edit in one job's module, and the stages `dvc status` must then list: those whose outputs
# the edit can change, as the stages' import-derived deps say (prepare's outputs decide what
# follows it, which reruns only if they change).
EVERY_STAGE = {"every stage"}  # the CPU pins decide every stage's numbers
PLANTED_EDITS = {
    "report wording": (
        "transferlab/evaluation/rendering/words.py",
        '"within the noise, so not distinguishable."',
        '"within the noise: not distinguishable."',
        {"evaluate"},
    ),
    "a display name": (
        "transferlab/evaluation/rendering/words.py",
        '"full": "full fine-tuning"',
        '"full": "fine-tuning every layer"',
        {"evaluate"},
    ),
    "the Makefile's clean helper": (
        "transferlab/commands/clean.py",
        "        paths.methods,\n    )",
        "        paths.methods,  # every method's outputs\n    )",
        set(),
    ),
    "split drawing": (
        "transferlab/data/curate.py",
        "rng = np.random.default_rng(seed)\n    held",
        "rng = np.random.default_rng(seed + 1)\n    held",
        {"prepare"},
    ),
    "the selection, which only the reference extraction of all extractions reads": (
        "transferlab/selection.py",
        "each chosen candidate's probe head, for lpft",
        "each chosen candidate's probe head (LP-FT's start)",
        {
            "rank",
            "extract_random",
            "finetune@full",
            "finetune@scratch",
            "finetune_from_probe@lpft",
            "curves_linear",
            "curves_knn",
            "curves_finetune",
            "evaluate",
        },
    ),
    "a verdict rule": (
        "transferlab/evaluation/statistics/verdict.py",
        "POSITIVE if low > 0 else",
        "POSITIVE if low >= 0 else",
        {"rank", "evaluate"},  # the curve stages measure; evaluate judges their rows
    ),
    "a probe": (
        "transferlab/evaluation/probes/knn.py",
        '"""Weighted kNN on frozen features',
        '"""Weighted k-nearest neighbours on frozen features',
        {"knn@tiny", "knn@tiny_random", "curves_linear", "curves_knn"},  # one module: both curves
    ),
    "the fine-tuned curves": (
        "transferlab/evaluation/curves/finetune_curves.py",
        '"""Data-efficiency curves by fine-tuning',
        '"""Data-efficiency curves, by fine-tuning',
        {"curves_finetune"},
    ),
    "a transferability score": (
        "transferlab/evaluation/scores/transferability.py",
        '"""Transferability scores of frozen features',
        '"""Transferability scores of a backbone\'s frozen features',
        {"scores@tiny", "scores@tiny_random"},
    ),
    "the evaluate driver": (
        "transferlab/evaluation/drivers/evaluate.py",
        '"""The evaluate stage\'s work',
        '"""What the evaluate stage does',
        {"evaluate"},
    ),
    "the warm runner": (
        "transferlab/runner/warm.py",
        '"""The warm runner: a stage command',
        '"""The warm runner: each stage command',
        set(),  # the warm/cold byte-identity test holds it out of every stage's deps
    ),
    "the MLflow logging": (
        "transferlab/tracking.py",
        '"""MLflow tracking: the only module',
        '"""MLflow logging: the only module',
        set(),  # the tracked/untracked byte-identity test holds it out
    ),
    "the CPU pins": (
        "transferlab/device/cpu.py",
        '"""CPU settings that make results',
        '"""CPU settings, which make results',
        EVERY_STAGE,
    ),
}


def test_an_edit_reruns_only_the_stages_whose_outputs_it_can_change(reproduced_copy):
    ws = reproduced_copy
    assert not json.loads(ws.dvc("status", "--json").stdout)
    every = set(ws.dvc("stage", "list", "--name-only").stdout.split())
    for what, (name, old, new, expected) in PLANTED_EDITS.items():
        expected = every if expected is EVERY_STAGE else expected
        path = ws.root / name
        original = path.read_text()
        assert original.count(old) == 1, (what, old)
        path.write_text(original.replace(old, new))
        try:
            listed = set(json.loads(ws.dvc("status", "--json").stdout))
        finally:
            path.write_text(original)
        assert listed == expected, what


def test_second_repro_is_a_no_op(reproduced):
    done = reproduced.dvc("repro")
    assert "Running stage" not in done.stdout
    assert "up to date" in done.stdout


def test_probe_param_reruns_only_probe_and_what_reads_it(reproduced_copy):
    ws = reproduced_copy
    ws.set_params({"probe": {"C_num": 4}})
    status = set(json.loads(ws.dvc("status", "--json").stdout))
    assert status == readers(ws, "probe.C_num") and "probe@tiny" in status
    assert not status & (EXTRACTION | {"knn@tiny", "finetune@full", "finetune@scratch"})
    ran = _stages_run(ws.dvc("repro").stdout)
    assert status <= ran
    # downstream of the probe's output only: the ranking, LP-FT's head, and what reads them
    assert not ran & (EXTRACTION | {"knn@tiny", "finetune@full", "finetune@scratch"})
    record = io.read_json(ws.root / "data/methods/probe/tiny" / io.RECORD_FILE)
    assert len(record["val_accuracy_by_C"]) == 4  # the new grid was searched


def test_finetune_param_never_reruns_extract(reproduced_copy):
    status = _changed_after(reproduced_copy, {"finetune": {"epochs": 2}})
    assert status == readers(reproduced_copy, "finetune.epochs")
    assert {"finetune@full", "finetune@scratch", "finetune_from_probe@lpft"} <= status
    assert not status & (EXTRACTION | {"probe@tiny", "knn@tiny", "scores@tiny", "rank"})


def test_a_strategy_param_reruns_only_that_strategy(reproduced_copy):
    ws = reproduced_copy
    changed = _changed_after(ws, {"finetune": {"full": {"lr": 0.002}}})
    assert changed == readers(ws, "finetune.full.lr")
    # the strategy and the one stage of all k-shot fits, never the other strategies
    assert {"finetune@full", "curves_finetune"} <= changed
    assert not changed & {"finetune@scratch", "finetune_from_probe@lpft", "probe@tiny", "rank"}
    changed = _changed_after(ws, {"knn": {"k": 5}})
    assert changed == readers(ws, "knn.k") and "knn@tiny" in changed
    assert not changed & (EXTRACTION | {"probe@tiny", "finetune@full"})


def test_report_plots_and_figures(reproduced):
    root = reproduced.root / "reports"
    text = (root / "report.md").read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert any(link.endswith("data_efficiency.png") for link in links) and len(links) >= 5
    for link in links:
        assert (root / link).read_bytes()[:4] == b"\x89PNG"
    assert "Transfer verdicts" in text
    shown = json.loads(reproduced.dvc("plots", "show", "--json").stdout)["data"]
    assert len(shown) >= 3
    assert any("data_efficiency.csv" in name for name in shown)


def test_a_finetune_curve_reruns_only_its_stage_and_reaches_report_and_plots(reproduced_copy):
    ws = reproduced_copy
    ws.set_params({"curves": {"finetune": ["full"]}})
    status = set(json.loads(ws.dvc("status", "--json").stdout))
    assert status == readers(ws, "curves.finetune") and "curves_finetune" in status
    assert not status & (EXTRACTION | {"probe@tiny", "knn@tiny", "finetune@full"})
    assert _stages_run(ws.dvc("repro").stdout) == status | {"evaluate"}
    root = ws.root / "reports"
    text = (root / "report.md").read_text()
    assert "| finetune_full | " in text and "figures/data_efficiency.png" in text
    assert (root / "figures" / "data_efficiency.png").read_bytes()[:4] == b"\x89PNG"
    # the fine-tuning curve is drawn by DVC too (beside the probes'), with the summary's means
    shown = json.loads(ws.dvc("plots", "show", "--json").stdout)["data"]
    points = [
        value
        for plot in shown.values()
        for value in plot[0]["content"]["data"]["values"]
        if value.get("field") == "full" and "curves_finetune" in value["filename"]
    ]
    summary = io.read_json(root / "curves_finetune" / "summary.json")["series"]["finetune_full"]
    assert [float(p["full"]) for p in points] == pytest.approx(
        [summary[shot]["mean"] for shot in ("1", "2", "all")], abs=1e-6
    )


def _changed_after(ws: Workspace, changes: dict) -> set[str]:
    """The stages `dvc status` calls changed by `changes`; params.yaml is put back after."""
    original = (ws.root / "params.yaml").read_text()
    try:
        ws.set_params(changes)
        return set(json.loads(ws.dvc("status", "--json").stdout))
    finally:
        (ws.root / "params.yaml").write_text(original)


def _stages_run(stdout: str) -> set[str]:
    return {line.split("'")[1] for line in stdout.splitlines() if line.startswith("Running stage")}


def test_the_report_ranks_the_candidates_and_random_init_last(reproduced):
    root = reproduced.root
    ranking = io.read_json(root / "reports" / "ranking.json")
    assert ranking["order"] == ["tiny", "tiny_random"] and ranking["selected"] == ["tiny"]
    text = (root / "reports" / "report.md").read_text()
    assert "## Backbones" in text and "Kendall's tau" in text
    rows = [line for line in text.splitlines() if line.startswith(("| 1 | ", "| 2 | "))]
    assert rows[0].startswith("| 1 | tiny (test_efficientnet) |")
    assert rows[1].startswith("| 2 | tiny_random (test_efficientnet) | none |")
    metrics = io.read_json(root / "reports" / "metrics.json")["backbones"]
    assert set(metrics) == {"tiny", "tiny_random"}
    assert "full_accuracy" in metrics["tiny"] and "full_accuracy" not in metrics["tiny_random"]
    # DVC's metrics are the headline alone; every candidate's numbers stay in metrics.json.
    shown = json.loads(reproduced.dvc("metrics", "show", "--json").stdout)
    (files,) = [rev["data"] for rev in shown.values()]
    assert list(files) == ["reports/headline.json"]
    assert (root / "reports" / "figures" / "backbones.png").read_bytes()[:4] == b"\x89PNG"


def test_mlflow_has_a_run_per_backbone_under_the_parent(reproduced):
    client = MlflowClient(f"sqlite:///{reproduced.root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    runs = client.search_runs([experiment.experiment_id], "tags.stage LIKE 'backbone@%'")
    assert sorted(r.data.tags["stage"] for r in runs) == ["backbone@tiny", "backbone@tiny_random"]
    parents = {
        r.data.tags[MLFLOW_PARENT_RUN_ID]
        for r in client.search_runs([experiment.experiment_id])
        if MLFLOW_PARENT_RUN_ID in r.data.tags
    }
    assert len(parents) == 1 and {r.data.tags[MLFLOW_PARENT_RUN_ID] for r in runs} == parents
    tiny = next(r for r in runs if r.data.tags["stage"] == "backbone@tiny")
    assert tiny.data.params["model"] == TINY_MODEL and "probe_accuracy" in tiny.data.metrics


def test_adding_a_candidate_reruns_only_its_stages_and_the_comparison(reproduced_copy):
    ws = reproduced_copy
    candidates = {**ws.params()["backbones"], "extra": {"name": TINY_MODEL, "weights": "none"}}
    ws.set_params({"backbones": candidates})
    ran = _stages_run(ws.dvc("repro").stdout)
    own = {f"{stage}@extra" for stage in PER_CANDIDATE}
    # validate checks every params edit; its output is unchanged, so it reruns nothing
    assert ran == own | {"validate", "rank", "evaluate"}
    ranking = io.read_json(ws.root / "reports" / "ranking.json")
    assert ranking["order"][0] == "tiny" and ranking["selected"] == ["tiny"]
    # and removing one reruns only the comparison
    del candidates["tiny_random"]
    ws.set_params({"backbones": candidates})
    assert _stages_run(ws.dvc("repro").stdout) == {"validate", "rank", "evaluate"}
    text = (ws.root / "reports" / "report.md").read_text()
    assert "tiny_random" not in text and "extra (test_efficientnet)" in text
    timeline = [r["stage"] for r in io.read_json(ws.root / "reports" / "timeline.json")]
    assert "extract@extra" in timeline and "extract@tiny_random" not in timeline


def test_top_k_fine_tunes_each_chosen_one_and_random_weights_are_never_positive(
    reproduced_copy,
):
    ws = reproduced_copy
    ws.set_params({"select": {"top_k": 2}})
    ran = _stages_run(ws.dvc("repro").stdout)
    # the choice changed: fine-tuning reruns, extraction and the probes do not
    assert {"rank", "finetune@full", "finetune@scratch", "finetune_from_probe@lpft"} <= ran
    assert not ran & (EXTRACTION - {"extract_random"}) and "probe@tiny" not in ran
    for strategy in ("full", "scratch", "lpft"):
        for key in ("tiny", "tiny_random"):
            folder = ws.root / "data" / "methods" / strategy / key
            assert (folder / io.PREDICTIONS_FILE).is_file(), (strategy, key)
    ranking = io.read_json(ws.root / "reports" / "ranking.json")
    assert ranking["selected"] == ["tiny", "tiny_random"]
    metrics = io.read_json(ws.root / "reports" / "metrics.json")
    assert {"full_accuracy", "lpft_accuracy"} <= set(metrics["backbones"]["tiny_random"])
    text = (ws.root / "reports" / "report.md").read_text()
    assert "fine-tuned: tiny, tiny_random" in text
    # an explicit list studies its first candidate, whatever the ranking says
    ws.set_params({"select": {"top_k": 1, "backbones": ["tiny_random"]}})
    ws.dvc("repro")
    assert io.read_json(ws.root / "reports" / "ranking.json")["selected"] == ["tiny_random"]
    provenance = io.read_json(ws.root / "reports" / "provenance.json")
    assert provenance["backbone"]["key"] == "tiny_random"
    assert provenance["backbone"]["weights"] == "none"
    # A studied candidate with random weights transferred nothing: never a positive verdict,
    # and its random-init reference (same architecture and seed) is the same features.
    metrics = io.read_json(ws.root / "reports" / "metrics.json")
    verdicts = {name: v["verdict"] for name, v in metrics["transfer"].items()}
    assert "positive" not in verdicts.values(), verdicts
    assert metrics["transfer"]["linear_vs_random_init"]["gain"] == 0
