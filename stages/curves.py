"""Stage: data-efficiency curves, probes on k-shot subsets of the cached features."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import torch
import torch.nn.functional as F

from stages import data, io, knn, linear, verdict
from stages.errors import cli
from stages.params import load_params, to_dict
from stages.probe import C_grid

KINDS = ("pretrained", "random_init", "raw_pixels")
PROBES = ("linear", "knn")
CSV_FILE = "data_efficiency.csv"
SUMMARY_FILE = "summary.json"
FIGURE_FILE = "data_efficiency.png"
CPU = torch.device("cpu")


def kshot_subsets(
    labels: np.ndarray, shots: tuple[int | None, ...], *, seed: int
) -> dict[int | None, np.ndarray]:
    """Per shot count, sorted indices with that many items of every class (None: all).

    One permutation per class and seed, cut at each count: the subsets are nested.
    """
    rng = np.random.default_rng(seed)
    members = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    return {
        shot: np.sort(np.concatenate([m[:shot] if shot is not None else m for m in members]))
        for shot in shots
    }


def linear_probe_accuracy(
    *,
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    val_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    grid: np.ndarray,
    max_iter: int,
    device: torch.device = CPU,
) -> float:
    """Test accuracy of the k-shot fit whose C scored best on val.

    The probe's own solver (stages/linear.py, warm-started along the grid), without the
    probe's refit on train+val: that would add val's labels to a k-shot training set.
    """
    classes = np.unique(train_labels)

    def tensor(features: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)

    train_x = tensor(train_features)
    mean, scale = linear.standardise(train_x)  # train statistics only
    train_x = (train_x - mean) / scale
    val_x, test_x = (tensor(val_features) - mean) / scale, (tensor(test_features) - mean) / scale
    train_y = torch.as_tensor(np.searchsorted(classes, train_labels), device=device)

    def predict(x: torch.Tensor, head: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
        weight, bias = head
        return classes[(x @ weight.T + bias).argmax(1).cpu().numpy()]

    best, best_score, previous = None, -1.0, None
    for C in sorted(float(c) for c in grid):
        weight, bias, _ = linear.fit_logistic(
            train_x, train_y, C=C, num_classes=len(classes), max_iter=max_iter, init=previous
        )
        previous = (weight, bias)
        score = float((predict(val_x, previous) == val_labels).mean())
        if score > best_score:  # strict: ties keep the smaller C, the stronger prior
            best_score, best = score, previous
    return float((predict(test_x, best) == test_labels).mean())


def raw_pixels(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, C) -> flat float32 pixels in [0, 1], area-downsampled to <= size."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    if max(x.shape[-2:]) > size:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x.flatten(1).numpy()


def summarise(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """{series: {shot: {mean, std, seeds, accuracy_by_seed}}} from per-seed rows."""
    out: dict[str, dict[str, dict]] = {}
    for row in rows:
        cell = out.setdefault(row["series"], {}).setdefault(row["shot"], {"by_seed": {}})
        cell["by_seed"][row["seed"]] = row["accuracy"]
    for series in out.values():
        for cell in series.values():
            values = np.array(list(cell["by_seed"].values()))
            cell["mean"] = float(values.mean())
            cell["std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


def shot_label(shot: int | None) -> str:
    return "all" if shot is None else str(shot)


@cli
def main() -> None:
    from stages import report, tracking

    params = load_params()
    config = params.curves
    splits = {}
    for split in data.SPLITS:
        prepared = data.load_prepared(params.paths.prepared, split)
        splits[split] = {
            "pretrained": io.load_array(io.split_file(params.paths.features, split, "features")),
            "random_init": io.load_array(
                io.split_file(params.paths.random_features, split, "features")
            ),
            "raw_pixels": raw_pixels(prepared.images, config.pixel_size),
            "labels": prepared.labels,
        }
    train_y = splits["train"]["labels"]
    logged = {
        "curves": to_dict(config),
        "probe": to_dict(params.probe),
        "knn": to_dict(params.knn),
        "verdict": to_dict(params.verdict),
    }
    rows: list[dict] = []
    start = time.perf_counter()
    with tracking.stage_run("curves", logged, required=params.tracking.required) as run:
        seen: dict[tuple, float] = {}  # identical subsets (e.g. 'all') are fitted once
        for seed in range(config.seeds):
            for shot, index in kshot_subsets(train_y, config.shots, seed=seed).items():
                for kind in KINDS:
                    train_x = splits["train"][kind][index]
                    for probe in PROBES:
                        key = (kind, probe, index.tobytes())
                        if key not in seen:
                            seen[key] = _score(probe, train_x, train_y[index], splits, kind, params)
                        rows.append(
                            {
                                "series": f"{kind}_{probe}",
                                "shot": shot_label(shot),
                                "seed": seed,
                                "accuracy": seen[key],
                                "subset": hashlib.md5(index.tobytes()).hexdigest(),
                            }
                        )
        summary = summarise(rows)
        comparisons = verdict.curve_comparisons(
            rows,
            verdict.probe_pairs(),
            config=params.verdict,
            transferred=params.backbone.weights != "none",
        )
        out = params.paths.curves
        io.write_text(out / CSV_FILE, report.curve_csv(summary, config.shots, train_y))
        report.plot_curves(summary, config.shots, train_y, out / FIGURE_FILE)
        io.write_json(out / SUMMARY_FILE, {"series": summary, "comparisons": comparisons})
        run.log_artifact(out / FIGURE_FILE)
        run.log_artifact(out / SUMMARY_FILE)
        seconds = time.perf_counter() - start
        run.log_metrics({"seconds": seconds, "fits": len(seen)})
    print(f"curves: {len(seen)} distinct fits in {seconds:.1f} s")


def _score(probe: str, train_x, train_y, splits, kind: str, params) -> float:
    if probe == "linear":
        return linear_probe_accuracy(
            train_features=train_x,
            train_labels=train_y,
            val_features=splits["val"][kind],
            val_labels=splits["val"]["labels"],
            test_features=splits["test"][kind],
            test_labels=splits["test"]["labels"],
            grid=C_grid(params.probe),
            max_iter=params.probe.max_iter,
        )
    probs = knn.knn_predict_proba(
        bank_features=train_x,
        bank_labels=train_y,
        query_features=splits["test"][kind],
        k=params.knn.k,
        T=params.knn.T,
        num_classes=int(splits["train"]["labels"].max()) + 1,
    )
    return float((probs.argmax(1) == splits["test"]["labels"]).mean())


if __name__ == "__main__":
    main()
