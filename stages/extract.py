"""Stage extract: embed every prepared split with the frozen backbone.

`python -m stages.extract random` embeds with the same architecture, randomly initialised:
the reference that isolates what the pretrained weights add.
"""

from __future__ import annotations

import sys

from transferlab import tracking
from transferlab.device import distributed, guards, host
from transferlab.errors import UserError, cli
from transferlab.models import backbone
from transferlab.models.extract import embed_splits, frozen_backbone
from transferlab.params import load_params, to_dict

REFERENCE = "random"


@cli
def main() -> None:
    params = load_params()
    reference = sys.argv[1:] == [REFERENCE]
    if sys.argv[1:] and not reference:
        raise UserError(f"usage: python -m stages.extract [{REFERENCE}]")
    weights = "none" if reference else params.backbone.weights
    out = params.paths.random_features if reference else params.paths.features
    stage = f"extract@{REFERENCE}" if reference else "extract"
    logged = {"backbone": {**to_dict(params.backbone), "weights": weights}}
    logged["extract"] = to_dict(params.extract)
    with distributed.process_group(host.resolve_device(params.extract.device)) as device:
        model = frozen_backbone(
            params.backbone.name, weights, seed=params.backbone.seed, device=device
        )
        config = backbone.input_config(model, params.backbone.image_size)
        with guards.deterministic(device), tracking.stage_run(stage, params, logged) as run:
            done = embed_splits(
                model,
                config,
                source=params.paths.prepared,
                out=out,
                batch_size=params.extract.batch_size,
                device=device,
                clock=run.clock,
            )
            if not distributed.is_main():
                return
            report = {
                "device": str(device),
                "processes": distributed.world_size(),
                "images": done.images,
                "seconds": round(done.seconds, 3),
                "images_per_s": round(done.images / done.seconds, 1),
                "feature_dim": done.feature_dim,
                "input_size": config.size,
                "peak_rss_mb": round(host.peak_rss_mb(), 1),
            }
            # The extract report describes the backbone under study, not the reference.
            run.publish(
                record=None if reference else report,
                record_path=params.paths.extract_report,
                metrics={"extract_images_per_s": report["images_per_s"]},
            )
    print(f"extracted {done.images} images at {report['images_per_s']} img/s on {device}")


if __name__ == "__main__":
    main()
