import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from tests.conftest import make_images
from transferlab.evaluation.curves import finetune_curves
from transferlab.evaluation.curves.finetune_curves import kshot_finetune
from transferlab.evaluation.curves.kshot import kshot_subsets
from transferlab.evaluation.statistics.family import curve_comparisons
from transferlab.evaluation.statistics.verdict import scratch_pairs
from transferlab.params import Verdict

CPU = torch.device("cpu")


def _fit(params, strategies, shots=(1, 2), seeds=2):
    return kshot_finetune(
        strategies,
        train=make_images(4),
        test=make_images(3, seed=2),
        shots=shots,
        seeds=seeds,
        model_config=params.model("tiny"),
        config=params.finetune,
        num_classes=3,
        device=CPU,
    )


def test_one_row_per_strategy_shot_and_seed_on_the_probe_subsets(params, monkeypatch):
    calls = []

    def spy(strategy, *, train, config, **kwargs):
        calls.append((strategy, train, config.seed))
        correct = np.arange(100) < len(calls)
        scores = {"accuracy": len(calls) / 100, "correct": correct}
        return {**scores, "kept_epoch": 1, "epochs_run": 1}

    monkeypatch.setattr(finetune_curves, "fit_subset", spy)
    rows = _fit(params, ("full", "scratch"))
    keys = [(r["series"], r["shot"], r["seed"]) for r in rows]
    assert sorted(keys) == sorted(
        (f"finetune_{s}", shot, seed)
        for s in ("full", "scratch")
        for shot in ("1", "2")
        for seed in (0, 1)
    )
    train = make_images(4)
    assert len(calls) == len(rows)
    for number, (row, (strategy, subset, seed)) in enumerate(zip(rows, calls, strict=True)):
        assert row["series"] == f"finetune_{strategy}"
        assert row["accuracy"] == (number + 1) / 100  # each row holds its own fit's scores
        # trained with finetune.seed + the curve seed, on the subset the probe curve fits
        # for this seed and shot (evaluation/curves/kshot.py)
        assert seed == params.finetune.seed + row["seed"] == row["train_seed"]
        index = kshot_subsets(train.labels, (1, 2), seed=row["seed"])[int(row["shot"])]
        np.testing.assert_array_equal(subset.images, train.images[index])
        np.testing.assert_array_equal(subset.labels, train.labels[index])
        assert row["subset"] == hashlib.md5(index.tobytes()).hexdigest()
    assert len({r["subset"] for r in rows}) == 4  # two shots x two seeds differ


def test_fits_reproduce_whatever_ran_before(params):
    config = dataclasses.replace(params, finetune=dataclasses.replace(params.finetune, epochs=2))
    first = _fit(config, ("freeze",), shots=(2,), seeds=1)
    torch.manual_seed(123)  # global RNG state must not leak into a fit
    torch.rand(10)
    again = _fit(config, ("freeze",), shots=(2,), seeds=1)
    strip = [
        {k: v for k, v in r.items() if k not in ("seconds", "correct")} for r in (*first, *again)
    ]
    assert strip[0] == strip[1]
    np.testing.assert_array_equal(first[0]["correct"], again[0]["correct"])


def test_one_shot_of_ten_classes_trains(params):
    # 1-shot on ten classes is ten images: one batch of ten, BatchNorm in train mode.
    train = make_images(3, n_classes=10)
    rows = kshot_finetune(
        ("llrd",),
        train=train,
        test=make_images(1, n_classes=10, seed=2),
        shots=(1,),
        seeds=1,
        model_config=params.model("tiny"),
        config=params.finetune,
        num_classes=10,
        device=CPU,
    )
    (row,) = rows
    assert row["correct"].shape == (10,) and row["correct"].mean() == row["accuracy"]
    assert (row["series"], row["shot"], row["epochs_run"], row["kept_epoch"]) == (
        "finetune_llrd",
        "1",
        1,
        1,
    )
    # scored on the ten test images: a whole number of them right, from a real prediction
    assert row["accuracy"] * 10 == pytest.approx(round(row["accuracy"] * 10))


