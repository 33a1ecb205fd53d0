"""Stage curves: data-efficiency curves, linear and kNN probes on k-shot subsets of the cached
features, against random-init features and raw pixels."""

from __future__ import annotations

import time

from transferlab import io, tracking
from transferlab.data.prepared import SPLITS, load_features, load_prepared
from transferlab.errors import cli
from transferlab.evaluation import report, verdict
from transferlab.evaluation.curves import probe_rows, raw_pixels
from transferlab.evaluation.kshot import CSV_FILE, FIGURE_FILE, SUMMARY_FILE, summarise
from transferlab.evaluation.probe import C_grid
from transferlab.params import load_params, to_dict


@cli
def main() -> None:
    params = load_params()
    config, paths = params.curves, params.paths
    features, labels = {}, {}
    for split in SPLITS:
        images = load_prepared(paths.prepared, split)
        features[split] = {
            "pretrained": load_features(paths.features, split)[0],
            "random_init": load_features(paths.random_features, split)[0],
            "raw_pixels": raw_pixels(images.images, config.pixel_size),
        }
        labels[split] = images.labels
    logged = {
        section: to_dict(getattr(params, section))
        for section in ("curves", "probe", "knn", "verdict")
    }
    start = time.perf_counter()
    with tracking.stage_run("curves", params, logged) as run:
        run.clock.ready()
        rows, fits = probe_rows(
            features,
            labels,
            shots=config.shots,
            seeds=config.seeds,
            grid=C_grid(params.probe),
            max_iter=params.probe.max_iter,
            knn_k=params.knn.k,
            knn_T=params.knn.T,
        )
        summary = summarise(rows)
        comparisons = verdict.curve_comparisons(
            rows,
            verdict.probe_pairs(),
            config=params.verdict,
            transferred=params.backbone.weights != "none",
        )
        out = paths.curves
        io.write_text(out / CSV_FILE, report.curve_csv(summary, config.shots, labels["train"]))
        report.plot_curves(summary, config.shots, labels["train"], out / FIGURE_FILE)
        run.publish(
            record={"series": summary, "comparisons": comparisons},
            record_path=out / SUMMARY_FILE,
            metrics={"seconds": time.perf_counter() - start, "fits": fits},
            artifacts=[out / FIGURE_FILE],
        )
    print(f"curves: {fits} distinct fits in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
