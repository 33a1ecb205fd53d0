import errno
import json
import os

import numpy as np
import pytest

from transferlab import io


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    io.write_json(target, {"b": 1, "a": 2})
    io.write_json(target, {"a": 3})
    assert io.read_json(target) == {"a": 3}
    assert target.read_text().startswith('{\n  "a"')


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"candidates": {"lite0": {"hscore": 7.5, "logme": np.float64("nan")}, "lite1": {}}},
            "candidates.lite0.logme is NaN",
        ),
        ({"rows": [{"acc": 0.9}, {"acc": float("nan")}]}, "rows[1].acc is NaN"),
        ({"curve": [0.1, (0.2, float("inf"))]}, "curve[1][1] is Infinity"),
        ({"b": float("nan"), "a": {"gap": -float("inf")}}, "a.gap is -Infinity"),  # file order
        (float("nan"), "the value is NaN"),
    ],
)
def test_write_json_refuses_nan_and_infinity_naming_where(tmp_path, data, message):
    target = tmp_path / "ranking.json"
    with pytest.raises(io.UserError) as raised:
        io.write_json(target, data)
    assert str(raised.value) == (
        f"cannot write {target}: {message}; this is a bug in the stage that computed it"
    )
    assert list(tmp_path.iterdir()) == []


def test_write_json_leaves_the_old_file_as_it_was_when_refusing(tmp_path):
    target = tmp_path / "metrics.json"
    io.write_json(target, {"logme": 0.33})
    before = target.read_bytes()
    with pytest.raises(io.UserError, match="logme is NaN"):
        io.write_json(target, {"logme": float("nan")})
    assert target.read_bytes() == before
    assert list(tmp_path.iterdir()) == [target]


def test_write_json_writes_finite_data_as_before(tmp_path):
    data = {
        "scores": {"logme": np.float64(0.3318), "hscore": 7.46, "rank": 1},
        "rows": [{"name": "lite1", "accuracy": np.float64(1) / 3, "kept": True}, None],
        "empty": {},
        "classes": ["T-shirt/top", "Ankle boot", "é"],
    }
    target = tmp_path / "record.json"
    io.write_json(target, data)
    assert target.read_text() == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert '"logme": 0.3318,' in target.read_text()
    assert '"accuracy": 0.3333333333333333,' in target.read_text()


def test_array_round_trip_and_mmap(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = io.split_file(tmp_path, "train", "images")
    io.save_array(path, array)
    assert path.name == "train_images.npy"
    np.testing.assert_array_equal(io.load_array(path), array)
    assert isinstance(io.load_array(path, mmap=True), np.memmap)


def test_missing_array_is_user_error(tmp_path):
    with pytest.raises(io.UserError, match="dvc repro"):
        io.load_array(tmp_path / "nope.npy")


@pytest.mark.parametrize(
    ("code", "message"),
    [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "permission denied")],
)
def test_disk_full_and_permission_errors_are_clear(tmp_path, monkeypatch, code, message):
    def fail(*args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(io.os, "replace", fail)
    with pytest.raises(io.UserError, match=message):
        io.write_json(tmp_path / "x.json", {})
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def full_disk(monkeypatch):
    """Every temporary output file sits on a full disk: writes fail with ENOSPC."""
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    real = io.tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        fd, name = real(*args, **kwargs)
        os.unlink(name)
        os.symlink("/dev/full", name)  # unlinking it later removes the link, not the device
        return fd, name

    monkeypatch.setattr(io.tempfile, "mkstemp", mkstemp)


def test_disk_full_inside_np_save_is_clear(tmp_path, full_disk):
    with pytest.raises(io.UserError, match=r"cannot write .*x\.npy: the disk is full"):
        io.save_array(tmp_path / "x.npy", np.zeros(100_000))
    assert list(tmp_path.iterdir()) == []


def test_disk_full_inside_torch_save_is_clear(tmp_path, full_disk):
    import torch

    with pytest.raises(io.UserError, match=r"cannot write .*model\.pt: the disk is full"):
        io.save_checkpoint(tmp_path / "model.pt", {"w": torch.zeros(100_000)})
    assert list(tmp_path.iterdir()) == []


def test_permission_error_inside_the_write_is_clear(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(io.np, "save", refuse)
    with pytest.raises(io.UserError, match="permission denied"):
        io.save_array(tmp_path / "x.npy", np.zeros(3))
    assert list(tmp_path.iterdir()) == []


def test_pickled_array_is_refused(tmp_path):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(io.UserError, match="cannot be loaded safely"):
        io.load_array(path)


def test_save_rows_streams_the_chosen_rows(tmp_path):
    source = np.arange(5 * 2 * 2 * 3, dtype=np.uint8).reshape(5, 2, 2, 3)
    np.save(tmp_path / "all.npy", source)
    io.save_rows(tmp_path / "some.npy", tmp_path / "all.npy", np.array([4, 1]))
    np.testing.assert_array_equal(np.load(tmp_path / "some.npy"), source[[4, 1]])
    # byte-identical to np.save, so existing prepared outputs keep their hashes
    np.save(tmp_path / "ref.npy", source[[4, 1]])
    assert (tmp_path / "some.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()


def test_outputs_follow_the_users_umask(tmp_path):
    import os

    from transferlab import io as tio

    previous = os.umask(0o002)  # a team sharing a checkout: group-writable
    try:
        tio.write_json(tmp_path / "shared.json", {"a": 1})
        tio.save_array(tmp_path / "shared.npy", np.zeros(3))
    finally:
        os.umask(previous)
    for name in ("shared.json", "shared.npy"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o664
    os.umask(0o077)
    try:
        tio.write_text(tmp_path / "private.txt", "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "private.txt").stat().st_mode & 0o777 == 0o600
