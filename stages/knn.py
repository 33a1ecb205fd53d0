"""Stage knn, `python -m stages.knn <backbone>`: weighted kNN on one candidate's cached
features, (k, T) chosen on val where grids are given."""

from __future__ import annotations

import sys
import time

import numpy as np

from transferlab import io, publish
from transferlab.data.layout import load_features
from transferlab.errors import UserError
from transferlab.evaluation.probes.knn import METHOD, grid, knn_predict_proba, select_k_T
from transferlab.params import Params, load_params, to_dict
from transferlab.publish import Stage
from transferlab.shell import cli
from transferlab.timeline import StageClock


@cli
def main() -> None:
    params = load_params()  # a params error first: it is the one to fix
    if len(sys.argv) != 2:
        raise UserError("usage: python -m stages.knn <backbone>")
    key = sys.argv[1]
    params.model(key)  # a known candidate
    with publish.stage(f"{METHOD}@{key}", params, {"knn": to_dict(params.knn)}) as recorder:
        line = run(params, recorder, key)
    print(line)


def run(params: Params, recorder: Stage, key: str) -> str:
    """The stage on candidate `key`: kNN's test predictions and record; returns its summary."""
    probs, record = fit(params, key, recorder.clock)
    out = io.method_dir(params.paths.methods, METHOD, key)
    io.save_array(out / io.PREDICTIONS_FILE, probs)
    metrics = {"k": record["k"], "T": record["T"], "val_accuracy": record["val_accuracy"]}
    recorder.publish(record=record, record_path=out / io.RECORD_FILE, metrics=metrics)
    return (
        f"knn on {key}: k={record['k']}, T={record['T']:g}, "
        f"val accuracy {record['val_accuracy']:.4f} ({record['seconds']:.1f} s)"
    )


def fit(params: Params, key: str, clock: StageClock) -> tuple[np.ndarray, dict]:
    """(test class probabilities, the record): (k, T) chosen on val where grids are given,
    then the test images voted on by a bank of train and val features."""
    features = params.paths.features / key
    (train_x, train_y), (val_x, val_y) = (
        load_features(features, "train"),
        load_features(features, "val"),
    )
    test_x, _ = load_features(features, "test")
    num_classes = int(max(train_y.max(), val_y.max())) + 1
    clock.ready()
    start = time.perf_counter()
    ks, Ts = grid(params.knn)
    k, T, scores = select_k_T(
        train_features=train_x,
        train_labels=train_y,
        val_features=val_x,
        val_labels=val_y,
        ks=ks,
        Ts=Ts,
        num_classes=num_classes,
    )
    # As the linear probe refits on train+val, the test bank holds both splits.
    probs = knn_predict_proba(
        bank_features=np.concatenate([train_x, val_x]),
        bank_labels=np.concatenate([train_y, val_y]),
        query_features=test_x,
        k=k,
        T=T,
        num_classes=num_classes,
    )
    return probs, {
        "method": METHOD,
        "k": k,
        "T": T,
        "val_accuracy": scores[f"k={k},T={T:g}"],
        "val_accuracy_by_k_T": scores,
        "seconds": round(time.perf_counter() - start, 3),
    }


if __name__ == "__main__":
    main()
