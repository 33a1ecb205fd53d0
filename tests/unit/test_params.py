import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from transferlab.errors import UserError
from transferlab.params import (
    FROM_PROBE,
    STRATEGIES,
    apply_overrides,
    load_params,
    load_paths,
    parse_params,
)
from transferlab.tracking import flatten


def raw() -> dict:
    """params.yaml as read, with the output paths load_params adds from dvc.yaml's vars."""
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    return {**shipped, "paths": load_paths(REPO / "params.yaml")}


def test_shipped_params_parse_with_every_key_known():
    params = load_params(REPO / "params.yaml")
    assert params.model("lite0").name == "tf_efficientnet_lite0"
    assert isinstance(params.paths.metrics, Path)
    # every leaf of params.yaml survives the round trip, so none is silently ignored
    assert set(flatten(raw())) <= set(flatten(_as_plain(params)))


def test_every_schema_key_has_its_default_in_params_yaml():
    # params.yaml is the only source of defaults: no field may exist without a value there.
    assert set(flatten(_as_plain(load_params(REPO / "params.yaml")))) == set(flatten(raw()))


def test_every_key_dvc_yaml_tracks_is_a_known_param():
    known = set(flatten(raw()))
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        items = [None]
        if stage.get("foreach") == "${backbones}":  # every candidate's keys must exist
            items = list(raw()["backbones"])
        elif "foreach" in stage:  # e.g. ${finetune.strategies}: every variant's keys must exist
            section, key = stage["foreach"].strip("${}").split(".")
            items = raw()[section][key] + list(STRATEGIES + FROM_PROBE)
        for item in items:
            for entry in (stage.get("do") or stage).get("params", []):
                # `- params.yaml:` (no keys) tracks the whole file; a file's key list, those keys
                files = entry if isinstance(entry, dict) else {"params.yaml": [entry]}
                assert set(files) == {"params.yaml"}, (name, entry)  # the one params file
                for key in files["params.yaml"] or []:
                    key = key.replace("${item}", str(item)).replace("${key}", str(item))
                    assert key in known or any(k.startswith(f"{key}.") for k in known), (name, key)


def test_tracking_required_must_be_a_bool():
    bad = raw()
    bad["tracking"]["required"] = "yes"
    with pytest.raises(UserError, match=r"tracking\.required: expected bool, got 'yes'"):
        parse_params(bad)
    assert parse_params(raw()).tracking.required is False


def _as_plain(params) -> dict:
    import dataclasses

    return dataclasses.asdict(params)


def test_unknown_key_is_named():
    bad = raw()
    bad["probe"]["C_nmu"] = 3
    with pytest.raises(UserError, match=r"unknown key probe\.C_nmu"):
        parse_params(bad)


def test_wrong_type_names_key_and_value():
    bad = raw()
    bad["finetune"]["epochs"] = "four"
    with pytest.raises(UserError, match=r"finetune\.epochs: expected int, got 'four'"):
        parse_params(bad)


def test_bool_is_not_an_int():
    bad = raw()
    bad["finetune"]["epochs"] = True
    with pytest.raises(UserError, match="finetune.epochs"):
        parse_params(bad)


def test_out_of_range_value_names_range():
    bad = raw()
    bad["data"]["val_fraction"] = 1.5
    with pytest.raises(
        UserError, match=r"data\.val_fraction: got 1\.5; allowed range \(0\.0, 1\.0\)"
    ):
        parse_params(bad)


def test_unknown_choice_lists_allowed():
    bad = raw()
    bad["finetune"]["strategies"] = ["full", "fulll"]
    with pytest.raises(UserError, match="finetune.strategies: got 'fulll'; allowed: full"):
        parse_params(bad)


def test_missing_key_is_named():
    bad = raw()
    del bad["extract"]["batch_size"]
    with pytest.raises(UserError, match=r"missing key extract\.batch_size"):
        parse_params(bad)


def test_int_accepted_for_float():
    good = raw()
    good["finetune"]["full"]["lr"] = 1
    assert parse_params(good).finetune.full.lr == (1.0,)


def test_learning_rates_are_one_number_or_a_list_and_bn_a_policy():
    good = raw()
    good["finetune"]["full"]["lr"] = [1e-3, 3e-4]
    assert parse_params(good).finetune.full.lr == (1e-3, 3e-4)
    for lr, message in (([], "give one learning rate or a list"), ([1e-3, 0], "allowed range")):
        bad = raw()
        bad["finetune"]["full"]["lr"] = lr
        with pytest.raises(UserError, match=f"finetune.full.lr: .*{message}|{message}"):
            parse_params(bad)
    bad = raw()
    bad["finetune"]["lpft"]["bn"] = "fixed"
    with pytest.raises(UserError, match="finetune.lpft.bn: got 'fixed'; allowed: train, frozen"):
        parse_params(bad)
    shipped = parse_params(raw()).finetune
    assert shipped.lpft.bn == "frozen"  # LP-FT as published
    assert shipped.scratch.bn == "train"  # random init has no statistics worth keeping


