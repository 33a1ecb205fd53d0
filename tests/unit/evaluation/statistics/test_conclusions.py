"""What a run concludes: one family for the conclusions, one per curve comparison, each
verdict in exactly one."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from transferlab.evaluation.statistics.conclusions import CONCLUSIONS, judge_run


def right(n: int, total: int = 1000) -> np.ndarray:
    return np.arange(total) < n


def curve_rows(shots=("5", "25", "all")) -> dict[str, list[dict]]:
    """Probe curve rows as their stages write them: 'all' one subset for every seed."""
    out = {"finetune": []}
    for probe in ("linear", "knn"):
        rows = []
        for shot in shots:
            for seed in range(2):
                subset = "same" if shot == "all" else f"{shot}-{seed}"
                for kind, n in (("pretrained", 800), ("random_init", 700), ("raw_pixels", 790)):
                    correct = right(n + (seed if shot != "all" else 0))
                    rows.append({"series": f"{kind}_{probe}", "shot": shot, "seed": seed,
                                 "subset": subset, "accuracy": correct.mean(),
                                 "correct": correct})  # fmt: skip
        out[probe] = rows
    return out


def backbones() -> tuple[dict, dict]:
    rows = {"a": {"pretrained": True, "probe_accuracy": 0.8}, "b": {"pretrained": True,
            "probe_accuracy": 0.79}}  # fmt: skip
    return {"candidates": rows}, {"probe_accuracy": {"a": [right(800)], "b": [right(790)]}}


def judged(params, seed_correct, rows=None, transferred=True):
    compared, correct = backbones()
    return judge_run(
        params, seed_correct=seed_correct, curve_rows=rows or curve_rows(), compared=compared,
        correct=correct, transferred=transferred,
    )  # fmt: skip


def test_the_conclusions_are_one_family_and_each_curve_comparison_another(params):
    seed_correct = {"full": [right(900)], "scratch": [right(800)], "lpft": [right(800)]}
    out = judged(params, seed_correct)
    assert set(out.transfer) == {
        "full_vs_scratch", "lpft_vs_scratch", "linear_vs_random_init", "linear_vs_raw_pixels",
        "knn_vs_random_init", "knn_vs_raw_pixels",
    }  # fmt: skip
    assert out.families[CONCLUSIONS] == {"size": 7, "adjust": "holm"}  # and the backbone gap
    assert out.gaps["probe_accuracy"]["best"] == "a"
    assert out.gaps["probe_accuracy"]["family"]["name"] == CONCLUSIONS
    full = out.transfer["full_vs_scratch"]
    assert full["test"] == "McNemar exact, 1000 paired test images"
    assert full["p"] == pytest.approx(stats.binomtest(100, 100, 0.5).pvalue, rel=1e-3)
    assert full["p_adjusted"] >= full["p"] and full["verdict"] == "positive"
    # the probe's conclusion is its curve's 'all' cell, judged once, in the conclusions
    cells = out.curves["linear_vs_raw_pixels"]
    assert list(cells) == ["5", "25", "all"]
    assert cells["all"] is out.transfer["linear_vs_raw_pixels"]
    assert {cells[s]["family"]["name"] for s in ("5", "25")} == {"curve linear_vs_raw_pixels"}
    assert out.families["curve linear_vs_raw_pixels"] == {"size": 2, "adjust": "holm"}


def test_without_all_the_largest_shot_by_number_is_the_conclusion(params):
    seed_correct = {"full": [right(900)], "scratch": [right(800)], "lpft": [right(800)]}
    out = judged(params, seed_correct, rows=curve_rows(shots=("25", "5")))
    stated = out.transfer["knn_vs_random_init"]
    assert out.curves["knn_vs_random_init"]["25"] is stated  # 25, not '5' as strings sort
    assert out.curves["knn_vs_random_init"]["5"]["family"]["name"] != CONCLUSIONS


def test_several_seeds_are_judged_over_seeds_and_random_weights_never_transfer(params):
    params = dataclasses.replace(params, finetune=dataclasses.replace(params.finetune, seeds=3))
    seed_correct = {
        "full": [right(900), right(920), right(900)],
        "scratch": [right(600), right(620), right(610)],
        "lpft": [right(700)] * 3,
    }
    out = judged(params, seed_correct, transferred=False)
    full = out.transfer["full_vs_scratch"]
    assert full["test"] == "paired t over 3 seeds" and full["seeds"] == 3
    assert full["gain"] == pytest.approx(np.mean([0.30, 0.30, 0.29]), abs=1e-6)
    assert full["verdict"] == "inconclusive" and "note" in full  # no pretrained weights
