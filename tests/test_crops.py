"""Face thumbnails: square JPEG crops around a box, kept inside the image where they fit."""

import io

import numpy as np
import pytest
from PIL import Image

from facesearch.crops import face_thumbnail
from facesearch.errors import InputError


def decode(data):
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    return np.asarray(img.convert("RGB"), np.int16)


def scene(size=(300, 200), box=(100, 50, 160, 130)):
    """Blue image with a red rectangle at ``box``."""
    img = Image.new("RGB", size, (0, 0, 255))
    img.paste((255, 0, 0), tuple(box))
    return img


def near(pixel, colour, tol=40):
    return bool(np.all(np.abs(pixel - np.array(colour)) <= tol))


def test_thumbnail_is_a_square_jpeg_centred_on_the_face():
    data = face_thumbnail(scene(), (100, 50, 160, 130))
    assert data[:2] == b"\xff\xd8" and len(data) < 10_000
    px = decode(data)
    assert px.shape == (112, 112, 3)
    assert near(px[56, 56], (255, 0, 0))  # the face in the middle
    assert near(px[2, 2], (0, 0, 255))  # the margin around it
    # the box's longer side (80 px) plus 20% each side spans 112 px: the face's rows fill 80/112
    red_rows = np.flatnonzero([near(px[r, 56], (255, 0, 0)) for r in range(112)])
    assert 76 <= len(red_rows) <= 84


@pytest.mark.parametrize("box", [(0, 0, 30, 30), (270, 170, 300, 200), (-5, 90, 25, 120)])
def test_thumbnail_near_an_edge_stays_inside_the_image(box):
    img = Image.new("RGB", (300, 200), (0, 200, 0))
    px = decode(face_thumbnail(img, box))
    assert all(near(px[y, x], (0, 200, 0)) for y in (0, 111) for x in (0, 111))  # no black


def test_face_larger_than_the_image_is_padded():
    px = decode(face_thumbnail(Image.new("RGB", (50, 50), (0, 200, 0)), (0, 0, 50, 50)))
    assert near(px[0, 0], (0, 0, 0)) and near(px[56, 56], (0, 200, 0))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_any_image_mode_gives_an_rgb_jpeg(mode):
    img = scene().convert(mode) if mode != "I;16" else Image.new("I;16", (300, 200), 3000)
    assert decode(face_thumbnail(img, np.array([100.0, 50.0, 160.0, 130.0]))).shape == (
        112,
        112,
        3,
    )


def test_size_and_quality():
    small = face_thumbnail(scene(), (100, 50, 160, 130), size=48, quality=30)
    big = face_thumbnail(scene(), (100, 50, 160, 130), size=160, quality=95)
    assert decode(small).shape[:2] == (48, 48) and decode(big).shape[:2] == (160, 160)
    assert len(small) < len(big)


@pytest.mark.parametrize(
    "box, kwargs, message",
    [
        ((10, 10, 10, 40), {}, "is empty"),
        ((50, 40, 10, 10), {}, "is empty"),
        ((10, 10, 40, 40), {"size": 4}, "thumbnail size"),
        ((10, 10, 40, 40), {"quality": 0}, "JPEG quality"),
        ((10, 10, 40, 40), {"margin": -0.1}, "margin"),
    ],
)
def test_bad_boxes_and_settings(box, kwargs, message):
    with pytest.raises(InputError, match=message):
        face_thumbnail(scene(), box, **kwargs)
