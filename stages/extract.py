"""Stage 2: embed every prepared split with the frozen backbone."""

from __future__ import annotations

import resource
import time

import numpy as np
import torch
from torch import nn

from stages import backbone, data, io
from stages.backbone import InputConfig
from stages.errors import cli
from stages.params import load_params, to_dict


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
    return backbone.forward_batches(
        model, images, config, batch_size=batch_size, device=device, desc=desc
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@cli
def main() -> None:
    from stages import tracking

    params = load_params()
    device = backbone.resolve_device(params.extract.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = backbone.create_backbone(params.backbone.name, params.backbone.weights)
    config = backbone.input_config(model, params.backbone.image_size)
    logged = {"backbone": to_dict(params.backbone), "extract": to_dict(params.extract)}
    with tracking.stage_run("extract", logged) as run:
        images_done, seconds = 0, 0.0
        for split in data.SPLITS:
            part = data.load_prepared(params.paths.prepared, split)
            start = time.perf_counter()
            features = extract_features(
                model,
                part.images,
                config,
                batch_size=params.extract.batch_size,
                device=device,
                desc=f"extract {split}",
            )
            seconds += time.perf_counter() - start
            images_done += len(part)
            io.save_array(io.split_file(params.paths.features, split, "features"), features)
            io.save_array(io.split_file(params.paths.features, split, "labels"), part.labels)
        report = {
            "device": str(device),
            "images": images_done,
            "seconds": round(seconds, 3),
            "images_per_s": round(images_done / seconds, 1),
            "feature_dim": int(model.num_features),
            "input_size": config.size,
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
        io.write_json(params.paths.extract_report, report)
        run.log_metrics({"extract_images_per_s": report["images_per_s"]})
        run.log_artifact(params.paths.extract_report)
        print(f"extracted {images_done} images at {report['images_per_s']} img/s on {device}")


if __name__ == "__main__":
    main()
