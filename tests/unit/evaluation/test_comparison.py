"""The backbone comparison's outputs: leaderboard, DVC metrics and plot table, PNG."""

from transferlab.evaluation import comparison
from transferlab.params import Verdict


def row(model, pretrained, logme, probe, knn, rate, **more):
    return {
        "model": model,
        "weights": "bundled" if pretrained else "none",
        "pretrained": pretrained,
        "parameters": 3_371_008,
        "feature_dim": 1280,
        "input_size": 64,
        "images_per_s": rate,
        "extract_device": "cpu",
        "logme": logme,
        "hscore": 10 * logme,
        "probe_val_accuracy": probe,
        "knn_val_accuracy": knn,
        "probe_accuracy": probe,
        "knn_accuracy": knn,
        **more,
    }


def record():
    rows = {
        "big": row("m1", True, 0.40, 0.85, 0.83, 400.0, full_accuracy=0.90),
        "small": row("m0", True, 0.30, 0.80, 0.81, 500.0),
        "rand": row("m0", False, 0.05, 0.70, 0.75, 500.0),
    }
    out = {"by": "logme", "order": ["big", "small", "rand"], "selected": ["big"]}
    out["candidates"] = rows
    config = Verdict(confidence=0.95, single_seed_factor=3.0)
    accuracies = (*comparison.PROBE_ACCURACIES, "full_accuracy")
    out.update(comparison.judged(rows, accuracies, n_test=10000, config=config))
    return out


def test_leaderboard_ranks_scores_accuracies_and_taus():
    text = "\n".join(comparison.leaderboard(record(), ("full", "scratch")))
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0].split(" | ")[-1] == "full acc. |"  # scratch was never trained: no column
    assert table[1].startswith("| 1 | big (m1) | bundled | 3.37 | 1280 | 2.50 | 0.4000 | 4.00 |")
    assert table[1].endswith("| 0.8500 | 0.8300 | 0.9000 |")
    assert table[3].startswith("| 3 | rand (m0) | none |") and table[3].endswith("| - |")
    assert "Best by probe accuracy: **big**, +0.0500 over small: beyond the noise" in text
    # kNN: 0.83 against 0.81, 0.02 > 3 x sqrt(2 x 0.83 x 0.17 / 10000) = 0.0159: beyond it.
    assert "Best by knn accuracy: **big**, +0.0200 over small: beyond the noise" in text
    assert "over rand" not in text  # random init is never a best nor a runner-up
    taus = [line for line in table if line.startswith("| logme |")]
    assert taus == ["| logme | 1.00 | 1.00 | - |"]  # full: one candidate trained


def test_dvc_metrics_leave_out_what_the_machine_decides():
    metrics = comparison.metrics(record())
    assert set(metrics) == {"big", "small", "rand"}
    assert "images_per_s" not in metrics["big"] and "input_size" not in metrics["big"]
    assert metrics["big"]["full_accuracy"] == 0.90 and metrics["rand"]["logme"] == 0.05
    assert "pretrained" not in metrics["big"]  # a flag, not a number to compare


def test_plot_table_and_png(tmp_path):
    assert comparison.table_csv(record()).splitlines() == [
        "backbone,ms_per_image,probe_accuracy,knn_accuracy",
        "big,2.5,0.85,0.83",
        "small,2.0,0.8,0.81",
        "rand,2.0,0.7,0.75",
    ]
    path = tmp_path / "backbones.png"
    comparison.plot_cost(record(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_conclusion_names_the_pick_the_best_and_the_noise():
    text = comparison.conclusion(record(), 3.0)
    assert text == (
        "Backbones: logme ranked big > small > rand. By linear-probe test accuracy big is "
        "best, 5.0 points ahead of small: beyond 3 x its noise spread of 0.5 points."
    )
    close = record()
    close["gaps"]["probe_accuracy"].update(verdict="inconclusive", gain=0.0024, spread=0.0052)
    assert comparison.conclusion(close, 3.0).endswith(
        "0.2 points ahead of small: within 3 x its noise spread of 0.5 points, so not "
        "distinguishable."
    )
    alone = {**record(), "gaps": {"probe_accuracy": None}}
    assert "no best to name" in comparison.conclusion(alone, 3.0)
