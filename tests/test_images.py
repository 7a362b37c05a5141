"""Decoding photos: every PIL mode becomes 8-bit RGB; bad files raise one-line ImageErrors."""

import numpy as np
import pytest
from PIL import Image

from conftest import FACES
from facesearch.errors import ImageError, InputError
from facesearch.images import iter_files, load_image, to_rgb
from imagegen import huge, png_bytes, rotated_exif, truncated, variants

FACE = FACES / "celebrity5" / "val" / "madonna" / "1.jpg"


@pytest.mark.parametrize("kind", ["grayscale", "16-bit", "cmyk", "palette", "rgba"])
def test_modes_decode_to_rgb_with_the_same_picture(tmp_path, kind):
    path = variants(FACE, tmp_path)[kind]
    img = load_image(path).image
    assert img.mode == "RGB"
    ref = np.asarray(Image.open(FACE).convert("L"), dtype=np.float32)
    got = np.asarray(img.convert("L"), dtype=np.float32)
    assert got.shape == ref.shape
    assert np.abs(got - ref).mean() < 12  # same picture, not black/white/clipped


def test_sixteen_bit_is_scaled_not_clipped():
    arr = (np.linspace(0, 65535, 256 * 16).reshape(16, 256)).astype(np.uint16)
    rgb = np.asarray(to_rgb(Image.fromarray(arr)))  # mode I;16
    assert rgb.min() == 0 and rgb.max() == 255 and 100 < rgb.mean() < 155


def test_alpha_is_composited_on_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(to_rgb(img)).min() == 255


def test_exif_orientation_is_applied(tmp_path):
    path = rotated_exif(FACE, tmp_path / "sideways.jpg")
    raw = Image.open(path)
    img = load_image(path).image
    assert img.size == (raw.size[1], raw.size[0]) == Image.open(FACE).size


def test_non_image_file(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("not a picture")
    with pytest.raises(ImageError, match="not an image"):
        load_image(p)


@pytest.mark.parametrize("src", [FACE, FACES / "bbt" / "people" / "amy" / "amy1.png"])
def test_truncated_files(tmp_path, src):
    p = truncated(src, tmp_path / ("cut" + src.suffix))
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(p)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    p = huge(tmp_path / "bomb.png")
    assert p.stat().st_size < 1_000_000
    with pytest.raises(ImageError, match="too large"):
        load_image(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="is a directory"):
        load_image(tmp_path)


def test_errors_are_one_line(tmp_path):
    p = tmp_path / "x.png"
    p.write_bytes(png_bytes(Image.new("RGB", (8, 8)))[:30])
    with pytest.raises(ImageError) as err:
        load_image(p)
    assert "\n" not in str(err.value)


def test_hash_is_of_content_not_name(tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(FACE.read_bytes())
    b.write_bytes(FACE.read_bytes())
    assert load_image(a).sha256 == load_image(b).sha256


def test_iter_files_skips_hidden_and_recurses(tmp_path):
    (tmp_path / "x" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for p in ["a.jpg", "x/b.png", "x/deep/c.txt", ".DS_Store", ".hidden/d.jpg"]:
        (tmp_path / p).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in iter_files(tmp_path)] == [
        "a.jpg",
        "x/b.png",
        "x/deep/c.txt",
    ]
