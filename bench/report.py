"""bench.json helpers: the environment a run measured and the table it prints."""

from __future__ import annotations

import platform

import timm
import torch

from transferlab.device import feed


def environment(device: torch.device) -> dict:
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "device_type": device.type,
        "cpus": feed.usable_cpus(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def table(report: dict) -> str:
    """The figures people compare, one row each."""
    e, f, p, r = report["extract"], report["finetune"], report["probe"], report["reference_loader"]
    rows = [
        ("device", report["device"], ""),
        (
            "extract img/s (ceiling, ratio)",
            f"{e['images_per_s']:.0f}",
            f"{e['ceiling_images_per_s']:.0f}, {e['ratio']:.2f}x",
        ),
        (
            "finetune img/s (ceiling, ratio)",
            f"{f['images_per_s']:.0f}",
            f"{f['ceiling_images_per_s']:.0f}, {f['ratio']:.2f}x",
        ),
        ("PIL+DataLoader img/s (workers)", f"{r['images_per_s']:.0f}", f"{r['workers']}"),
        ("extract peak RSS MiB", f"{e['peak_rss_mb']:.0f}", ""),
        (
            f"probe fit s ({p['backend']}) / sklearn",
            f"{p['fit_seconds']:.2f}",
            f"{p['sklearn_fit_seconds']:.2f}, {p['speedup_over_sklearn']:.1f}x faster",
        ),
        ("probe test acc / sklearn", f"{p['accuracy']:.4f}", f"{p['sklearn_accuracy']:.4f}"),
        (
            f"probe grid of {p['grid_size']} s",
            f"{p['grid_seconds']:.2f}",
            f"sklearn {p['sklearn_grid_seconds']:.2f}" if "sklearn_grid_seconds" in p else "",
        ),
    ]
    width = max(len(label) for label, _, _ in rows)
    return "\n".join(f"{label:<{width}}  {value:>10}  {extra}" for label, value, extra in rows)
