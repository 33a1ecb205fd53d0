"""The backbone comparison's outputs: leaderboard, DVC metrics and plot table, PNG."""

import csv
import io as text_io

import numpy as np
import pytest
from scipy import stats

from transferlab.evaluation.drivers import rank
from transferlab.evaluation.rendering import figures, report, tables, words
from transferlab.params import Verdict

N_TEST = 10000


def nested(accuracy: float, start: int = 0) -> np.ndarray:
    """Correctness on N_TEST images: right on `accuracy` of them, from image `start` on."""
    correct = np.zeros(N_TEST, bool)
    correct[start : start + round(accuracy * N_TEST)] = True
    return correct


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
    correct = {
        accuracy: {key: [nested(row[accuracy])] for key, row in rows.items() if accuracy in row}
        for accuracy in (*rank.PROBE_ACCURACIES, "full_accuracy")
    }
    out.update(rank.judged(rows, correct, config=Verdict(confidence=0.95, adjust="holm")))
    out["intervals"] = rank.probe_intervals(correct, config=Verdict(confidence=0.95, adjust="holm"))
    return out


def test_leaderboard_ranks_scores_accuracies_and_taus():
    text = "\n".join(report.leaderboard(record(), ("full", "scratch")))
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0].split(" | ")[-1] == "full acc. |"  # scratch was never trained: no column
    assert table[1].startswith("| 1 | big (m1) | bundled | 3.37 | 1280 | 2.50 | 0.4000 | 4.00 |")
    assert table[1].endswith("| 0.8500 | 0.8300 | 0.9000 |")
    assert table[3].startswith("| 3 | rand (m0) | none |") and table[3].endswith("| - |")
    assert "Best by probe accuracy: **big**, +0.0500 over small: beyond the noise" in text
    # kNN: 0.83 against 0.81, big alone right on 200 images, small alone on none
    assert (
        "Best by knn accuracy: **big**, +0.0200 over small: beyond the noise (+2.0 points" in text
    )
    assert "McNemar exact, 10000 paired test images, p<1e-10)" in text  # 200 against 0
    assert "over rand" not in text  # random init is never a best nor a runner-up
    taus = [line for line in table if line.startswith("| logme |")]
    assert taus == ["| logme | 1.00 | 1.00 | - |"]  # full: one candidate trained


def test_dvc_metrics_leave_out_what_the_machine_decides():
    metrics = rank.metrics(record())
    assert set(metrics) == {"big", "small", "rand"}
    assert "images_per_s" not in metrics["big"] and "input_size" not in metrics["big"]
    assert metrics["big"]["full_accuracy"] == 0.90 and metrics["rand"]["logme"] == 0.05
    assert "pretrained" not in metrics["big"]  # a flag, not a number to compare


def exact_interval(accuracy: float) -> list[float]:
    """scipy's exact (Clopper-Pearson) 95% interval of `accuracy` on the N_TEST images."""
    ci = stats.binomtest(round(accuracy * N_TEST), N_TEST).proportion_ci(0.95, method="exact")
    return [ci.low, ci.high]


def test_each_probe_accuracy_has_its_exact_interval_on_the_test_images():
    out = record()
    assert out["intervals"]["confidence"] == 0.95
    for column in rank.PROBE_ACCURACIES:
        assert set(out["intervals"][column]) == {"big", "small", "rand"}
        for key, (low, high) in out["intervals"][column].items():
            accuracy = out["candidates"][key][column]
            assert [low, high] == pytest.approx(exact_interval(accuracy), abs=1e-6)
            assert low < accuracy < high
    assert "full_accuracy" not in out["intervals"]  # the plots draw the probes only


def test_plot_table_has_each_accuracy_with_its_interval():
    rows = list(csv.DictReader(text_io.StringIO(tables.table_csv(record()))))
    assert [r["backbone"] for r in rows] == ["big", "small", "rand"]  # ranked
    assert [r["ms_per_image"] for r in rows] == ["2.5", "2.0", "2.0"]
    for r in rows:
        for column in rank.PROBE_ACCURACIES:
            # the columns .dvc/plots/backbones.json reads for the y column's error bar
            low, accuracy, high = (float(r[column + s]) for s in ("_low", "", "_high"))
            assert low <= accuracy <= high
            assert [low, high] == pytest.approx(exact_interval(accuracy), abs=1e-6)
    assert rows[0]["probe_accuracy"] == "0.85" and rows[2]["knn_accuracy"] == "0.75"


