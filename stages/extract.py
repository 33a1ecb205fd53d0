"""Stage extract, `python -m stages.extract <backbone>`: embed every prepared split with
candidate <backbone> of params.yaml's `backbones`, frozen (the random-init reference,
stages/extract_random.py, runs the same models.extract.extract_to)."""

from __future__ import annotations

import sys

from transferlab import publish
from transferlab.errors import UserError
from transferlab.models.extract import extract_to
from transferlab.params import Params, load_params, to_dict
from transferlab.publish import Stage
from transferlab.shell import cli


@cli
def main() -> None:
    params = load_params()
    if len(sys.argv) != 2:
        raise UserError("usage: python -m stages.extract <backbone>")
    key = sys.argv[1]
    logged = {"backbone": to_dict(params.model(key)), "extract": to_dict(params.extract)}
    with publish.stage(f"extract@{key}", params, logged) as recorder:
        line = run(params, recorder, key)
    if line:  # rank 0's; under torchrun the other ranks say nothing
        print(line)


def run(params: Params, recorder: Stage, key: str) -> str | None:
    """The stage for candidate `key`: its features and its extraction report (which the
    comparison reads); returns the summary on rank 0, None on the others."""
    out = params.paths.features / key
    return extract_to(params, recorder, params.model(key), out, report_as=key)


if __name__ == "__main__":
    main()
