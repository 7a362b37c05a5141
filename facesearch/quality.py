"""How much a detected face is worth as evidence of who it is: size, pose and detection score.

FaceNet names a large, frontal, confidently detected face reliably; a face 25 pixels high or
turned to the side gives an embedding far from everyone, which reads as a confident "unknown".
``face_quality`` turns what MTCNN already reports (box, five landmarks, score) into a weight in
[0, 1], at no extra cost, so that such views count for less than good ones (``tracking``).

Landmarks are MTCNN's order: left eye, right eye, nose, left mouth corner, right mouth corner.
"""

from __future__ import annotations

import numpy as np

GOOD_SIDE = 80.0  # px: a face this big (full-resolution pixels) loses nothing to its size
FRONTAL_YAW = 0.15  # nose offset from the eyes' midpoint, in eye distances: still frontal
FULL_PROFILE_YAW = 0.6  # ... and a profile
MIN_QUALITY = 0.05  # the weight of the worst view (it still counts a little)


def size_quality(boxes: np.ndarray) -> np.ndarray:
    """1 for faces ``GOOD_SIDE`` px or larger, falling linearly to 0 with the shorter side."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    side = np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    return np.clip(side / GOOD_SIDE, 0.0, 1.0)


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
