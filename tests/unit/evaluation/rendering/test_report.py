import csv
import io as text_io
from pathlib import Path

import numpy as np
import pytest

from transferlab.evaluation.rendering import figures, report, tables, words
from transferlab.evaluation.scores import calibration


def test_ece_of_calibrated_and_overconfident_predictions():
    labels = np.array([0, 0, 0, 1])
    calibrated = np.tile([0.75, 0.25], (4, 1))  # 75% confident, 75% right
    assert calibration.expected_calibration_error(labels, calibrated) == pytest.approx(0.0)
    over = np.tile([0.95, 0.05], (4, 1))
    assert calibration.expected_calibration_error(labels, over) == pytest.approx(0.2)


def test_per_class_accuracy_is_recall():
    labels = np.array([0, 0, 1, 1])
    probs = np.eye(2)[[0, 1, 1, 1]]
    assert calibration.per_class_accuracy(labels, probs, ("a", "b")) == {"a": 0.5, "b": 1.0}


def test_training_tables_put_every_method_in_one_table_per_value():
    """One CSV per value, every method's rows in it: DVC draws each as one chart with a line
    per method on a shared axis, not a chart (and a scale) per method."""
    histories = {
        "full": [
            {"epoch": 0, "train_loss": 2.5, "val_accuracy": 0.1},
            {"epoch": 1, "train_loss": 1.25, "val_accuracy": 0.75},
        ],
        "scratch": [{"epoch": 0, "train_loss": 2.0, "val_accuracy": 0.2}],
    }
    written = tables.training_tables(histories)
    assert list(written) == [f"{column}.csv" for column in tables.TRAINING_COLUMNS]
    assert written["train_loss.csv"].splitlines() == [
        "epoch,method,train_loss",
        "0,full,2.500000",
        "1,full,1.250000",
        "0,scratch,2.000000",
    ]
    rows = list(csv.DictReader(text_io.StringIO(written["val_accuracy.csv"])))
    assert {r["method"] for r in rows} == set(histories)
    assert [float(r["val_accuracy"]) for r in rows if r["method"] == "full"] == [0.1, 0.75]


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
    figures.plot_curves(
        {"pretrained_linear": {"1": cell, "all": cell}}, (1, None), np.array([0, 0, 1]), path
    )
    assert path.read_bytes()[:4] == b"\x89PNG"


MCNEMAR = "McNemar exact, 10000 paired test images"


def verdict(verdict, gain, low, high, p, test=MCNEMAR, seeds=1, **more):
    return {
        "verdict": verdict,
        "gain": gain,
        "low": low,
        "high": high,
        "confidence": 0.95,
        "level": 0.95,
        "p": p,
        "p_adjusted": p,
        "family": {"name": "alone", "size": 1, "adjust": "none"},
        "seeds": seeds,
        "test": test,
        "noise": "-",
        **more,
    }


VERDICTS = {
    "full_vs_scratch": verdict("positive", 0.2932, 0.2811, 0.3049, 1.2e-300),
    "lpft_vs_scratch": verdict(
        "negative", -0.05, -0.07, -0.03, 0.004, test="paired t over 3 seeds", seeds=3
    ),
    "linear_vs_raw_pixels": verdict("inconclusive", 0.0038, -0.0012, 0.0088, 0.13),
    "knn_vs_random_init": verdict(
        "inconclusive", 0.15, 0.14, 0.16, 1e-9, note="no pretrained weights: a gain is not transfer"
    ),
}


def test_conclusions_name_who_beats_whom_the_test_and_the_interval():
    from transferlab.evaluation.rendering.report import conclusions

    full, lpft, pixels, weights = conclusions(VERDICTS)
    assert full == (
        "Full fine-tuning beats training the same architecture from scratch: +29.3 points "
        "[28.1, 30.5] (95% interval; McNemar exact, 10000 paired test images, p<1e-10): "
        "positive."
    )
    assert lpft.startswith("LP-FT (fine-tuning from the linear probe's head) is worse than")
    assert lpft.endswith(
        ": -5.0 points [-7.0, -3.0] (95% interval; paired t over 3 seeds, p=0.004): "
        "negative transfer."
    )
    assert pixels == (
        "A linear probe on the pretrained features is not distinguishable from one on raw "
        "pixels: +0.4 points [-0.1, 0.9] (95% interval; McNemar exact, 10000 paired test "
        "images, p=0.13), within the noise, so inconclusive."
    )
    assert weights.endswith("p=1e-09); no pretrained weights: a gain is not transfer.")
    assert words.p_text(0.0) == "<1e-10" and words.p_text(0.0312) == "0.031"


