"""The one-screen summary: methods, verdicts and stage times, with deltas to a baseline."""

import json

import pytest

from transferlab import summary
from transferlab.errors import UserError

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
    }
}


def test_render_shows_metrics_verdicts_and_times_with_deltas():
    base = {
        "metrics": {**METRICS, "probe": {**METRICS["probe"], "accuracy": 0.80}},
        "timeline": {"probe": {**TIMELINE["probe"], "total_s": 7.5}},
    }
    text = summary.render({"metrics": METRICS, "timeline": TIMELINE}, base, "exp-1", "HEAD")
    assert text.splitlines()[0] == "exp-1, change against HEAD in brackets"
    assert "probe       0.8200 (+2.0 pt)" in text
    assert "full        0.8500 ± 0.0040 (+0.0 pt)" in text
    assert "full_vs_scratch          positive      +29.0 (+0.0)" in text
    assert "probe                    5.5 (-2.0 s)" in text and "(2.0 / 0.0 / 3.0 / 0.5)" in text


def test_workspace_reports_are_read_without_dvc_and_missing_ones_are_named(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(METRICS))
    (tmp_path / "timeline.json").write_text(json.dumps(list(TIMELINE.values())))
    found = summary.read_reports(None, tmp_path / "metrics.json", tmp_path / "timeline.json")
    assert found == {"metrics": METRICS, "timeline": TIMELINE}
    empty = summary.read_reports(None, tmp_path / "none.json", tmp_path / "none.json")
    with pytest.raises(UserError, match="no reports/metrics.json yet"):
        summary.render(empty, {}, "workspace", None)
