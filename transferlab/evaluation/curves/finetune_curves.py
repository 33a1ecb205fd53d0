"""Data-efficiency curves by fine-tuning, on the probe curves' k-shot subsets.

Selection stays inside the k-shot label budget, as the linear curve's does (kshot_select):
a fit on k images per class never reads the val split, whose labels would outnumber its own
at low shots. It trains for finetune.epochs at the strategy's first listed learning rate and
keeps the last epoch (IN_BUDGET, recorded with the curve).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time

import torch

from transferlab.data.layout import LabelledImages
from transferlab.evaluation.curves.kshot import kshot_subsets, series_name, shot_label
from transferlab.models.training import train_strategy
from transferlab.params import Finetune, Model
from transferlab.timeline import StageClock

IN_BUDGET = (
    "the last of finetune.epochs epochs at the first listed learning rate: neither epochs "
    "nor rates are chosen, and val is never read"
)


def fit_subset(
    strategy: str,
    *,
    train: LabelledImages,
    test: LabelledImages,
    model_config: Model,
    config: Finetune,
    num_classes: int,
    device: torch.device,
    clock: StageClock | None = None,
) -> dict:
    """Fine-tune one fresh model on `train` inside its budget (IN_BUDGET), score it on test:
    its accuracy and, per test image, whether it is right (`correct`, for McNemar's test)."""
    trained = train_strategy(
        strategy,
        model_config=model_config,
        config=config,
        train=train,
        val=None,
        num_classes=num_classes,
        device=device,
        desc=f"{strategy} k-shot",
        test=test,
        clock=clock,
        rates=getattr(config, strategy).lr[:1],
    )
    result = trained.result
    correct = trained.test_probs.argmax(1) == test.labels
    return {
        "accuracy": float(correct.mean()),
        "correct": correct,
        "kept_epoch": result.kept_epoch,
        "epochs_run": len(result.history) - 1,
    }


def kshot_finetune(
    strategies_to_fit: tuple[str, ...],
    *,
    train: LabelledImages,
    test: LabelledImages,
    shots: tuple[int | None, ...],
    seeds: int,
    model_config: Model,
    config: Finetune,
    num_classes: int,
    device: torch.device,
    clock: StageClock | None = None,
) -> list[dict]:
    """One row per (strategy, shot, seed), on the same nested subsets as the probe curves.

    Curve seed s draws kshot_subsets(seed=s), as the probe curves do, and trains with
    finetune.seed + s (the row's `train_seed`), so the spread per shot covers both the subset
    and the training run: even where seeds drew the same subset ('all'), each is its own fit.
    """
    rows: list[dict] = []
    for seed in range(seeds):
        run_config = dataclasses.replace(config, seed=config.seed + seed)
        for shot, index in kshot_subsets(train.labels, shots, seed=seed).items():
            for strategy in strategies_to_fit:
                start = time.perf_counter()
                scores = fit_subset(
                    strategy,
                    train=train.subset(index),
                    test=test,
                    model_config=model_config,
                    config=run_config,
                    num_classes=num_classes,
                    device=device,
                    clock=clock,
                )
                rows.append(
                    {
                        "series": series_name(strategy),
                        "shot": shot_label(shot),
                        "seed": seed,
                        **scores,
                        "subset": hashlib.md5(index.tobytes()).hexdigest(),
                        "train_seed": run_config.seed,
                        "seconds": round(time.perf_counter() - start, 3),
                    }
                )
    return rows
