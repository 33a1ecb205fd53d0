"""Stage 2: embed every prepared split with the frozen backbone."""

from __future__ import annotations

import resource
import sys
import time

import numpy as np
import torch
from torch import nn

from stages import backbone, data, distributed, guards, io
from stages.backbone import InputConfig
from stages.errors import UserError, cli
from stages.params import Params, load_params, to_dict


def extract_features(
    model: nn.Module,
    images: np.ndarray,
    config: InputConfig,
    *,
    batch_size: int,
    device: torch.device,
    desc: str = "extract",
) -> np.ndarray:
    """Pooled pre-logit features (N, D) float32 for uint8 images (N, H, W, C)."""
    # create_backbone(num_classes=0) leaves timm's pooled pre-logits as the output.
    # On CUDA OOM the split is redone with half the batch (padding keeps outputs the same).
    return guards.OomBackoff(batch_size, desc=desc).run(
        lambda size: backbone.forward_batches(
            model, images, config, batch_size=size, device=device, desc=desc
        )
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


REFERENCE = "random"  # `python -m stages.extract random`: the random-init reference


@cli
def main() -> None:
    params = load_params()
    reference = sys.argv[1:] == [REFERENCE]
    if sys.argv[1:] and not reference:
        raise UserError(f"usage: python -m stages.extract [{REFERENCE}]")
    with distributed.process_group(backbone.resolve_device(params.extract.device)) as device:
        run_extract(params, device, reference=reference)


def run_extract(params: Params, device: torch.device, *, reference: bool) -> None:
    """Embed every split (this rank's shard under torchrun); rank 0 writes and logs."""
    from stages import tracking

    weights = "none" if reference else params.backbone.weights
    out = params.paths.random_features if reference else params.paths.features
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    # timm's init draws from torch's global RNG: seed it in a scope so 'none' is repeatable.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.backbone.seed)
        model = backbone.create_backbone(params.backbone.name, weights)
    distributed.broadcast_module(model, device)  # one model on every rank
    config = backbone.input_config(model, params.backbone.image_size)
    batch_size = params.extract.batch_size
    logged = {"backbone": {**to_dict(params.backbone), "weights": weights}}
    logged["extract"] = to_dict(params.extract)
    stage = f"extract@{REFERENCE}" if reference else "extract"
    with (
        guards.deterministic(device),
        tracking.stage_run(stage, logged, required=params.tracking.required) as run,
    ):
        images_done, seconds = 0, 0.0
        for split in data.SPLITS:
            part = data.load_prepared(params.paths.prepared, split)
            start, stop = distributed.shard_bounds(len(part), block=batch_size)
            began = time.perf_counter()
            local = extract_features(
                model,
                part.images[start:stop],
                config,
                batch_size=batch_size,
                device=device,
                desc=f"extract {split} [{start}:{stop}]",
            )
            features = distributed.gather_rows(local, len(part), block=batch_size, device=device)
            seconds += time.perf_counter() - began
            images_done += len(part)
            if distributed.is_main():
                io.save_array(io.split_file(out, split, "features"), features)
                io.save_array(io.split_file(out, split, "labels"), part.labels)
        if not distributed.is_main():
            return
        report = {
            "device": str(device),
            "processes": distributed.world_size(),
            "images": images_done,
            "seconds": round(seconds, 3),
            "images_per_s": round(images_done / seconds, 1),
            "feature_dim": int(model.num_features),
            "input_size": config.size,
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
        run.log_metrics({"extract_images_per_s": report["images_per_s"]})
        if not reference:  # the extract report describes the backbone under study
            io.write_json(params.paths.extract_report, report)
            run.log_artifact(params.paths.extract_report)
        print(f"extracted {images_done} images at {report['images_per_s']} img/s on {device}")


if __name__ == "__main__":
    main()
