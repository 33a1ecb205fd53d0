"""The rank stage's choice as files: what later stages read, and only that."""

import dataclasses

import numpy as np
import pytest
import yaml

from tests.conftest import REPO
from transferlab import io, selection
from transferlab.data.layout import load_features, save_features
from transferlab.errors import UserError
from transferlab.params import Candidate


@pytest.fixture
def candidates(params, tmp_path):
    """Two candidates' features and probe heads, as their stages leave them."""
    paths = dataclasses.replace(
        params.paths,
        features=tmp_path / "features",
        methods=tmp_path / "methods",
        selected=tmp_path / "selected",
    )
    params = dataclasses.replace(
        params,
        paths=paths,
        backbones={"a": Candidate("model_a", "bundled"), "b": Candidate("model_b", "none")},
    )
    for value, key in enumerate(("a", "b")):
        for split in ("train", "val", "test"):
            save_features(paths.features / key, split, np.full((3, 2), value), np.arange(3))
        head = io.method_dir(paths.methods, "probe", key) / io.HEAD_FILE
        io.save_arrays(head, coef=np.full((3, 2), value))
    return params


def test_the_first_chosen_candidates_features_and_every_chosen_head_are_copied(candidates):
    paths = candidates.paths
    chosen = selection.Selection(("b", "a"), {k: candidates.backbones[k] for k in ("b", "a")})
    selection.write_selection(paths, chosen)
    features, _ = load_features(selection.features_dir(paths), "train")
    assert (features == 1).all()  # b's
    for value, key in enumerate(("a", "b")):
        head = io.load_arrays(selection.head_dir(paths, key) / io.HEAD_FILE)
        assert (head["coef"] == value).all()
    assert selection.read_selection(paths) == chosen
    models = selection.selected_models(candidates)
    assert list(models) == ["b", "a"]  # best first, as chosen
    assert models["b"].name == "model_b" and models["b"].image_size == 32


def test_an_unchanged_choice_writes_identical_files(candidates):
    paths = candidates.paths
    chosen = selection.Selection(("a",), {"a": candidates.backbones["a"]})
    selection.write_selection(paths, chosen)
    before = {p: p.read_bytes() for p in sorted(paths.selected.rglob("*")) if p.is_file()}
    selection.write_selection(paths, chosen)
    after = {p: p.read_bytes() for p in sorted(paths.selected.rglob("*")) if p.is_file()}
    assert before == after and len(before) == 8  # 6 feature files, 1 head, selection.json
    assert not (selection.head_dir(paths, "b")).exists()


def test_chosen_model_and_its_random_init_reference(candidates):
    chosen = selection.Selection(("a",), {"a": candidates.backbones["a"]})
    selection.write_selection(candidates.paths, chosen)
    assert selection.chosen_model(candidates).weights == "bundled"
    reference = selection.chosen_model(candidates, weights="none")
    assert (reference.name, reference.weights, reference.pretrained) == ("model_a", "none", False)


def test_reading_before_the_rank_stage_says_what_to_run(candidates):
    with pytest.raises(UserError, match="run `dvc repro rank` first"):
        selection.read_selection(candidates.paths)


def test_dvc_yaml_names_the_files_this_module_writes():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in stages["rank"]["outs"]]
    chosen = {o.removeprefix("${paths.selected}/") for o in outs if "paths.selected" in o}
    assert chosen == {selection.SELECTION_FILE, selection.FEATURES, selection.HEADS}
