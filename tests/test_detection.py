"""The Faces table and the choice of a photo's subject (no models needed)."""

import numpy as np
import pytest

from facesearch.detection import most_prominent
from facesearch.types import Faces


def faces(*boxes, scores=None):
    b = np.array(boxes, np.float32)
    s = np.array(scores or [1.0] * len(boxes), np.float32)
    return Faces(b, s, np.zeros((len(boxes), 5, 2), np.float32))


def test_centred_face_beats_a_larger_one_at_the_edge():
    # 250x250 LFW-style photo: subject 80 px in the centre, bystander 110 px at the left edge
    f = faces((0, 60, 110, 170), (85, 85, 165, 165))
    assert most_prominent(f, (250, 250)) == 1


def test_much_larger_face_wins_even_off_centre():
    f = faces((10, 10, 210, 210), (300, 200, 340, 240))
    assert most_prominent(f, (640, 480)) == 0


def test_a_weak_detection_does_not_win_on_size_alone():
    f = faces((100, 100, 200, 200), (90, 90, 210, 210), scores=[0.99, 0.3])
    assert most_prominent(f, (300, 300)) == 0


def test_faces_table_validates_shapes_and_indexes_by_mask():
    f = faces((0, 0, 10, 10), (5, 5, 20, 20), scores=[0.95, 0.5])
    strong = f[f.scores > 0.9]
    assert len(strong) == 1 and strong.boxes[0, 2] == 10
    assert np.allclose(f.areas, [100, 225])
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\)"):
        Faces(np.zeros((2, 3)), np.zeros(2), np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="no faces"):
        most_prominent(Faces.empty(), (10, 10))
