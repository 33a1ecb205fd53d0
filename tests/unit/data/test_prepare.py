import dataclasses
import json

import numpy as np
import pytest

from tests import hostile
from tests.conftest import make_images
from transferlab.data import curate, prepare
from transferlab.data import layout as data
from transferlab.data.fashion_mnist import Dataset
from transferlab.errors import UserError

S = hostile.SIZE


class Recorder:
    """Collects what prepare logs; the real MLflow path is covered in tests/integration."""

    def __init__(self):
        self.artifacts, self.metrics = [], {}

    def log_artifact(self, path):
        self.artifacts.append(path.name)

    def log_metrics(self, metrics):
        self.metrics.update(metrics)


@pytest.fixture
def setup(params, tmp_path):
    out = tmp_path / "out"
    paths = dataclasses.replace(
        params.paths,
        prepared=out / "prepared",
        data_card=out / "card.json",
        rejects=out / "rejects.json",
        duplicates=out / "duplicates.json",
    )
    config = dataclasses.replace(
        params.data,
        source="imagefolder",
        path=str(tmp_path / "images"),
        image_size=S,
        train_per_class=None,
        test_per_class=None,
        val_fraction=0.25,
        test_fraction=0.25,
        max_reject_fraction=0.2,
        duplicates="drop",
    )
    return config, paths


def run(config, paths, **kw):
    recorder = Recorder()
    card = prepare.prepare(config, paths, recorder, confidence=0.95, workers=1, **kw)
    return card, recorder


def report(path):
    return json.loads(path.read_text())


def test_hostile_folder_rejects_keeps_and_records(setup, tmp_path):
    config, paths = setup
    hostile.image_folder(tmp_path / "images")
    card, recorder = run(config, paths)
    rejects = report(paths.rejects)
    assert [(r["file"], r["label"], r["reason"]) for r in rejects["rejected"]] == [
        ("cat/empty.jpg", "cat", "empty"),
        ("cat/truncated.jpg", "cat", "truncated"),
        ("dog/notes.jpg", "dog", "not-an-image"),
    ]
    assert rejects["summary"] == {
        "listed": 28,
        "rejected": 3,
        "reject_fraction": round(3 / 28, 6),
        "max_reject_fraction": 0.2,
        "skipped": 2,
    }
    # the twin under two labels is a conflict: both copies dropped; every odd mode kept
    duplicates = report(paths.duplicates)
    assert duplicates["summary"] == {"groups": 1, "label_conflicts": 1, "leakage": 0, "dropped": 2}
    assert {m["file"] for m in duplicates["groups"][0]["members"]} == {
        "cat/twin.png",
        "dog/twin.png",
    }
    kept = {s: card["splits"][s]["per_class"] for s in ("train", "val", "test")}
    # cat: 8 healthy + rotated = 9 -> test 2, val 2, train 5; dog: 8 + 6 odd modes = 14
    assert kept == {
        "train": {"cat": 5, "dog": 8},
        "val": {"cat": 2, "dog": 2},
        "test": {"cat": 2, "dog": 4},
    }
    assert card["rejected"]["per_split"] == {"unassigned": {"cat": 2, "dog": 1}}
    assert card["dropped_duplicates"]["per_class"] == {"cat": 1, "dog": 1}
    assert card["image_shape"] == [S, S, 3] and card["source"] == "imagefolder"
    assert card["imbalance"]["train_largest_class"] == "dog"
    assert recorder.artifacts == ["rejects.json", "duplicates.json", "card.json"]
    assert recorder.metrics["rejected_files"] == 3
    train = data.load_prepared(paths.prepared, "train")
    assert train.images.dtype == np.uint8 and train.images.shape == (13, S, S, 3)
    assert data.load_classes(paths.prepared) == ("cat", "dog")
    assert not list(paths.prepared.parent.glob(".prepare-*"))  # scratch space is gone


def test_stored_pixels_are_the_converted_ones(setup, tmp_path):
    config, paths = setup
    hostile.image_folder(tmp_path / "images")
    run(config, paths)
    stored = np.concatenate([data.load_prepared(paths.prepared, s).images for s in data.SPLITS])
    # RGBA over white and the fully transparent LA image both made it into the arrays
    colours = {tuple(img[0, 0]) for img in stored}
    assert (227, 177, 127) in colours and (255, 255, 255) in colours and (128, 128, 128) in colours


def test_leakage_across_given_splits(setup, tmp_path):
    config, paths = setup
    root = tmp_path / "images"
    lines = ["path,label,split"]
    for c, name in enumerate(("cat", "dog")):
        for i in range(6):
            split = "test" if i < 2 else "train"
            hostile.save_noise(root / f"{name}{i}.png", seed=10 * c + i)
            lines.append(f"{name}{i}.png,{name},{split}")
    hostile.save_noise(root / "copy.png", seed=0)  # same pixels as cat0.png, a test image
    lines.append("copy.png,cat,train")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    config = dataclasses.replace(config, source="csv")

    card, _ = run(dataclasses.replace(config, duplicates="keep"), paths)
    (group,) = report(paths.duplicates)["groups"]
    assert group["leakage"] and not group["label_conflict"]
    assert {(m["file"], m["split"], m["dropped"]) for m in group["members"]} == {
        ("cat0.png", "test", False),
        ("copy.png", "train", False),
    }
    assert card["splits"]["test"]["total"] == 4  # the given test split, untouched

    card, _ = run(config, paths)  # drop keeps the test copy, so the benchmark stays the same
    members = report(paths.duplicates)["groups"][0]["members"]
    assert {m["file"]: m["dropped"] for m in members} == {"cat0.png": False, "copy.png": True}
    assert card["splits"]["test"]["total"] == 4 and card["duplicates"]["leakage"] == 0

    with pytest.raises(UserError, match=r"1 group\(s\) of identical images .*1 across splits"):
        run(dataclasses.replace(config, duplicates="fail"), paths)
    assert report(paths.duplicates)["summary"]["groups"] == 1  # written before failing


