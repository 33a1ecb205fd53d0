import dataclasses

import numpy as np
import pytest
from scipy import stats

from tests.conftest import REPO, dvc_stages
from transferlab import io
from transferlab.evaluation.evaluate import (
    method_names,
    timed_stages,
    transfer_verdicts,
)
from transferlab.params import to_dict


def test_evaluate_reads_every_method_a_stage_writes_in_pipeline_order(params):
    # the methods are what dvc.yaml's stages write under paths.methods, in their order
    stages = dvc_stages((REPO / "dvc.yaml").read_text(), to_dict(params))
    written = [
        out.removeprefix("${paths.methods}/").split("/")[0]
        for spec in stages.values()
        for out in (o if isinstance(o, str) else next(iter(o)) for o in spec.get("outs", []))
        if out.startswith("${paths.methods}/")
    ]
    assert method_names(params) == list(dict.fromkeys(written))


def test_the_timeline_expects_a_timing_from_every_stage_dvc_yaml_runs(params):
    stages = set(dvc_stages((REPO / "dvc.yaml").read_text(), to_dict(params)))
    # evaluate adds its own timing as it writes the timeline. Each timing carries the stage's
    # DVC name, so `dvc repro <name>` takes what the report shows.
    assert timed_stages(params) == stages - {"evaluate"}


def probe_curves() -> dict:
    """The probe curves' comparisons as evaluate judges them, shots in string order (25 < 5):
    'all' is the headline."""
    comparisons = {}
    for probe in ("linear", "knn"):
        for reference in ("random_init", "raw_pixels"):
            comparisons[f"{probe}_vs_{reference}"] = {
                shot: {"verdict": "positive", "gain": gain, "test": shot}
                for shot, gain in (("25", 0.25), ("5", 0.05), ("all", 0.5))
            }
    return {"series": {}, "comparisons": comparisons}


def test_one_seed_of_each_strategy_is_judged_by_mcnemar_on_its_test_predictions(params, tmp_path):
    full = np.zeros(1000, bool)
    full[:900] = True  # right on 900 images
    scratch = np.zeros(1000, bool)
    scratch[50:870] = True  # right on 820; 100 only full gets right, 20 only scratch
    seed_correct = {"full": [full], "scratch": [scratch], "lpft": [scratch.copy()]}
    out = transfer_verdicts(seed_correct, probe_curves(), params, transferred=True)
    judged = out["full_vs_scratch"]
    assert judged["test"] == "McNemar exact, 1000 paired test images" and judged["seeds"] == 1
    assert judged["gain"] == pytest.approx(0.08) and judged["verdict"] == "positive"
    assert judged["p"] == pytest.approx(stats.binomtest(100, 120, 0.5).pvalue, rel=1e-3)
    assert {"low", "high", "confidence", "noise"} <= set(judged)
    same = out["lpft_vs_scratch"]  # identical predictions: nothing discordant
    assert (same["gain"], same["verdict"], same["p"]) == (0.0, "inconclusive", 1.0)
    # the probes' verdicts are their curves' at the largest shot, not the last JSON key
    assert out["linear_vs_raw_pixels"]["test"] == "all"
    without_all = probe_curves()
    for by_shot in without_all["comparisons"].values():
        del by_shot["all"]
    io.write_json(tmp_path / "summary.json", without_all)
    as_stored = io.read_json(tmp_path / "summary.json")  # "25" < "5" as strings
    assert list(as_stored["comparisons"]["knn_vs_random_init"]) == ["25", "5"]
    out = transfer_verdicts(seed_correct, as_stored, params, transferred=True)
    assert out["knn_vs_random_init"]["test"] == "25"
    assert set(out) == {
        "full_vs_scratch",
        "lpft_vs_scratch",
        "linear_vs_random_init",
        "linear_vs_raw_pixels",
        "knn_vs_random_init",
        "knn_vs_raw_pixels",
    }


def test_several_seeds_of_each_strategy_are_judged_by_a_t_over_seeds(params, tmp_path):
    params = dataclasses.replace(params, finetune=dataclasses.replace(params.finetune, seeds=3))
    right = {n: np.arange(100) < n for n in (60, 61, 62, 70, 90, 92)}
    seed_correct = {
        "full": [right[90], right[92], right[90]],
        "scratch": [right[60], right[62], right[61]],
        "lpft": [right[70], right[70], right[70]],
    }
    out = transfer_verdicts(seed_correct, probe_curves(), params, transferred=False)
    judged = out["full_vs_scratch"]
    assert judged["test"] == "paired t over 3 seeds" and judged["seeds"] == 3
    assert judged["gain"] == pytest.approx(np.mean([0.30, 0.30, 0.29]), abs=1e-6)
    assert judged["low"] > 0  # the interval excludes 0 ...
    # no pretrained weights: a gain is never called positive transfer
    assert judged["verdict"] == "inconclusive" and "note" in judged