def render(tmp_path, finetune_seeds=1):
    cell = {"mean": 0.5, "std": 0.1, "by_seed": {"0": 0.5}}
    return report.render(
        metrics={"probe": {"accuracy": 0.8, "macro_f1": 0.8, "ece": 0.05}, "transfer": VERDICTS},
        per_class={},
        curve_summary={"pretrained_linear": {"10": cell, "2": cell, "all": cell}},
        curve_verdicts={
            "linear_vs_raw_pixels": {  # as JSON gives them back: "10" before "2"
                "10": verdict("positive", 0.02, 0.01, 0.03, 0.01, "paired t over 3 seeds", 3),
                "2": verdict("inconclusive", 0.01, -0.01, 0.03, 0.2, "paired t over 3 seeds", 3),
                "all": VERDICTS["linear_vs_raw_pixels"],
            }
        },
        figures=[],
        root=tmp_path,
        finetune_seeds=finetune_seeds,
    )


def test_verdict_tables_give_each_test_interval_and_p_and_say_what_noise_it_measured(tmp_path):
    text = render(tmp_path)
    assert (
        "| full_vs_scratch | **positive** | +29.3 | [28.1, 30.5] | 95% | "
        + MCNEMAR
        + " | <1e-10 | <1e-10 |"
        in text
    )
    assert "No correction (verdict.adjust: none): each verdict at 95% alone." in text
    assert words.ONE_SEED_NOTE in text and "test-set sampling noise only" in text
    assert "seed to seed is unmeasured" in text and "finetune.seeds: 2 or more" in text
    assert words.PROBE_NOTE in text
    shots = [
        line.split(" | ")[1]
        for line in text.splitlines()
        if line.startswith("| linear_vs_raw_pixels | ") and line.count("|") == 10
    ]
    assert shots == ["2", "10", "all"]  # by number, not as JSON sorted them
    several = render(tmp_path, finetune_seeds=3)
    assert words.SEEDS_NOTE.format(seeds=3) in several and words.ONE_SEED_NOTE not in several
    assert "test-set sampling noise, shared by both arms, is not in it" in several


def test_html_report_inlines_its_figures(tmp_path):
    from transferlab.evaluation.rendering.report import to_html

    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"\x89PNG fake")
    page = to_html("# Report\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![a](figures/a.png)\n", tmp_path)
    assert "<table>" in page and "<h1>Report</h1>" in page
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in page and "figures/a.png" not in page


def _record(**changes) -> dict:
    history = [{"epoch": 0, "train_loss": 0.8, "val_accuracy": 0.82}]
    history.append({"epoch": 1, "train_loss": 0.5, "val_accuracy": 0.87})
    base = {"lr": 5e-4, "bn": "frozen", "val_accuracy": 0.87, "kept_epoch": 1, "epochs_run": 1}
    return {**base, "history": history, **changes}


def test_the_report_says_how_each_method_was_fine_tuned_and_whether_lr_was_tuned():
    untuned = "\n".join(report.training_lines({"lpft": _record(trainable_parameters=3_380_000)}))
    assert "| lpft | 0.0005 | frozen | 3.38 M | 0.8200 | 0.8700 (1) | 1 |" in untuned
    assert "Learning rates were not tuned" in untuned
    search = {
        "tried": [{"lr": 1e-3, "val_accuracy": 0.85}, {"lr": 5e-4, "val_accuracy": 0.87}],
        "chosen": 5e-4,
        "epochs_each": 2,
        "epochs": 4,
        "in_full": False,
        "seconds": 61.4,
    }
    lora = _record(lr_search=search, trainable_parameters=61_000, adapter_bytes=245_000)
    tuned = "\n".join(report.training_lines({"lora": lora}))
    assert "| lora | 0.0005 (chosen on val) | frozen | 61 k |" in tuned
    assert (
        "- lora: rates 0.001, 0.0005 tried for 2 epochs each (val 0.8500, 0.8700); 0.0005 won "
        "on val, then trained in full; the search cost 61 s, 4 epochs of training."
    ) in tuned
    assert "takes 0.245 MB on disk" in tuned
    assert (
        "Learning rates were chosen on val" in tuned and "only that model predicted test" in tuned
    )


