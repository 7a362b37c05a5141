"""Face quality from MTCNN's box, landmarks and score (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from facesearch.quality import (
    DEFAULT_GATE,
    MIN_QUALITY,
    QualityGate,
    face_quality,
    passes_gate,
    pose_quality,
    size_quality,
)
from facesearch.types import Faces

# left eye, right eye, nose, left mouth corner, right mouth corner of a frontal face, 100 px box
FRONTAL = np.array([[35, 40], [65, 40], [50, 55], [38, 72], [62, 72]], np.float32)


def rotated(lm: np.ndarray, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = lm.mean(0)
    return (lm - centre) @ r.T + centre


def test_a_frontal_face_is_full_quality_even_when_the_head_is_tilted():
    assert pose_quality(FRONTAL[None])[0] == pytest.approx(1.0)
    assert pose_quality(rotated(FRONTAL, 30)[None])[0] == pytest.approx(1.0)


@pytest.mark.parametrize("nose_x, low, high", [(58, 0.6, 0.85), (64, 0.2, 0.4), (72, 0.0, 0.0)])
def test_a_turned_face_loses_quality_with_the_turn(nose_x, low, high):
    lm = FRONTAL.copy()
    lm[2, 0] = nose_x
    assert low <= pose_quality(lm[None])[0] <= high


def test_looking_far_up_or_down_loses_quality():
    up = FRONTAL.copy()
    up[2, 1] = 42  # the nose almost on the eye line
    assert pose_quality(up[None])[0] < 0.3


def test_missing_landmarks_count_as_frontal():
    assert pose_quality(np.zeros((1, 5, 2)))[0] == 1.0


def test_size_and_score_and_the_product():
    boxes = np.array([[0, 0, 100, 100], [0, 0, 40, 40], [0, 0, 10, 12]], np.float32)
    assert size_quality(boxes).tolist() == pytest.approx([1.0, 0.5, 0.125])
    lms = np.stack([FRONTAL, FRONTAL * 0.4, FRONTAL * 0.1])
    q = face_quality(boxes, lms, np.array([0.999, 0.999, 0.7]))
    assert q[0] == pytest.approx(1.0) and q[1] == pytest.approx(0.5)
    assert q[2] == MIN_QUALITY  # a low score: the floor, never zero


@pytest.mark.parametrize(
    "score, side, passes",
    [
        (0.999, 100, True),
        (0.85, 20, True),  # exactly at the default gate
        (0.849, 100, False),  # a confident-looking non-face: bbt2's salt shaker scores 0.71
        (0.999, 19, False),  # too small for FaceNet to tell anyone apart
    ],
)
def test_the_default_gate(score, side, passes):
    faces = Faces(
        np.array([[0, 0, side, side + 5]], np.float32),
        np.array([score], np.float32),
        np.zeros((1, 5, 2), np.float32),
    )
    assert DEFAULT_GATE.passes(faces).tolist() == [passes]
    assert passes_gate(faces, None).tolist() == [True]  # the gate turned off


def test_gate_masks_select_faces_and_bad_settings_are_refused():
    faces = Faces(
        np.array([[0, 0, 50, 50], [0, 0, 50, 50]], np.float32),
        np.array([0.99, 0.7], np.float32),
        np.zeros((2, 5, 2), np.float32),
    )
    assert len(faces[DEFAULT_GATE.passes(faces)]) == 1
    assert passes_gate(Faces.empty(), DEFAULT_GATE).shape == (0,)
    with pytest.raises(ValueError, match="min_score must be in"):
        QualityGate(min_score=1.5)
    with pytest.raises(ValueError, match="min_side must be >= 0"):
        QualityGate(min_side=-1)
