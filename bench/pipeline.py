"""python -m bench pipeline: the pipeline's compute core, timed, without dvc or mlflow.

The stages' own `run` functions, in dvc.yaml's order, in one process and untracked, on the
benched candidate alone: prepare -> extract -> probe, kNN and scores -> rank -> fine-tune
each of finetune.strategies and finetune.from_probe (lpft starts from this run's probe head).
Each method is scored on test as evaluate scores it. The JSON is rewritten after every
stage, so a run cut off by a time limit still reports what it finished.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import torch

import stages.extract
import stages.finetune
import stages.knn
import stages.probe
import stages.rank
import stages.scores
from bench.common import benched_key, benched_model, environment, workdir
from transferlab import io
from transferlab.data.layout import load_prepared
from transferlab.device.host import resolve_device
from transferlab.evaluation.scores.metrics import method_metrics
from transferlab.params import Params, to_dict
from transferlab.publish import untracked


def alone(params: Params) -> Params:
    """params with the benched candidate as the only one, so rank chooses it."""
    key = benched_key(params)
    select = dataclasses.replace(params.select, top_k=1, backbones=())
    return dataclasses.replace(params, backbones={key: params.backbones[key]}, select=select)


def steps(params: Params) -> Iterator[tuple[str, Callable[[], object]]]:
    """(name, the stage's run) in dvc.yaml's order, for the one candidate, each untracked."""
    key = benched_key(params)
    per_candidate = (stages.extract, stages.probe, stages.knn, stages.scores)
    for stage in per_candidate:
        yield stage.__name__.removeprefix("stages."), partial(stage.run, params, untracked(), key)
    yield "rank", partial(stages.rank.run, params, untracked())
    for strategy in params.finetune.runs:
        yield strategy, partial(stages.finetune.run, params, untracked(), strategy)


def run_pipeline(params: Params, out: Path) -> dict:
    """Every stage in order; returns (and keeps rewriting at `out`) the record."""
    start = time.perf_counter()
    params = alone(params)
    record: dict = {
        "device": environment(resolve_device(params.extract.device)),
        "backbone": to_dict(benched_model(params)),
        "finetune": to_dict(params.finetune),
        "probe_config": to_dict(params.probe),
    }

    def save(step: str) -> None:
        record.setdefault("elapsed_s", {})[step] = round(time.perf_counter() - start, 1)
        io.write_json(out, record)

    with workdir(params) as params:
        card = io.read_json(params.paths.data_card)
        record["images"] = {split: card["splits"][split]["total"] for split in card["splits"]}
        save("prepare")
        for name, stage in steps(params):
            tick = time.perf_counter()
            stage()
            record.update(outcome(params, name, time.perf_counter() - tick))
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            save(name)
    return record


def outcome(params: Params, name: str, seconds: float) -> dict:
    """What a stage's outputs say, read back from them: the extraction's report, or a
    method's record with its test scores (as evaluate scores them)."""
    key, paths = benched_key(params), params.paths
    if name == "extract":
        report = io.read_json(io.backbone_file(paths.extract_report, key))
        shown = {k: report[k] for k in ("images_per_s", "feature_dim", "device", "seconds")}
        shown["batch_size"] = params.extract.batch_size
        return {"input_size": report["input_size"], "extract": shown}
    if name in ("scores", "rank"):
        return {name: {"seconds": seconds}}
    folder = io.method_dir(paths.methods, name, key)
    probs = io.load_array(folder / io.PREDICTIONS_FILE)  # a fine-tune's first seed's
    labels = load_prepared(paths.prepared, "test").labels
    row = {**method_metrics(labels, probs), **io.read_json(folder / io.RECORD_FILE)}
    if name in params.finetune.runs:
        row["device"] = str(resolve_device(params.finetune.device))
    return {name: {**row, "seconds": seconds}}


def summary(record: dict) -> str:
    """The compact table printed last."""
    extract, probe = record["extract"], record["probe"]
    lines = [
        f"device: {record['device']['device']}  input {record['input_size']} px  "
        f"images {record['images']}",
        f"extract  {extract['images_per_s']:>9.0f} img/s  batch {extract['batch_size']}",
        f"probe    test acc {probe['accuracy']:.4f}  C={probe['C']:.3g}  "
        f"({probe['backend']}, {probe['seconds']:.1f} s)",
        f"knn      test acc {record['knn']['accuracy']:.4f}  ({record['knn']['seconds']:.1f} s)",
    ]
    for strategy in (*record["finetune"]["strategies"], *record["finetune"]["from_probe"]):
        row = record[strategy]
        lines.append(
            f"{strategy:<8} test acc {row['accuracy']:.4f}  "
            f"{row['train_images_per_s']:.0f} img/s  {row['seconds']:.0f} s"
        )
    lines.append(f"total {max(record['elapsed_s'].values()):.0f} s")
    return "\n".join(lines)


def run(params: Params, args: argparse.Namespace) -> dict:
    record = run_pipeline(params, args.out)
    print(summary(record))
    print(f"wrote {args.out}")
    return record
