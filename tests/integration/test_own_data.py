"""A user's own photos through `dvc repro`, as the README's recipe runs them: the input side
follows the data, tiny splits are stated and never decide silently, and the results are
never compared with another data set's."""

from __future__ import annotations

import json
import re
import sys

import pytest

from tests.integration.conftest import PHOTO_COUNTS

pytestmark = pytest.mark.slow


def read(ws, name: str):
    return json.loads((ws.root / ws.paths()[name]).read_text())


def test_the_input_side_follows_the_stored_photos_not_fashion_mnists_48(photos_reproduced):
    extract = json.loads((photos_reproduced.root / "reports/extract/tiny.json").read_text())
    assert extract["input_size"] == 64  # stored at 64 px: auto keeps it
    assert read(photos_reproduced, "provenance")["backbone"]["input_size"] == 64


def test_no_json_output_holds_nan_or_infinity(photos_reproduced):
    def refuse(constant):
        raise AssertionError(f"non-finite {constant}")

    scanned = 0
    for folder in ("reports", "data"):
        for path in (photos_reproduced.root / folder).rglob("*.json"):
            json.loads(path.read_text(), parse_constant=refuse)
            scanned += 1
    assert scanned > 20
    scores = json.loads((photos_reproduced.root / "reports/scores/tiny.json").read_text())
    assert all(isinstance(v, float) for k, v in scores.items() if k in ("logme", "hscore"))


def test_the_report_names_the_truncated_file_and_the_picture_under_two_classes(
    photos_reproduced,
):
    report = (photos_reproduced.root / photos_reproduced.paths()["report"]).read_text()
    data = report.split("## Data", 1)[1].split("\n## ", 1)[0]
    assert "could not be read (truncated): `cat/broken.jpg`" in data
    assert "under different labels: `coffee/coffee_001.jpg` (coffee) = " in data
    assert "`rocket/also_here.jpg` (rocket)" in data
    card = read(photos_reproduced, "data_card")
    for name, count in PHOTO_COUNTS.items():  # every class's images, in one split or another
        kept = sum(card["splits"][s]["per_class"][name] for s in card["splits"])
        assert kept == count - (name == "coffee")  # the pair under two labels: both dropped
    assert f"| **total** | **{card['splits']['train']['total']}** |" in data
    warnings = card["resolution"]["warnings"]  # 18 test images decide little: said, in words
    assert warnings and warnings[0].startswith("test: ")
    assert all(w in report.split("## Conclusion")[0] for w in warnings)  # under the answer too


def test_no_shot_count_a_class_cannot_supply_is_judged(photos_reproduced):
    card = read(photos_reproduced, "data_card")
    smallest = min(card["splits"]["train"]["per_class"].values())
    assert smallest <= 25  # the shipped 25-shot column cannot be drawn here
    metrics_report = (photos_reproduced.root / photos_reproduced.paths()["report"]).read_text()
    for probe in ("linear", "knn"):
        summary = json.loads(
            (photos_reproduced.root / "reports/curves" / probe / "summary.json").read_text()
        )
        assert summary["shots_as_all"] == [25]
        for cells in summary["series"].values():
            assert set(cells) == {"1", "5", "10", "all"}
    assert "| 25 |" not in metrics_report


VERDICT_ROW = re.compile(r"\| \*\*(\w+)\*\* \| [+-][\d.]+ \| \[([-\d.]+), ([-\d.]+)\] \|")


def test_no_verdict_comes_from_a_spread_of_zero(photos_reproduced):
    metrics = read(photos_reproduced, "metrics")
    for name, v in metrics["transfer"].items():
        if v["low"] == v["high"]:
            assert v["verdict"] == "inconclusive", name
    report = (photos_reproduced.root / photos_reproduced.paths()["report"]).read_text()
    rows = VERDICT_ROW.findall(report)  # the headline and every per-shot verdict
    assert len(rows) > len(metrics["transfer"])
    for verdict, low, high in rows:
        if low == high:
            assert verdict == "inconclusive", (verdict, low, high)


def test_a_probe_whose_every_c_ties_takes_the_middle_of_the_grid(photos_reproduced):
    record = json.loads(
        (photos_reproduced.root / "data/methods/probe/tiny/record.json").read_text()
    )
    by_C = record["val_accuracy_by_C"]  # JSON sorts its keys as strings: put them back in order
    grid = sorted(by_C, key=float)
    tied = [c for c in grid if by_C[c] == max(by_C.values())]
    assert f"{record['C']:.3g}" == tied[(len(tied) - 1) // 2]
    if len(tied) == len(grid):  # every C tied on the few val images
        assert f"{record['C']:.3g}" not in (grid[0], grid[-1])


def test_make_results_shows_no_change_against_the_fashion_mnist_baseline(photos_reproduced):
    done = photos_reproduced.run(sys.executable, "-m", "transferlab.commands.results")
    assert "the baseline HEAD used other data: fashion-mnist at" in done.stdout
    assert " pt)" not in done.stdout and "(was " not in done.stdout
