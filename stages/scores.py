"""Stage scores, `python -m stages.scores <backbone>`: transferability scores of one
candidate's cached train features (LogME, H-score), which rank the candidates in seconds,
before anything is fine-tuned."""

from __future__ import annotations

import sys
import time

from transferlab import io, publish
from transferlab.data.layout import load_features
from transferlab.errors import UserError
from transferlab.evaluation.scores.transferability import SCORES
from transferlab.params import Params, load_params
from transferlab.publish import Stage
from transferlab.shell import cli


@cli
def main() -> None:
    params = load_params()  # a params error first: it is the one to fix
    if len(sys.argv) != 2:
        raise UserError("usage: python -m stages.scores <backbone>")
    key = sys.argv[1]
    params.model(key)  # a known candidate
    with publish.stage(f"scores@{key}", params, {"scores": list(SCORES)}) as recorder:
        line = run(params, recorder, key)
    print(line)


def run(params: Params, recorder: Stage, key: str) -> str:
    """The stage on candidate `key`: its scores' record; returns its summary."""
    features, labels = load_features(params.paths.features / key, "train")
    recorder.clock.ready()
    record, seconds = {"backbone": key, "images": len(labels)}, {}
    for name, score in SCORES.items():
        start = time.perf_counter()
        try:
            record[name] = round(score(features, labels), 6)
        except ValueError as err:  # e.g. features all zero: a broken checkpoint
            raise UserError(f"{name} of backbone {key!r}: {err}") from None
        seconds[name] = round(time.perf_counter() - start, 3)
    record["seconds"] = seconds
    recorder.publish(
        record=record,
        record_path=io.backbone_file(params.paths.scores, key),
        metrics={name: record[name] for name in SCORES},
    )
    shown = ", ".join(f"{name} {record[name]:.4f} ({seconds[name]:.1f} s)" for name in SCORES)
    return f"scores of {key}: {shown}"


if __name__ == "__main__":
    main()