def test_a_k_shot_fit_selects_inside_its_budget_never_on_val(params, monkeypatch):
    """Planted: val labels that make an early epoch look best, and a learning-rate list whose
    best on val would be the second. In budget, neither is read: the fit keeps its last epoch
    at the first rate, and gives the same predictions whatever val holds."""
    from transferlab.models import training

    lrs = dataclasses.replace(params.finetune.full, lr=(1e-3, 3e-2))
    config = dataclasses.replace(params.finetune, epochs=3, full=lrs)
    seen = []
    real = training.train_model

    def spy(model, *, val, param_groups, **kwargs):
        seen.append((val, max(g["lr"] for g in param_groups)))
        return real(model, val=val, param_groups=param_groups, **kwargs)

    monkeypatch.setattr(training, "train_model", spy)
    (row,) = kshot_finetune(
        ("full",), train=make_images(4), test=make_images(3, seed=2), shots=(2,), seeds=1,
        model_config=params.model("tiny"), config=config, num_classes=3, device=CPU,
    )  # fmt: skip
    assert seen == [(None, 1e-3)]  # one fit: no val to read, the first listed rate
    assert row["kept_epoch"] == row["epochs_run"] == 3  # the last epoch, not a chosen one
    # the same fit selected on a val split (its best epoch), as the stage did before: a
    # different model kept
    on_val = training.train_strategy(
        "full", model_config=params.model("tiny"), config=dataclasses.replace(config, keep="best"),
        train=make_images(4).subset(kshot_subsets(make_images(4).labels, (2,), seed=0)[2]),
        val=make_images(2, seed=9), num_classes=3, device=CPU,
    )  # fmt: skip
    assert (on_val.applied["lr"], on_val.result.kept_epoch) != (1e-3, 3)


def test_empty_list_fits_nothing(params):
    assert _fit(params, ()) == []


def test_listed_strategies_are_judged_against_scratch_per_shot():
    assert scratch_pairs(("full", "llrd")) == {}  # no scratch listed: nothing to judge against
    pairs = scratch_pairs(("full", "scratch"))
    assert pairs == {"finetune_full_vs_scratch": ("finetune_full", "finetune_scratch")}

    def row(series, shot, seed, accuracy):
        correct = np.arange(1000) < round(accuracy * 1000)
        subset = "whole" if shot == "all" else f"{shot}-{seed}"  # 'all': one subset
        return {
            "series": series,
            "shot": shot,
            "seed": seed,
            "subset": subset,
            "train_seed": 42 + seed,
            "accuracy": accuracy,
            "correct": correct,
        }

    rows = [
        row(series, shot, seed, acc)
        for seed in range(3)
        for shot, full, scratch in (("1", 0.60, 0.20), ("all", 0.90, 0.895))
        for series, acc in (
            ("finetune_full", full + 0.01 * seed),
            ("finetune_scratch", scratch + 0.005 * seed),
        )
    ]
    config = Verdict(confidence=0.95, adjust="holm")
    by_shot = curve_comparisons(rows, pairs, config=config, transferred=True)[
        "finetune_full_vs_scratch"
    ]
    assert by_shot["1"]["verdict"] == "positive" and by_shot["1"]["seeds"] == 3
    assert by_shot["1"]["gain"] == pytest.approx(0.405)
    # 'all': one subset, but three training seeds: three fits, judged over seeds
    assert by_shot["all"]["seeds"] == 3 and by_shot["all"]["test"] == "paired t over 3 seeds"
    assert by_shot["all"]["gain"] == pytest.approx(0.01)
    assert by_shot["all"]["verdict"] == "inconclusive"  # +0.01 within the seed spread
    none = curve_comparisons(rows, pairs, config=config, transferred=False)
    assert none["finetune_full_vs_scratch"]["1"]["verdict"] == "inconclusive"
    # curves.seeds: 1 is one fit a shot: McNemar's test on its test images
    one = curve_comparisons(
        [r for r in rows if r["seed"] == 0], pairs, config=config, transferred=True
    )["finetune_full_vs_scratch"]
    assert one["all"]["test"] == "McNemar exact, 1000 paired test images"
    assert one["all"]["gain"] == pytest.approx(0.005) and one["all"]["verdict"] == "inconclusive"
