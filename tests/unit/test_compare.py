"""Experiments side by side: changed params first, then the headline, in 120 columns."""

from transferlab import compare

SECTIONS = {"knn", "probe", "finetune", "paths"}


def row(name: str, **values) -> dict:
    base = {
        "name": name,
        "knn.k": 20,
        "probe.C_num": 12,
        "paths.metrics": "reports/metrics.json",
        "data/methods": "md5-a",  # a dependency's hash column: never a param
        "recommended": "full",
        "accuracy.probe": 0.827,
        "accuracy.full": 0.895,
    }
    return {**base, **values}


def test_only_differing_params_come_first_then_the_headline():
    lines = compare.table(
        [row("main"), row("k5", **{"knn.k": 5.0, "accuracy.probe": 0.83, "data/methods": "b"})],
        SECTIONS,
    )
    assert lines[0].split() == ["experiment", "knn.k", "recommended", "full", "probe"]
    assert lines[1].split() == ["main", "20", "full", "0.8950", "0.8270"]
    assert lines[2].split() == ["k5", "5", "full", "0.8950", "0.8300"]


def test_params_that_do_not_fit_are_listed_under_the_table():
    long = {f"finetune.strategy_{i}.lr": [0.001 * i, 0.002] for i in range(12)}
    lines = compare.table([row("main"), row("wide", **long)], SECTIONS)
    assert max(map(len, lines)) <= compare.WIDTH
    assert any(line.startswith("also differs: finetune.strategy_") for line in lines)
    assert "recommended" in lines[0]  # the headline always shows


def test_rows_with_no_difference_say_so():
    lines = compare.table([row("main"), row("same")], SECTIONS)
    assert lines[-1] == "(no param differs between these rows)"
