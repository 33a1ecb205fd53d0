import numpy as np
import pytest

from transferlab.evaluation import report


def test_ece_of_calibrated_and_overconfident_predictions():
    labels = np.array([0, 0, 0, 1])
    calibrated = np.tile([0.75, 0.25], (4, 1))  # 75% confident, 75% right
    assert report.expected_calibration_error(labels, calibrated) == pytest.approx(0.0)
    over = np.tile([0.95, 0.05], (4, 1))
    assert report.expected_calibration_error(labels, over) == pytest.approx(0.2)


def test_per_class_accuracy_is_recall():
    labels = np.array([0, 0, 1, 1])
    probs = np.eye(2)[[0, 1, 1, 1]]
    assert report.per_class_accuracy(labels, probs, ("a", "b")) == {"a": 0.5, "b": 1.0}


def test_history_and_curve_tables_for_dvc_plots():
    history = [{"epoch": 1, "train_loss": 1.25}, {"epoch": 2, "train_loss": 0.5}]
    assert report.history_csv(history, "train_loss") == "epoch,train_loss\n1,1.250000\n2,0.500000\n"
    train_labels = np.repeat([0, 1], [7, 4])
    assert report.shot_counts((1, 5, 10, None), train_labels) == [1, 5, 7, 7]
    cell = {"mean": 0.5, "std": 0.1}
    text = report.curve_csv(
        {"a": {"1": cell, "all": {"mean": 0.9, "std": 0.0}}}, (1, None), train_labels
    )
    assert text.splitlines() == ["shots,a,a_std", "1,0.500000,0.100000", "7,0.900000,0.000000"]


def test_report_orders_shot_counts_by_number(tmp_path):
    cell = {"mean": 0.5, "std": 0.1, "by_seed": {"0": 0.5}}
    text = report.render(
        metrics={"probe": {"accuracy": 0.8, "macro_f1": 0.8, "ece": 0.05}, "transfer": {}},
        per_class={},
        curve_summary={"pretrained_linear": {"10": cell, "5": cell, "all": cell}},
        curve_verdicts={},
        figures=[],
        root=tmp_path,
    )
    assert "| series | 5 | 10 | all |" in text
    assert "| probe | 0.8000 | 0.8000 | 0.0500 |" in text


def test_curve_figure_is_a_png(tmp_path):
    cell = {"mean": 0.5, "std": 0.1}
    path = tmp_path / "curve.png"
    report.plot_curves(
        {"pretrained_linear": {"1": cell, "all": cell}}, (1, None), np.array([0, 0, 1]), path
    )
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_conclusions_say_who_beats_whom_by_how_much_and_how_sure():
    from transferlab.evaluation.report import conclusions

    verdicts = {
        "full_vs_scratch": {"verdict": "positive", "gain": 0.2932, "spread": 0.022, "seeds": 1},
        "lpft_vs_scratch": {"verdict": "negative", "gain": -0.05, "spread": 0.01, "seeds": 3},
        "linear_vs_raw_pixels": {
            "verdict": "inconclusive",
            "gain": 0.0038,
            "spread": 0.0091,
            "seeds": 1,
        },
    }
    full, lpft, pixels = conclusions(verdicts)
    assert full == (
        "Full fine-tuning beats training the same architecture from scratch by 29.3 points: "
        "positive (one seed, against a noise spread of 2.2 points)."
    )
    assert lpft.startswith("LP-FT (fine-tuning from the linear probe's head) is worse than")
    assert "by 5.0 points: negative transfer (over 3 paired seeds, spread 1.0 points)" in lpft
    assert pixels == (
        "A linear probe on the pretrained features is not distinguishable from one on raw "
        "pixels: 0.4 points ahead, within the noise, so inconclusive (one seed, against a noise "
        "spread of 0.9 points)."
    )


def test_html_report_inlines_its_figures(tmp_path):
    from transferlab.evaluation.report import to_html

    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"\x89PNG fake")
    page = to_html("# Report\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![a](figures/a.png)\n", tmp_path)
    assert "<table>" in page and "<h1>Report</h1>" in page
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in page and "figures/a.png" not in page
