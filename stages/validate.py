"""Stage validate: check the whole params.yaml (unknown keys in any section, types, ranges)
and the data folder, that each checkpoint given as a candidate's weights fits its timm
model, and (where lora is trained) that its targets name layers of every candidate, before
any other stage runs.

It depends on all of params.yaml, so any edit reruns it; its output's bytes never change
while the params are valid, so a valid edit reruns nothing downstream on its account.
"""

from __future__ import annotations

from pathlib import Path

from transferlab import io
from transferlab.data.sources import stored_side
from transferlab.errors import UserError
from transferlab.models import lora, pretrained
from transferlab.models.backbone import spec_side
from transferlab.params import Params, load_params
from transferlab.shell import cli
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
        # A checkpoint whose keys do not fit its model stops here, before any stage runs,
        # and so does a LoRA target that names no 1x1 convolution of some candidate.
        pretrained.check_checkpoints(params.backbones)
        if "lora" in (*params.finetune.runs, *params.curves.finetune):
            lora.check_targets(params.backbones, params.finetune.lora.targets)
        sides = input_sides_line(params)
    except UserError as err:
        raise UserError(f"{err} {GO_ON}") from None
    clock.computed()
    io.write_text(params.paths.validated, VALID)
    io.write_json(timing_file(params.paths.timings, "validate"), clock.parts())
    print(f"params.yaml is valid; data.path {params.data.path} exists")
    if sides:
        print(sides)


def input_sides_line(params: Params) -> str | None:
    """One line: the input side each candidate's network will see, where it differs from the
    side the images are stored at (none otherwise)."""
    stored = stored_side(params.data.source, params.data.image_size)
    sides = {key: spec_side(params.model(key), stored) for key in params.backbones}
    if all(side == stored for side in sides.values()):
        return None
    listed = ", ".join(f"{key} {side} px" for key, side in sides.items())
    return (
        f"input: {listed}; images stored at {stored} px "
        f"(backbone.image_size: {params.backbone.image_size}, "
        f"min_image_size: {params.backbone.min_image_size})"
    )


if __name__ == "__main__":
    main()
