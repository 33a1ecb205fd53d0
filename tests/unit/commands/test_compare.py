"""Experiments side by side: changed params first, then the headline, in 120 columns."""

from transferlab.commands import compare

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


def test_runs_on_other_data_get_a_table_of_their_own_the_commits_first():
    photos = row("photos", **{"data_content": "bbb", "knn.k": 5, "accuracy.full": 0.99})
    commit = {**row("main", data_content="aaa"), "typ": "baseline"}
    k5 = row("k5", **{"data_content": "aaa", "knn.k": 5})
    lines = compare.by_data([photos, commit, k5], SECTIONS)
    assert lines[0] == "data aaa: main, k5"
    assert lines[1].split()[:2] == ["experiment", "knn.k"]
    assert [line.split()[0] for line in lines[2:4]] == ["main", "k5"]
    assert "data bbb: photos" in lines and lines[-1].startswith("Each table holds")
    one = compare.by_data([commit, k5], SECTIONS)  # one data set: one table, as before
    assert one == compare.table([commit, k5], SECTIONS)
