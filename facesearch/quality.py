"""How much a detected face is worth as evidence of who it is: size, pose and detection score.

``QualityGate`` is the one rule that decides which detections are faces worth naming at all:
identify reports the others with ``"quality": "low"`` and no name, enroll and evaluate do not
take them as a photo's subject, live does not embed them. Its defaults come from
``benchmarks/quality_gate.py`` (docs/detection.md).

FaceNet names a large, frontal, confidently detected face reliably; a face 25 pixels high or
turned to the side gives an embedding far from everyone, which reads as a confident "unknown".
``face_quality`` turns what MTCNN already reports (box, five landmarks, score) into a weight in
[0, 1], at no extra cost, so that such views count for less than good ones (``tracking``).

Landmarks are MTCNN's order: left eye, right eye, nose, left mouth corner, right mouth corner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import Faces

GOOD_SIDE = 80.0  # px: a face this big (full-resolution pixels) loses nothing to its size
FRONTAL_YAW = 0.15  # nose offset from the eyes' midpoint, in eye distances: still frontal
FULL_PROFILE_YAW = 0.6  # ... and a profile
MIN_QUALITY = 0.05  # the weight of the worst view (it still counts a little)


def face_side(boxes: np.ndarray) -> np.ndarray:
    """The shorter side of each box, in pixels."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])


def size_quality(boxes: np.ndarray) -> np.ndarray:
    """1 for faces ``GOOD_SIDE`` px or larger, falling linearly to 0 with the shorter side."""
    return np.clip(face_side(boxes) / GOOD_SIDE, 0.0, 1.0)


def pose_angles(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per face, (yaw, pitch) proxies measured in the eyes' own frame (so a tilted head is not
    taken for a turned one): yaw = the nose's offset from the eyes' midpoint along the eye line,
    in eye distances (0 frontal, ~0.5 a profile); pitch = where the nose sits between the eye
    line (0) and the mouth (1)."""
    lm = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    eyes_mid = (lm[:, 0] + lm[:, 1]) / 2
    axis = lm[:, 1] - lm[:, 0]
    eye_dist = np.maximum(np.linalg.norm(axis, axis=1), 1e-6)
    ux = axis / eye_dist[:, None]
    uy = np.stack([-ux[:, 1], ux[:, 0]], axis=1)  # perpendicular, pointing down the face
    nose = lm[:, 2] - eyes_mid
    mouth = (lm[:, 3] + lm[:, 4]) / 2 - eyes_mid
    yaw = np.abs(np.sum(nose * ux, axis=1)) / eye_dist
    span = np.sum(mouth * uy, axis=1)
    pitch = np.where(
        np.abs(span) > 1e-6, np.sum(nose * uy, axis=1) / np.where(span == 0, 1, span), 0.5
    )
    return yaw, pitch


def pose_quality(landmarks: np.ndarray) -> np.ndarray:
    """1 for a frontal face, falling to 0 towards a profile or a face looking far up or down.
    Missing landmarks (all zero, e.g. a box given by a caller) count as frontal."""
    lm = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    yaw, pitch = pose_angles(lm)
    q_yaw = np.clip(1.0 - (yaw - FRONTAL_YAW) / (FULL_PROFILE_YAW - FRONTAL_YAW), 0.0, 1.0)
    q_pitch = np.clip(1.0 - (np.abs(pitch - 0.55) - 0.15) / 0.3, 0.0, 1.0)
    q = q_yaw * q_pitch
    q[~np.any(lm != 0, axis=(1, 2))] = 1.0
    return q


def score_quality(scores: np.ndarray) -> np.ndarray:
    """MTCNN's probability mapped so that 0.99 and above is 1 and 0.8 or below is 0."""
    return np.clip((np.asarray(scores, np.float64) - 0.8) / 0.19, 0.0, 1.0)


def face_quality(boxes: np.ndarray, landmarks: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per face, a weight in [``MIN_QUALITY``, 1]: the product of size, pose and score quality."""
    q = size_quality(boxes) * pose_quality(landmarks) * score_quality(scores)
    return np.maximum(q, MIN_QUALITY)


@dataclass(frozen=True)
class QualityGate:
    """Which detections are faces good enough to name, enroll or evaluate.

    A detection passes when MTCNN's score is at least ``min_score`` and the shorter side of its
    box at least ``min_side`` pixels of the image as loaded. The defaults were measured on
    lfw_dev and the group photos (``benchmarks/quality_gate.py``, docs/detection.md): they
    keep all 3,321 lfw_dev subjects (lowest score 0.964, smallest 60 px) and the 20 faces of
    the group photos, and remove the 0.71-score "face" on the salt shaker in bbt2.jpg, the
    0.80 one on a blank corner of obama_and_biden.jpg, and 115 of the 680 other lfw_dev
    detections (hands, ears, hair, collars, and faces under 20 px). Partly visible bystanders
    score as low as junk does (0.83 to 0.9), so the score bar stays below them.
    """

    min_score: float = 0.85
    min_side: float = 20.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
        if self.min_side < 0:
            raise ValueError(f"min_side must be >= 0, got {self.min_side}")

    def passes(self, faces: Faces) -> np.ndarray:
        """(N,) bool: which of ``faces`` pass (``faces[gate.passes(faces)]`` keeps them)."""
        return (faces.scores >= self.min_score) & (face_side(faces.boxes) >= self.min_side)


DEFAULT_GATE = QualityGate()


def passes_gate(faces: Faces, gate: QualityGate | None) -> np.ndarray:
    """``gate.passes(faces)``, or every face when the gate is off (None)."""
    if gate is None:
        return np.ones(len(faces), bool)
    return gate.passes(faces)