def test_png_spans_the_intervals_and_names_candidates_in_a_legend(tmp_path, monkeypatch):
    drawn = []
    save = figures.save_figure
    monkeypatch.setattr(
        figures, "save_figure", lambda fig, path: (drawn.append(fig), save(fig, path))
    )
    path = tmp_path / "backbones.png"
    out = record()
    figures.plot_cost(out, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (ax,) = drawn[0].axes
    bounds = [b for c in rank.PROBE_ACCURACIES for i in out["intervals"][c].values() for b in i]
    bottom, top = ax.get_ylim()
    assert bottom <= min(bounds) and top >= max(bounds)  # not zoomed to the points alone
    assert not ax.texts  # no labels beside the points to collide
    legends = [ax.get_legend(), *[a for a in ax.artists if hasattr(a, "get_texts")]]
    names = {t.get_text() for legend in legends for t in legend.get_texts()}
    assert names == {"big", "small", "rand", "linear probe", "kNN"}
    assert "95% interval" in ax.get_ylabel()


def test_the_conclusion_names_the_pick_the_best_its_test_and_interval():
    gap = record()["gaps"]["probe_accuracy"]
    ci = stats.binomtest(500, 500, 0.5).proportion_ci(0.95, method="exact")
    assert (gap["low"], gap["high"]) == pytest.approx((0.05 * (2 * ci.low - 1), 0.05), abs=1e-6)
    assert words.conclusion(record()) == (
        "Backbones: logme ranked big > small > rand. By linear-probe test accuracy big is "
        f"best, +5.0 points [{100 * gap['low']:.1f}, 5.0] (95% interval; McNemar exact, 10000 "
        "paired test images, p<1e-10) against small: beyond the noise."
    )
    close = record()
    close["gaps"]["probe_accuracy"].update(
        verdict="inconclusive", gain=0.0024, low=-0.0005, high=0.0053, p=0.11
    )
    assert words.conclusion(close).endswith(
        "+0.2 points [-0.1, 0.5] (95% interval; McNemar exact, 10000 paired test images, "
        "p=0.11) against small: within the noise, so not distinguishable."
    )
    alone = {**record(), "gaps": {"probe_accuracy": None}}
    assert "no best to name" in words.conclusion(alone)


def test_fine_tuned_gaps_are_judged_on_the_saved_predictions(params, tmp_path):
    """with_finetuned loads each chosen candidate's seeds' test predictions from
    data/methods and judges the best against the runner-up on them."""
    import dataclasses

    from transferlab import io

    paths = dataclasses.replace(params.paths, methods=tmp_path)
    config = dataclasses.replace(
        params,
        paths=paths,
        backbones={"big": params.backbones["tiny"], "small": params.backbones["tiny"]},
        finetune=dataclasses.replace(params.finetune, strategies=("full",), from_probe=()),
    )
    labels = np.zeros(N_TEST, np.int64)
    for key, start in (("big", 0), ("small", 300)):
        for method in ("probe", "knn", "full"):
            right = nested(0.9, start)
            probs = np.stack([right, ~right], 1).astype(np.float32)  # class 0 where right
            io.save_array(io.method_dir(tmp_path, method, key) / io.predictions_file(0), probs)
    rows = {
        key: {
            "pretrained": True,
            "logme": 0.0,
            "hscore": 0.0,
            "probe_accuracy": 0.9,
            "knn_accuracy": 0.9,
        }
        for key in ("big", "small")
    }
    base = {
        "by": "logme",
        "order": ["big", "small"],
        "selected": ["big", "small"],
        "candidates": rows,
    }
    out, correct = rank.with_finetuned(base, config, labels)
    assert out["candidates"]["big"]["full_accuracy"] == 0.9
    assert set(correct) == {"probe_accuracy", "knn_accuracy", "full_accuracy"}
    assert len(correct["full_accuracy"]["big"]) == config.finetune.seeds  # the seeds behind it
    full = out["gaps"]["full_accuracy"]
    # the same accuracy, but 300 images apart each way: McNemar sees 300 against 300
    assert full["gain"] == 0 and full["verdict"] == "inconclusive"
    assert full["test"] == "McNemar exact, 10000 paired test images" and full["p"] == 1.0
    # the plots' intervals come from the saved probe predictions, at verdict.confidence
    assert out["intervals"]["confidence"] == config.verdict.confidence == 0.95
    assert out["intervals"]["probe_accuracy"]["small"] == pytest.approx(exact_interval(0.9))