def test_too_many_rejects_fail_after_writing_the_report(setup, tmp_path):
    config, paths = setup
    hostile.image_folder(tmp_path / "images")
    with pytest.raises(UserError, match=r"3 of 28 image files \(10.7%\) could not be read, more"):
        run(dataclasses.replace(config, max_reject_fraction=0.05), paths)
    assert len(report(paths.rejects)["rejected"]) == 3


def test_too_small_class_is_named_with_its_count(setup, tmp_path):
    config, paths = setup
    hostile.image_folder(tmp_path / "images")
    hostile.save_noise(tmp_path / "images" / "bird" / "only.png", seed=77)
    hostile.save_noise(tmp_path / "images" / "bird" / "other.png", seed=78)
    with pytest.raises(
        UserError, match=r"class 'bird' has 2 images, too few to hold out 25% .*data.test_fraction"
    ):
        run(config, paths)


def test_class_whose_images_are_all_broken_is_named(setup, tmp_path):
    config, paths = setup
    hostile.image_folder(tmp_path / "images")
    (tmp_path / "images" / "fish").mkdir()
    (tmp_path / "images" / "fish" / "a.png").write_bytes(b"")
    config = dataclasses.replace(config, max_reject_fraction=0.5)
    with pytest.raises(UserError, match="class 'fish' has no usable images"):
        run(config, paths)


def test_nothing_readable_is_a_clear_error(setup, tmp_path):
    config, paths = setup
    (tmp_path / "images" / "cat").mkdir(parents=True)
    (tmp_path / "images" / "cat" / "a.jpg").write_text("no")
    with pytest.raises(UserError, match="none of the 1 image files could be read"):
        run(dataclasses.replace(config, max_reject_fraction=1.0), paths)
    (tmp_path / "images" / "cat" / "a.jpg").unlink()
    with pytest.raises(UserError, match="no image files found in data.path"):
        run(config, paths)


def test_fashion_mnist_source_respects_its_test_split(params, tmp_path):
    dataset = Dataset(train=make_images(20), test=make_images(9, seed=1), classes=("a", "b", "c"))
    source = prepare.fashion_mnist_source(dataset, tmp_path / "all.npy")
    config = dataclasses.replace(
        params.data, train_per_class=10, test_per_class=5, val_fraction=0.2
    )
    splits = curate.assign_splits(source.pool, source.pool.readable, config, source.classes)
    labels = source.pool.labels
    assert np.bincount(labels[splits["train"]]).tolist() == [8, 8, 8]
    assert np.bincount(labels[splits["val"]]).tolist() == [2, 2, 2]
    assert np.bincount(labels[splits["test"]]).tolist() == [5, 5, 5]
    assert (splits["test"] >= 60).all()  # drawn from the given test images only
    again = curate.assign_splits(source.pool, source.pool.readable, config, source.classes)
    np.testing.assert_array_equal(splits["val"], again["val"])


def test_a_class_left_empty_by_a_duplicate_fails_pointing_at_this_runs_report(setup, tmp_path):
    config, paths = setup
    hostile.image_folder(tmp_path / "images")
    paths.duplicates.parent.mkdir(parents=True, exist_ok=True)
    paths.duplicates.write_text('{"stale": "a previous run"}')
    hostile.save_noise(tmp_path / "images" / "bird" / "copy.png", seed=0)  # = cat/deep/er/0.png
    with pytest.raises(UserError, match="class 'bird' has no usable images"):
        run(config, paths)
    written = report(paths.duplicates)  # this run's, naming the conflict that emptied bird
    (group,) = [g for g in written["groups"] if "bird/copy.png" in str(g["members"])]
    assert group["label_conflict"] and all(m["split"] is None for m in group["members"])


def test_tiny_splits_warn_with_the_smallest_gain_the_test_split_can_decide(setup, tmp_path):
    config, paths = setup
    hostile.image_folder(tmp_path / "images")
    card, _ = run(config, paths)
    resolution = card["resolution"]
    assert (resolution["test_images"], resolution["val_images"]) == (6, 4)
    # McNemar's exact test needs 6 images one way and none the other (p = 2 / 2**6 < 0.05)
    assert resolution["smallest_significant_gain"] == 1.0
    assert resolution["confidence"] == 0.95
    test, val = resolution["warnings"]
    assert test.startswith("test: 6 images: McNemar's exact test can call no gain under 100.0")
    assert val.startswith("val: 4 images: one image is 25.0 points of val accuracy")


def test_the_content_digest_names_the_images_not_the_files_nor_the_draw(setup, tmp_path):
    config, paths = setup
    hostile.image_folder(tmp_path / "images")
    first = run(config, paths)[0]["content"]
    assert run(dataclasses.replace(config, seed=5, val_fraction=0.3), paths)[0]["content"] == first
    cat = tmp_path / "images" / "cat"
    (cat / "1.png").rename(cat / "renamed.png")
    assert run(config, paths)[0]["content"] == first
    hostile.save_noise(tmp_path / "images" / "dog" / "new.png", seed=4243)
    assert run(config, paths)[0]["content"] != first
