"""Camera fixtures: a clip of real people walking past (two enrolled, one stranger)."""

from __future__ import annotations

import pytest

from clipgen import walking_clip
from conftest import FACES

FPS = 10
SEGMENT, GAP = 30, 10  # frames a person is in view, empty frames between people
#: (truth, photo): two people of the enrolled gallery (their val photos; the gallery has their
#: train photos) and a stranger who is in no gallery
PEOPLE = [
    ("ben_afflek", FACES / "celebrity5" / "val" / "ben_afflek" / "1.jpg"),
    ("mindy_kaling", FACES / "celebrity5" / "val" / "mindy_kaling" / "2.jpg"),
    (None, FACES / "lfw_dev" / "images" / "Abbas_Kiarostami" / "Abbas_Kiarostami_0001.jpg"),
]


@pytest.fixture(scope="session")
def door_clip(tmp_path_factory, detector):
    """(path, spans, frames): a 640x480 mp4 at 10 fps of ``PEOPLE`` walking past, one by one."""
    path = tmp_path_factory.mktemp("cameras") / "door.mp4"
    spans, frames = walking_clip(path, detector, PEOPLE, fps=FPS, segment=SEGMENT, gap=GAP)
    return path, spans, frames
