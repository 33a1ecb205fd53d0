"""Stage probe, `python -m stages.probe <backbone>`: a multinomial logistic-regression probe
on one candidate's cached features."""

from __future__ import annotations

import sys
import time

from transferlab import io, publish
from transferlab.data.layout import load_features
from transferlab.device.host import resolve_device
from transferlab.errors import UserError
from transferlab.evaluation.probes.probe import METHOD, C_grid, fit_probe, resolve_backend
from transferlab.params import Params, load_params, to_dict
from transferlab.publish import Stage
from transferlab.shell import cli
from transferlab.timeline import StageClock


@cli
def main() -> None:
    params = load_params()  # a params error first: it is the one to fix
    if len(sys.argv) != 2:
        raise UserError("usage: python -m stages.probe <backbone>")
    key = sys.argv[1]
    params.model(key)  # a known candidate
    logged = {"probe": to_dict(params.probe)}
    with publish.stage(f"{METHOD}@{key}", params, logged) as recorder:
        line = run(params, recorder, key)
    print(line)


def run(params: Params, recorder: Stage, key: str) -> str:
    """The stage on candidate `key`: its probe's outputs and record; returns its summary."""
    record = fit_and_write(params, key, recorder.clock)
    metrics = {k: record[k] for k in ("C", "val_accuracy", "fit_seconds")}
    out = io.method_dir(params.paths.methods, METHOD, key)
    recorder.publish(record=record, record_path=out / io.RECORD_FILE, metrics=metrics)
    return (
        f"probe on {key} ({record['backend']}, {record['device']}): C={record['C']:.3g}, "
        f"val accuracy {record['val_accuracy']:.4f} ({record['fit_seconds']:.1f} s)"
    )


def fit_and_write(params: Params, key: str, clock: StageClock) -> dict:
    """Fit the probe on candidate `key`'s features, write its test predictions and its head
    (as plain arrays, so LP-FT starts from it without unpickling); returns the record."""
    device = resolve_device(params.probe.device)
    features = params.paths.features / key
    (train_x, train_y), (val_x, val_y) = (
        load_features(features, "train"),
        load_features(features, "val"),
    )
    test_x, _ = load_features(features, "test")
    clock.ready()
    start = time.perf_counter()
    fit = fit_probe(
        train_features=train_x,
        train_labels=train_y,
        val_features=val_x,
        val_labels=val_y,
        grid=C_grid(params.probe),
        max_iter=params.probe.max_iter,
        backend=resolve_backend(params.probe.backend, device),
        device=device,
    )
    seconds = time.perf_counter() - start
    out = io.method_dir(params.paths.methods, METHOD, key)
    io.save_array(out / io.PREDICTIONS_FILE, fit.predict_proba(test_x))
    io.save_arrays(out / io.HEAD_FILE, **fit.head_arrays())
    return {
        "method": METHOD,
        "backend": fit.backend,
        "device": str(device),
        "C": fit.C,
        "val_accuracy": fit.val_accuracy[fit.C],
        "val_accuracy_by_C": {f"{c:.3g}": a for c, a in fit.val_accuracy.items()},
        "fit_seconds": round(seconds, 3),
    }


if __name__ == "__main__":
    main()
