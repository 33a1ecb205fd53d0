"""The one-screen summary: methods, verdicts and stage times, with deltas to a baseline."""

import dataclasses
import json

import pytest

from tests.conftest import REPO
from transferlab.commands import results
from transferlab.errors import UserError
from transferlab.params import load_params

METRICS = {
    "probe": {"accuracy": 0.82, "macro_f1": 0.81, "ece": 0.1},
    "full": {"accuracy": 0.85, "accuracy_sd": 0.004, "seeds": 2, "macro_f1": 0.84, "ece": 0.07},
    "transfer": {"full_vs_scratch": {"verdict": "positive", "gain": 0.29, "spread": 0.02}},
}
TIMELINE = {
    "probe": {
        "stage": "probe",
        "ready_s": 2.0,
        "first_step_s": 0.0,
        "steady_s": 3.0,
        "write_s": 0.5,
        "total_s": 5.5,
        "cached": False,
    }
}


def test_render_shows_params_metrics_verdicts_and_times_with_deltas():
    base = {
        "metrics": {
            **METRICS,
            "probe": {**METRICS["probe"], "accuracy": 0.80, "ece": 0.12},
            "transfer": {"full_vs_scratch": {"verdict": "inconclusive", "gain": 0.01}},
        },
        "timeline": {"probe": {**TIMELINE["probe"], "total_s": 7.5}},
        "params": {"knn.k": 20, "probe.C_num": 12},
    }
    current = {"metrics": METRICS, "timeline": TIMELINE, "params": {"knn.k": 5, "probe.C_num": 12}}
    text = results.render(current, base, "exp-1", "HEAD")
    lines = text.splitlines()
    assert lines[0] == "exp-1, change against HEAD in brackets"
    assert "params changed against HEAD:\n  knn.k: 20 -> 5\n\n" in text
    assert "probe.C_num" not in text
    assert "probe      0.8200 (+2.0 pt)         0.8100 (+0.0 pt)         0.1000 (-2.0 pt)" in lines
    assert any(line.startswith("full       0.8500±0.0040 (+0.0 pt)") for line in lines)
    assert "full_vs_scratch          positive (was inconclusive) ! +29.0 (+28.0)" in lines
    assert "probe                      5.5 (-2.0 s)     2.0 / 0.0 / 3.0 / 0.5" in lines
    header = next(line for line in lines if line.startswith("method"))
    assert header.index("macro-F1") == lines[lines.index(header) + 1].index("0.8100")
    assert max(map(len, lines)) <= results.WIDTH


def test_a_stage_cached_in_either_run_shows_no_time_change():
    cached = {**TIMELINE["probe"], "cached": True, "started": 0.0, "run": "ci:1:2"}
    base = {"metrics": METRICS, "timeline": {"probe": {**TIMELINE["probe"], "total_s": 9.9}}}
    text = results.render({"metrics": METRICS, "timeline": {"probe": cached}}, base, "a", "HEAD")
    assert "probe                      cached, measured earlier: 5.5 s on ci, 1970-01-01" in text
    unknown = {"probe": {**TIMELINE["probe"], "cached": True}}
    base = {"metrics": METRICS, "timeline": unknown}
    text = results.render({"metrics": METRICS, "timeline": TIMELINE}, base, "a", "HEAD")
    assert "probe                      5.5              2.0" in text  # no delta


def test_the_recommendation_comes_first():
    rec = {
        "method": "probe",
        "accuracy": 0.8,
        "low": 0.77,
        "high": 0.82,
        "confidence": 0.95,
        "level": 0.95,
        "looked_at": 1,
        "interval": "exact binomial, 1000 test images",
        "trainable_parameters": 12810,
        "best": "probe",
        "best_accuracy": 0.8,
        "margin": 1.0,
        "cheaper": [],
    }
    text = results.render(
        {"metrics": {**METRICS, "recommendation": rec}, "timeline": {}}, {}, "a", None
    )
    assert text.splitlines()[2].startswith("Use the linear probe (probe): test accuracy 0.8000")
    assert "recommendation " not in text  # not listed as a method


def test_workspace_reports_are_read_without_dvc_and_missing_ones_are_named(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(METRICS))
    (tmp_path / "timeline.json").write_text(json.dumps(list(TIMELINE.values())))
    found = results.read_reports(None, paths_in(tmp_path))
    assert found["metrics"] == METRICS and found["timeline"] == TIMELINE
    assert found["provenance"] == {}  # a run that recorded none
    empty = results.read_reports(None, paths_in(tmp_path / "none"))
    with pytest.raises(UserError, match="no reports/metrics.json yet"):
        results.render(empty, {}, "workspace", None)


def test_the_answer_comes_from_the_report_with_its_measured_times(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(METRICS))
    (tmp_path / "timeline.json").write_text("[]")
    answer = "Use full fine-tuning (full): test accuracy 0.8500 [...], 201 s, 3.38 M trainable"
    (tmp_path / "report.md").write_text(f"# Transfer report\n\n## Recommendation\n\n{answer}\n\n")
    found = results.read_reports(None, paths_in(tmp_path), answer=True)
    assert found["report"] == {"answer": answer}
    rec = {"method": "probe"}  # would render otherwise: the report's paragraph wins
    text = results.render({**found, "metrics": {**METRICS, "recommendation": rec}}, {}, "a", None)
    assert text.splitlines()[2] == answer


def paths_in(folder):
    """The shipped output paths, with the files summary reads moved into `folder`."""
    names = ("metrics", "timeline", "provenance", "report")
    return dataclasses.replace(
        load_params(REPO / "params.yaml").paths,
        **{name: folder / f"{name}.json" for name in names[:3]},
        report=folder / "report.md",
    )


def fmnist_provenance(content: str = "abc") -> dict:
    return {"data": {"source": "fashion-mnist", "path": "/fm", "content_sha256": content}}


def test_a_baseline_on_other_data_is_named_and_no_change_is_computed():
    ours = {"metrics": METRICS, "provenance": fmnist_provenance()}
    same = {"metrics": METRICS, "provenance": fmnist_provenance()}
    assert results.other_data(ours, same) is None
    photos = {"provenance": {"data": {"source": "imagefolder", "path": "data/raw/p"}}}
    assert results.other_data(ours, photos) == "imagefolder at data/raw/p"
    changed = {"provenance": fmnist_provenance("def")}  # same folder, other images
    assert results.other_data(ours, changed) == "fashion-mnist at /fm, content def"
    assert results.other_data(ours, {"metrics": METRICS}) is None  # an older run: unknown
