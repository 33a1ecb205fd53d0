"""Stage validate: check the whole params.yaml (unknown keys in any section, types, ranges)
and the data folder, before any other stage runs.

It depends on all of params.yaml, so any edit reruns it; its output's bytes never change
while the params are valid, so a valid edit reruns nothing downstream on its account.
"""

from __future__ import annotations

from pathlib import Path

from transferlab import io
from transferlab.errors import UserError, cli
from transferlab.params import load_params
from transferlab.timeline import StageClock, timing_file

VALID = "params.yaml is valid\n"


GO_ON = (
    "Nothing else ran and every output is as it was: fix params.yaml (`git diff params.yaml` "
    "shows what changed, `git checkout params.yaml` undoes it), then run again."
)


@cli
def main() -> None:
    clock = StageClock()  # from the command's start: the first stage's includes the warm runner's
    try:
        params = load_params()
        if not Path(params.data.path).exists():
            raise UserError(
                f"data.path: {params.data.path} does not exist; point data.path at your data "
                "folder (or install Fashion-MNIST: make data)."
            )
    except UserError as err:
        raise UserError(f"{err} {GO_ON}") from None
    clock.computed()
    io.write_text(params.paths.validated, VALID)
    io.write_json(timing_file(params.paths.timings, "validate"), clock.parts())
    print(f"params.yaml is valid; data.path {params.data.path} exists")


if __name__ == "__main__":
    main()