def test_strategy_section_key_is_named():
    bad = raw()
    bad["finetune"]["llrd"]["layer_decay"] = 1.5
    with pytest.raises(UserError, match=r"finetune\.llrd\.layer_decay"):
        parse_params(bad)
    bad = raw()
    bad["finetune"]["lpft"]["lr"] = 0
    with pytest.raises(UserError, match=r"finetune\.lpft\.lr"):
        parse_params(bad)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("lora", "rank", 0, r"^finetune\.lora\.rank: got 0; allowed range \[1, inf\)\.$"),
        ("lora", "rank", 2.5, r"^finetune\.lora\.rank: expected int, got 2\.5\.$"),
        ("lora", "rank", True, r"^finetune\.lora\.rank: expected int, got True\.$"),
        ("lora", "alpha", 0, r"^finetune\.lora\.alpha: got 0\.0; allowed range \(0\.0, inf\)"),
        ("lora", "targets", [], r"^finetune\.lora\.targets: give at least one"),
        ("lora", "targets", "conv_pw", r"^finetune\.lora\.targets: expected a list"),
        ("norm", "bn", "fixed", r"^finetune\.norm\.bn: got 'fixed'; allowed: train, frozen"),
        ("bitfit", "lr", [], r"^finetune\.bitfit\.lr: give one learning rate or a list"),
        (None, "search_epochs", 0, r"^finetune\.search_epochs: got 0; allowed range \[1, inf\)"),
    ],
)
def test_parameter_efficient_sections_and_the_search_budget_are_checked(
    section, key, value, message
):
    bad = raw()
    (bad["finetune"][section] if section else bad["finetune"])[key] = value
    with pytest.raises(UserError, match=message):
        parse_params(bad)


def test_the_documented_comparison_trains_every_method_with_rates_to_choose_from():
    commands = []
    for doc in ("docs/methods.md", "README.md"):
        text = (REPO / doc).read_text()
        command = text[text.index("dvc exp run -n compare-all") :].split("\n\n")[0]
        commands.append(re.findall(r"-S '([^']+)'", command.split("```")[0]))
    assert commands[0] == commands[1]  # the README shows the one in docs/methods.md
    finetune = load_params(REPO / "params.yaml", commands[0]).finetune
    assert set(finetune.runs) == {*STRATEGIES, *FROM_PROBE}
    assert all(len(getattr(finetune, strategy).lr) == 3 for strategy in finetune.runs)


def test_missing_file_is_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("source", "folder", "data.source: got 'folder'; allowed: fashion-mnist, imagefolder, csv"),
        ("duplicates", "ignore", "data.duplicates: got 'ignore'; allowed: keep, drop, fail"),
        ("max_reject_fraction", 1.5, r"data\.max_reject_fraction: got 1\.5"),
        ("test_fraction", 0.0, r"data\.test_fraction: got 0\.0"),
        ("image_size", 4, r"data\.image_size: got 4"),
    ],
)
def test_data_source_keys_are_validated(key, value, message):
    bad = raw()
    bad["data"][key] = value
    with pytest.raises(UserError, match=message):
        parse_params(bad)


def test_curves_finetune_is_empty_by_default_and_takes_probe_free_strategies():
    assert load_params(REPO / "params.yaml").curves.finetune == ()  # default run: no training
    good = raw()
    good["curves"]["finetune"] = list(STRATEGIES)
    assert parse_params(good).curves.finetune == STRATEGIES


@pytest.mark.parametrize(
    "listed, message",
    [
        (["full", "fulll"], r"curves\.finetune: got 'fulll'; allowed: full"),
        (["lpft"], r"curves\.finetune: got 'lpft'"),  # would need a probe per k-shot subset
        (["full", "full"], r"curves\.finetune: .* twice"),
        ("full", r"curves\.finetune: expected a list"),
    ],
)
def test_curves_finetune_rejects_bad_lists_naming_the_key(listed, message):
    bad = raw()
    bad["curves"]["finetune"] = listed
    with pytest.raises(UserError, match=message):
        parse_params(bad)


