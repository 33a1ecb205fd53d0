"""Stage curves: a data-efficiency curve, `python -m stages.curves linear|knn`: the probe on
k-shot subsets of the chosen candidate's cached features, against random-init features of
its architecture and raw pixels.
dvc.yaml runs it as two stages, each reading only its own probe's params."""

from __future__ import annotations

import sys

from transferlab import publish
from transferlab.errors import UserError
from transferlab.evaluation.curves.kshot import SUMMARY_FILE, unusable_shots, usable_shots
from transferlab.evaluation.curves.probe_curves import (
    PROBES,
    curve_inputs,
    probe_rows,
    scorer,
    write_curve,
)
from transferlab.params import Params, load_params, to_dict
from transferlab.publish import Stage
from transferlab.selection import chosen_model
from transferlab.shell import cli


@cli
def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in PROBES:
        raise UserError(f"usage: python -m stages.curves {{{'|'.join(PROBES)}}}")
    probe, params = sys.argv[1], load_params()
    sections = ("curves", "probe" if probe == "linear" else "knn")
    logged = {section: to_dict(getattr(params, section)) for section in sections}
    logged["backbone"] = to_dict(chosen_model(params))
    with publish.stage(f"curves_{probe}", params, logged) as recorder:
        line = run(params, recorder, probe)
    print(line)


def run(params: Params, recorder: Stage, probe: str) -> str:
    """The stage for `probe` (linear or knn): its curve's outputs; returns its summary."""
    features, labels = curve_inputs(params.paths, params.curves.pixel_size)
    score = scorer(probe, features, labels, params)
    out = params.paths.curves / probe
    shots = usable_shots(params.curves.shots, labels["train"])
    recorder.clock.ready()
    rows, fits = probe_rows(
        labels, probe=probe, score=score, shots=shots, seeds=params.curves.seeds
    )
    summary = write_curve(out, rows, probe=probe, shots=shots, train_labels=labels["train"])
    summary["shots_as_all"] = unusable_shots(params.curves.shots, labels["train"])
    recorder.publish(record=summary, record_path=out / SUMMARY_FILE, metrics={"fits": fits})
    return f"curves_{probe}: {fits} distinct fits"


if __name__ == "__main__":
    main()
