"""Stage extract_random, `python -m stages.extract_random`: embed every prepared split with
the chosen candidate's architecture, randomly initialised (backbone.seed): the reference
that isolates what its pretrained weights add. Its own command, so that only it reads the
selection: an edit there never reruns a candidate's extraction."""

from __future__ import annotations

import sys

from transferlab import publish
from transferlab.errors import UserError
from transferlab.models.extract import extract_to
from transferlab.params import Params, load_params, to_dict
from transferlab.publish import Stage
from transferlab.selection import chosen_model
from transferlab.shell import cli


@cli
def main() -> None:
    params = load_params()
    if len(sys.argv) != 1:
        raise UserError("usage: python -m stages.extract_random")
    spec = chosen_model(params, weights="none")
    logged = {"backbone": to_dict(spec), "extract": to_dict(params.extract)}
    with publish.stage("extract_random", params, logged) as recorder:
        line = run(params, recorder)
    if line:  # rank 0's; under torchrun the other ranks say nothing
        print(line)


def run(params: Params, recorder: Stage) -> str | None:
    """The stage: the reference's features (its timing only, no extraction report)."""
    spec = chosen_model(params, weights="none")
    return extract_to(params, recorder, spec, params.paths.random_features, report_as=None)


if __name__ == "__main__":
    main()