def test_overrides_read_values_as_dvc_does_in_order_and_leave_the_source_alone():
    source = raw()
    changed = apply_overrides(
        source,
        [
            "data.train_per_class=null",
            "finetune.epochs=8",
            "finetune.epochs=9",  # later wins, as with repeated -S
            "finetune.full.lr=3e-4",
            "curves.shots=[1, 5, null]",
        ],
    )
    params = parse_params(changed)
    assert params.data.train_per_class is None
    assert params.finetune.epochs == 9
    assert params.finetune.full.lr == (3e-4,)  # one rate is a list of one
    assert params.curves.shots == (1, 5, None)
    assert source == raw()  # a copy was changed
    assert load_params(REPO / "params.yaml", ["finetune.epochs=9"]).finetune.epochs == 9


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("finetune.epochs", "expected KEY=VALUE"),
        ("=3", "expected KEY=VALUE"),
        ("finetune.epochs.x=3", "finetune.epochs is a value, not a section"),
        ("finetune.epochs=[1", "not valid YAML"),
    ],
)
def test_bad_overrides_are_user_errors(override, message):
    with pytest.raises(UserError, match=message):
        apply_overrides(raw(), [override])


def test_an_override_of_an_unknown_key_is_named():
    with pytest.raises(UserError, match=r"finetune\.epoch"):
        load_params(REPO / "params.yaml", ["finetune.epoch=8"])


def test_single_backbone_params_migrate_with_an_error_that_says_how():
    old = raw()
    old["backbone"] = {"name": "resnet18", "weights": "hub", "image_size": 64, "seed": 0}
    with pytest.raises(UserError) as err:
        parse_params(old)
    message = str(err.value)
    assert message.startswith("backbone.name has moved: candidates are listed under `backbones`")
    assert "backbones: {mine: {name: resnet18, weights: hub}}" in message
    with pytest.raises(UserError, match="backbone.name has moved"):
        load_params(REPO / "params.yaml", ["backbone.name=resnet18"])  # as dvc exp run -S


def test_the_single_seed_factor_is_gone_with_an_error_that_says_why():
    old = raw()
    old["verdict"]["single_seed_factor"] = 3.0
    with pytest.raises(UserError) as err:
        parse_params(old)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("verdict.single_seed_factor is gone: one seed is now judged by")
    assert "McNemar's exact test" in message and "delete the key" in message
    with pytest.raises(UserError, match="single_seed_factor is gone"):
        load_params(REPO / "params.yaml", ["verdict.single_seed_factor=3"])  # as dvc exp run -S
    assert "single_seed_factor" not in raw()["verdict"]


def test_candidates_are_checked_like_every_section():
    with pytest.raises(UserError, match=r"unknown key backbones\.lite0\.weight; did you mean"):
        load_params(REPO / "params.yaml", ["backbones.lite0.weight=none"])
    bad = raw()
    bad["backbones"] = {"a b": {"name": "resnet18", "weights": "none"}}
    with pytest.raises(UserError, match="'a b' is not a usable name"):
        parse_params(bad)
    bad["backbones"] = {}
    with pytest.raises(UserError, match="list at least one candidate"):
        parse_params(bad)
    with pytest.raises(UserError, match=r"select\.backbones: got 'lite9'; allowed: lite0"):
        load_params(REPO / "params.yaml", ["select.backbones=[lite9]"])
    with pytest.raises(UserError, match=r"select\.by: got 'accuracy'; allowed: logme, hscore"):
        load_params(REPO / "params.yaml", ["select.by=accuracy"])


def test_a_candidate_is_built_with_the_shared_settings():
    params = load_params(REPO / "params.yaml", ["backbone.image_size=48"])
    model = params.model("lite1")
    assert (model.name, model.weights, model.image_size) == ("tf_efficientnet_lite1", "bundled", 48)
    assert model.pretrained
    with pytest.raises(UserError, match="no backbone 'lite3'.*did you mean lite"):
        params.model("lite3")


def test_output_paths_live_in_dvc_yaml_not_in_the_params_users_vary():
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    assert "paths" not in shipped  # so `dvc exp show` and MLflow do not list them
    assert load_params(REPO / "params.yaml").paths.metrics == Path("reports/metrics.json")


def test_a_params_file_with_the_old_paths_section_says_where_they_went(tmp_path):
    old = {**yaml.safe_load((REPO / "params.yaml").read_text()), "paths": {"metrics": "m.json"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(old))
    with pytest.raises(UserError, match=r"paths section has moved to dvc\.yaml's `vars`"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize(("value", "expected"), [("auto", "auto"), (None, None), (64, 64)])
def test_backbone_image_size_is_auto_a_side_or_null(value, expected):
    changed = raw()
    changed["backbone"]["image_size"] = value
    assert parse_params(changed).backbone.image_size == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("big", r"backbone\.image_size: got 'big'; allowed: auto"),
        (4, r"backbone\.image_size: got 4; allowed range \[8, 1024\]"),
        (48.5, r"backbone\.image_size: expected int or str, got 48\.5"),
    ],
)
def test_a_bad_image_size_names_the_key(value, message):
    bad = raw()
    bad["backbone"]["image_size"] = value
    with pytest.raises(UserError, match=message):
        parse_params(bad)
