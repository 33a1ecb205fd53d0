import numpy as np
import pytest
from PIL import Image

from tests import hostile
from transferlab.data import decode

S = hostile.SIZE


def decoded(path, size=S) -> np.ndarray:
    return decode.decode_file(path, size)[0]


def test_conversions_of_valid_odd_modes(tmp_path):
    hostile.odd_valid(tmp_path)
    # RGBA (200, 100, 0) at alpha 128 over white: round((c*128 + 255*127) / 255)
    assert decoded(tmp_path / "rgba.png")[0, 0].tolist() == [227, 177, 127]
    # CMYK (10, 20, 30, 40): R = (255 - C)(255 - K) / 255, a JPEG at quality 100
    np.testing.assert_allclose(decoded(tmp_path / "cmyk.jpg")[0, 0], [207, 198, 190], atol=2)
    # 16-bit grey 128 * 257 -> 128, the same value in every channel
    assert decoded(tmp_path / "grey16.png")[0, 0].tolist() == [128, 128, 128]
    # fully transparent LA shows the background
    assert decoded(tmp_path / "la.png")[0, 0].tolist() == list(decode.BACKGROUND)
    assert decoded(tmp_path / "grey.bmp")[0, 0].tolist() == [77, 77, 77]
    palette = Image.open(tmp_path / "palette.png")
    np.testing.assert_array_equal(
        decoded(tmp_path / "palette.png"), np.asarray(palette.convert("RGB"))
    )


def test_palette_transparency_is_composited(tmp_path):
    image = Image.new("P", (S, S), 0)
    image.putpalette([10, 20, 30] * 256)
    image.save(tmp_path / "p.png", transparency=0)
    assert decoded(tmp_path / "p.png")[0, 0].tolist() == list(decode.BACKGROUND)


def test_wide_and_float_grey_scaling():
    wide = Image.fromarray(np.array([[0, 257, 65535, 40000]], dtype=np.int32), "I")
    assert np.asarray(decode.to_rgb(wide))[0, :, 0].tolist() == [0, 1, 255, 156]
    flt = Image.fromarray(np.array([[-5.0, 12.4, 300.0]], dtype=np.float32), "F")
    assert np.asarray(decode.to_rgb(flt))[0, :, 0].tolist() == [0, 12, 255]


def test_exif_orientation_is_applied(tmp_path):
    # displayed S wide x 2S high with the black half on top; the centre square keeps both
    pixels = decoded(hostile.exif_rotated_jpeg(tmp_path / "r.jpg"))
    assert pixels[: S // 2 - 1].mean() < 20 and pixels[S // 2 + 1 :].mean() > 235


def test_fit_square_resizes_shorter_side_and_centre_crops():
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 20:40] = 255  # the centre third is white
    out = decode.fit_square(Image.fromarray(wide), 10)
    assert out.shape == (10, 10, 3) and out.dtype == np.uint8
    assert out[:, 1:-1].min() > 200  # the crop kept only the white centre


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, not an image"), "not-an-image"),
        (hostile.truncated_jpeg, "truncated"),
    ],
)
def test_broken_files_are_rejected_with_a_reason(tmp_path, make, reason):
    path = tmp_path / "broken.jpg"
    make(path)
    with pytest.raises(decode.Rejected) as caught:
        decode.decode_file(path, S)
    assert caught.value.reason == reason


def test_decode_all_in_parallel_matches_serial_and_hashes_pixels(tmp_path):
    paths = [hostile.save_noise(tmp_path / f"{i}.png", seed=i % 5) for i in range(12)]
    (tmp_path / "bad.jpg").write_bytes(b"")
    paths.append(tmp_path / "bad.jpg")
    serial = decode.decode_all(paths, tmp_path / "serial.npy", 8, workers=1)
    parallel = decode.decode_all(paths, tmp_path / "parallel.npy", 8, workers=2)
    assert serial == parallel
    np.testing.assert_array_equal(
        np.load(tmp_path / "serial.npy"), np.load(tmp_path / "parallel.npy")
    )
    assert serial.reasons[-1] == "empty" and serial.hashes[-1] is None
    assert serial.hashes[0] == serial.hashes[5] != serial.hashes[1]  # same seed, same pixels
    rows = np.load(tmp_path / "serial.npy")
    assert rows.shape == (13, 8, 8, 3) and not rows[-1].any()
