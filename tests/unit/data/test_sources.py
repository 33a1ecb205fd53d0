import os

import pytest

from tests import hostile
from transferlab.data import sources
from transferlab.errors import UserError


def test_imagefolder_lists_any_depth_and_reports_clutter(tmp_path):
    listing = sources.list_imagefolder(hostile.image_folder(tmp_path))
    assert listing.classes == ("cat", "dog")
    assert "cat/deep/er/0.png" in listing.files and "dog/odd/rgba.png" in listing.files
    assert not any("hidden" in f or ".cache" in f for f in listing.files)
    assert dict(listing.skipped) == {
        "README.txt": "not inside a class folder",
        "cat/labels.json": "not an image file extension",
    }
    per_class = {c: int((listing.labels == i).sum()) for i, c in enumerate(listing.classes)}
    # 8 healthy + truncated, empty, rotated, twin  |  8 healthy + notes, 6 odd modes, twin
    assert per_class == {"cat": 12, "dog": 16}
    assert set(listing.given_split) == {""}
    assert all(p.is_file() for p in listing.paths)


def test_imagefolder_without_class_folders_says_what_layout_is_expected(tmp_path):
    hostile.save_noise(tmp_path / "loose.png", 0)
    with pytest.raises(UserError, match=r"no class folders in .*expected .*/<class>/<image>"):
        sources.list_imagefolder(tmp_path)
    with pytest.raises(UserError, match="is not a folder"):
        sources.list_imagefolder(tmp_path / "nope")


def write_manifest(root, text, name="manifest.csv"):
    (root / name).write_text(text)
    return root


def test_manifest_reads_paths_labels_and_given_splits(tmp_path):
    hostile.save_noise(tmp_path / "img" / "a.png", 0)
    hostile.save_noise(tmp_path / "img" / "b.png", 1)
    write_manifest(tmp_path, "path,label,split\nimg/b.png,dog,test\nimg/a.png,cat,\n")
    listing = sources.read_manifest(tmp_path, "manifest.csv")
    assert listing.files == ("img/a.png", "img/b.png")
    assert listing.classes == ("cat", "dog")
    assert listing.labels.tolist() == [0, 1]
    assert listing.given_split.tolist() == ["", "test"]


def test_manifest_paths_are_relative_to_the_manifests_folder(tmp_path):
    hostile.save_noise(tmp_path / "img" / "a.png", 0)
    write_manifest(tmp_path / "img", "path,label\na.png,cat\n", name="m.csv")
    listing = sources.read_manifest(tmp_path, "img/m.csv")
    assert listing.files == ("img/a.png",)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("../../etc/passwd", r"'../../etc/passwd' resolves to .*outside the data folder"),
        ("/etc/passwd", r"'/etc/passwd' is an absolute path; refused"),
        ("escape.png", r"'escape.png' resolves to .*outside the data folder"),
    ],
)
def test_manifest_cannot_read_outside_its_root(tmp_path, entry, message):
    root = tmp_path / "data"
    root.mkdir()
    hostile.save_noise(tmp_path / "secret.png", 0)
    os.symlink(tmp_path / "secret.png", root / "escape.png")  # a symlink pointing outside
    write_manifest(root, f"path,label\n{entry},cat\n")
    with pytest.raises(UserError, match=message):
        sources.read_manifest(root, "manifest.csv")


def test_manifest_missing_files_are_all_named(tmp_path):
    hostile.save_noise(tmp_path / "a.png", 0)
    write_manifest(tmp_path, "path,label\na.png,cat\nb.png,cat\nc.png,dog\n")
    with pytest.raises(
        UserError,
        match=r"2 file\(s\) listed in .* do not exist \(manifest.csv line 3: b.png; "
        r"manifest.csv line 4: c.png\); fix the paths",
    ):
        sources.read_manifest(tmp_path, "manifest.csv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,class\na.png,cat\n", "header must name the columns path,label"),
        ("path,label,split\na.png,cat,holdout\n", "split 'holdout' is not one of train, val"),
        ("path,label\na.png,\n", "line 2: path and label must both be filled in"),
        ("path,label\n", "lists no images"),
    ],
)
def test_manifest_format_errors(tmp_path, text, message):
    hostile.save_noise(tmp_path / "a.png", 0)
    write_manifest(tmp_path, text)
    with pytest.raises(UserError, match=message):
        sources.read_manifest(tmp_path, "manifest.csv")


def test_missing_manifest_says_which_param_to_set(tmp_path):
    with pytest.raises(UserError, match="not found; set data.manifest"):
        sources.read_manifest(tmp_path, "manifest.csv")


def test_files_that_resolve_outside_the_data_folder_are_refused_with_a_reason(tmp_path):
    import os

    root = tmp_path / "images"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        (root / label / "own.png").write_bytes(b"png")
    (tmp_path / "secret.png").write_bytes(b"outside")
    os.symlink(tmp_path / "secret.png", root / "cat" / "leak.png")  # escapes data.path
    os.symlink(root / "dog" / "own.png", root / "cat" / "inside.png")  # stays inside: fine
    listing = sources.list_imagefolder(root)
    assert listing.files == ("cat/inside.png", "cat/own.png", "dog/own.png")
    assert listing.skipped == (("cat/leak.png", "resolves outside data.path"),)