def test_the_data_section_counts_names_a_few_and_counts_the_rest():
    card = {
        "source": "imagefolder",
        "content": "0123456789abcdef",
        "classes": ["cat", "dog"],
        "image_shape": [224, 224, 3],
        "splits": {
            "train": {"total": 40, "per_class": {"cat": 21, "dog": 19}},
            "val": {"total": 4, "per_class": {"cat": 2, "dog": 2}},
            "test": {"total": 10, "per_class": {"cat": 5, "dog": 5}},
        },
        "resolution": {
            "confidence": 0.95,
            "test_images": 10,
            "smallest_significant_gain": 0.6,
            "val_images": 4,
            "warnings": ["test: 10 images: too few", "val: 4 images: coarse"],
        },
    }
    broken = [{"file": f"cat/{i}.jpg", "reason": "truncated"} for i in range(7)]
    rejects = {"rejected": broken, "skipped": [{"file": "a.txt", "reason": "extension"}]}
    member = {"split": None, "dropped": True}
    duplicates = {
        "policy": "drop",
        "summary": {"groups": 1, "label_conflicts": 1, "leakage": 0, "dropped": 2},
        "groups": [
            {
                "label_conflict": True,
                "leakage": False,
                "members": [
                    {**member, "file": "cat/x.png", "label": "cat"},
                    {**member, "file": "dog/y.png", "label": "dog"},
                ],
            }
        ],
    }
    lines = report.data_lines(card, rejects, duplicates)
    text = "\n".join(lines)
    assert lines[0] == "## Data"
    assert "| cat | 21 | 2 | 5 |" in lines and "| **total** | **40** | **4** | **10** |" in lines
    assert "gains of 60.0 points or more significant at 95%" in text
    assert "- **Warning:** test: 10 images: too few" in lines
    assert "7 file(s) could not be read (truncated): `cat/0.jpg`" in text
    assert "`cat/4.jpg` and 2 more." in text  # five named, the rest counted
    assert "1 file(s) were never opened (extension): `a.txt`." in text
    assert "1 group(s) under different labels: `cat/x.png` (cat) = `dog/y.png` (dog)." in text
    rendered = report.render(
        metrics={}, per_class={}, curve_summary={}, curve_verdicts={}, figures=[],
        root=Path("."), data=lines,
    )  # fmt: skip
    assert "## Data" in rendered


def test_a_verdict_significant_alone_reads_inconclusive_once_its_family_is_corrected(tmp_path):
    family = {"name": "conclusions", "size": 3, "adjust": "holm"}
    weak = verdict("inconclusive", 0.012, -0.001, 0.025, 0.031, p_adjusted=0.093,
                   level=0.975, family=family, decidable=0.013)  # fmt: skip
    text = report.render(
        metrics={
            "probe": {"accuracy": 0.8, "macro_f1": 0.8, "ece": 0.05},
            "transfer": {"linear_vs_raw_pixels": weak},
            "verdicts": {"families": {"conclusions": {"size": 3, "adjust": "holm"},
                                      "curve linear_vs_raw_pixels": {"size": 4, "adjust": "holm"}}},
        },  # fmt: skip
        per_class={}, curve_summary={}, curve_verdicts={}, figures=[], root=tmp_path,
    )  # fmt: skip
    assert (
        "| linear_vs_raw_pixels | **inconclusive** (decides ±1.3) | +1.2 | [-0.1, 2.5] | 97.5% | "
        + MCNEMAR + " | 0.031 | 0.093 |" in text
    )  # fmt: skip
    assert "7 comparisons in 2 families, each corrected by Holm's step-down method to 95%" in text
    assert "conclusions (3), curve linear_vs_raw_pixels (4)" in text
    sentence = next(line for line in text.splitlines() if line.startswith("- A linear probe"))
    assert "p=0.031, Holm-adjusted p=0.093 (family of 3)" in sentence
    assert "so inconclusive; this test could tell a gain of 1.3 points." in sentence
