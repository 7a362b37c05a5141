"""Colour signatures for scene cuts and faces swapped in place (synthetic frames)."""

from __future__ import annotations

import numpy as np

from clipgen import background
from facesearch.live import LiveOptions, appearance


def test_a_scene_cut_is_far_and_a_moving_face_is_not():
    a, b = background(640, 480, 1), background(640, 480, 2)
    cut = appearance.distance(appearance.frame_signature(a), appearance.frame_signature(b))
    assert cut > LiveOptions().scene_cut
    moved = a.copy()
    moved[200:300, 300:380] = (40, 60, 200)  # a face-sized patch appearing in the same scene
    same = appearance.distance(appearance.frame_signature(a), appearance.frame_signature(moved))
    assert same < LiveOptions().scene_cut / 2
    assert appearance.distance(appearance.frame_signature(a), appearance.frame_signature(a)) == 0


def test_region_signature_sees_what_is_inside_the_box():
    img = background(640, 480, 3)
    img[100:200, 100:200] = (30, 30, 220)
    other = img.copy()
    other[100:200, 100:200] = (200, 180, 20)
    box = np.array([100, 100, 200, 200.0])
    before = appearance.region_signature(img, box)
    after = appearance.region_signature(other, box)
    assert before is not None and after is not None
    assert appearance.distance(before, after) > LiveOptions().face_change
    assert appearance.region_signature(img, np.array([700, 500, 800, 600.0])) is None
