"""Stage extract: embed every prepared split with one candidate's frozen backbone.

`python -m stages.extract <backbone>` embeds with candidate <backbone> of params.yaml's
`backbones`; `python -m stages.extract --reference` embeds with the chosen candidate's
architecture, randomly initialised: the reference that isolates what its weights add.
"""

from __future__ import annotations

import sys
from pathlib import Path

from transferlab import io, tracking
from transferlab.device import distributed, guards, host
from transferlab.errors import UserError, cli
from transferlab.models import backbone
from transferlab.models.extract import embed_splits, frozen_backbone
from transferlab.params import Model, Params, load_params, to_dict
from transferlab.selection import chosen_model
from transferlab.timeline import StageClock
from transferlab.tracking import StageRun

REFERENCE = "--reference"


@cli
def main() -> None:
    params = load_params()
    if len(sys.argv) != 2:
        raise UserError(f"usage: python -m stages.extract <backbone> | {REFERENCE}")
    key = sys.argv[1]
    model_spec, _, stage = target(params, key)
    logged = {"backbone": to_dict(model_spec), "extract": to_dict(params.extract)}
    with tracking.stage_run(stage, params, logged) as recorder:
        line = run(params, recorder, key)
    if line:  # rank 0's; under torchrun the other ranks say nothing
        print(line)


def target(params: Params, key: str) -> tuple[Model, Path, str]:
    """(the model, its features' folder, the stage's name) for a candidate or REFERENCE."""
    if key == REFERENCE:
        return chosen_model(params, weights="none"), params.paths.random_features, "extract_random"
    return params.model(key), params.paths.features / key, f"extract@{key}"


def run(params: Params, recorder: StageRun, key: str) -> str | None:
    """The stage for candidate `key` (or REFERENCE): every split's features and the
    extraction report; returns its summary on rank 0, None on the others."""
    model_spec, out, _ = target(params, key)
    with distributed.process_group(host.resolve_device(params.extract.device)) as device:
        model = frozen_backbone(
            model_spec.name, model_spec.weights, seed=model_spec.seed, device=device
        )
        config = backbone.input_config(model, model_spec.image_size)
        with guards.deterministic(device):
            done = embed_splits(
                model,
                config,
                source=params.paths.prepared,
                out=out,
                batch_size=params.extract.batch_size,
                device=device,
                clock=recorder.clock,
            )
        if not distributed.is_main():
            return None
        recorder.clock.computed()  # the steady rate: past the first batch, before writing
        report = extraction_report(key, model_spec, done, config.size, device, recorder.clock)
        # Each candidate's report joins the comparison; the reference's is its timing only.
        recorder.publish(
            record=None if key == REFERENCE else report,
            record_path=io.backbone_file(params.paths.extract_report, key),
            metrics={"extract_images_per_s": report["images_per_s"]},
        )
    return f"extracted {done.images} images at {report['images_per_s']} img/s on {device}"


def extraction_report(key: str, spec: Model, done, size, device, clock: StageClock) -> dict:
    """What the comparison reads of an extraction: size, width, input, speed and memory."""
    return {
        "backbone": key,
        "model": spec.name,
        "weights": spec.weights,
        "parameters": done.parameters,
        "feature_dim": done.feature_dim,
        "input_size": size,
        "device": str(device),
        "processes": distributed.world_size(),
        "images": done.images,
        "seconds": round(done.seconds, 3),
        "images_per_s": round(done.images / done.seconds, 1),
        "steady_images_per_s": clock.parts()["steady_items_per_s"],
        "peak_rss_mb": round(host.peak_rss_mb(), 1),
    }


if __name__ == "__main__":
    main()
