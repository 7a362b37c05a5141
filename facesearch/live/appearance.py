"""Cheap appearance signatures: colour histograms of a frame or of a face's box.

The live loop compares them from frame to frame to notice what IoU tracking cannot: a scene cut
(the whole picture changes at once, so no face on screen is the one that was there a frame ago)
and a face swapped in place (the box stays, the face inside it changes). A signature costs a
resize to a thumbnail and a 512-bin histogram: tens of microseconds.
"""

from __future__ import annotations

import numpy as np

BINS = 8  # per BGR channel
THUMB = 64  # frames are reduced to this width before counting


def _histogram(image: np.ndarray) -> np.ndarray:
    import cv2

    hist = cv2.calcHist([image], [0, 1, 2], None, [BINS] * 3, [0, 256] * 3).ravel()
    total = float(hist.sum())
    return hist / total if total > 0 else hist


def frame_signature(image: np.ndarray) -> np.ndarray:
    """Colour histogram of a BGR frame, from a thumbnail ``THUMB`` px wide."""
    import cv2

    step = max(1, image.shape[1] // (4 * THUMB))  # subsample first: area-averaging 1080p is slow
    small = image[::step, ::step]
    h, w = small.shape[:2]
    thumb = cv2.resize(small, (THUMB, max(1, round(h * THUMB / w))), interpolation=cv2.INTER_AREA)
    return _histogram(thumb)


def region_signature(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """Colour histogram of the inner part of ``box`` (x1, y1, x2, y2 pixels) in a BGR image;
    None when the box is (nearly) outside the image."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    # the middle of the box: the face itself, not the background at its corners
    dx, dy = 0.2 * (x2 - x1), 0.2 * (y2 - y1)
    c = (
        slice(max(0, int(y1 + dy)), min(h, int(y2 - dy))),
        slice(max(0, int(x1 + dx)), min(w, int(x2 - dx))),
    )
    patch = image[c]
    if patch.shape[0] < 2 or patch.shape[1] < 2:
        return None
    return _histogram(np.ascontiguousarray(patch))


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance of two signatures: 0 the same colours, 1 nothing in common."""
    return float(np.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(a * b))))))
