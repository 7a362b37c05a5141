"""Video clips assembled from real photos, with the truth of every frame: who is on screen.

A clip is a list of shots. In a shot one person's face (cut from a photo with some context)
moves over a background, growing or shrinking, and can start "turned": squeezed by a perspective
warp as a head turning away is (a planar stand-in for a real head turn), and small, so blurred
by the scaling. A new shot with another background is a scene cut; ``same_scene=True`` keeps the
background, so the face is swapped in place where only the face itself changed.

Used by the live tests and by ``benchmarks/live_bench.py`` (time to name).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Shot:
    """One person in one shot; sizes are the face patch's side in pixels, positions its centre
    as fractions of the frame, ``turn`` 0 (facing the camera) to 1 (turned far away)."""

    truth: str | None  # the person's name in the gallery, None for a stranger
    photo: Path
    frames: int
    size: tuple[float, float] = (150.0, 150.0)  # start, end
    centre: tuple[tuple[float, float], tuple[float, float]] = ((0.5, 0.45), (0.5, 0.45))
    turn: tuple[float, float] = (0.0, 0.0)  # start, end
    settle: float = 0.5  # fraction of the shot over which size/position/turn reach their end
    same_scene: bool = False  # keep the previous shot's background (no scene cut)


@dataclass(frozen=True)
class ShotSpan:
    truth: str | None
    start: int  # first frame
    end: int  # last frame
    clear_from: int  # first frame where the face is large and facing the camera
    cut: bool  # the shot starts with a scene cut


@dataclass(frozen=True)
class Clip:
    path: Path
    fps: float
    frames: int
    spans: list[ShotSpan]

    def truth_at(self, frame: int) -> str | None:
        for s in self.spans:
            if s.start <= frame <= s.end:
                return s.truth
        return None


def face_patch(detector, photo: Path, size: int = 200) -> np.ndarray:
    """The photo's main face cropped square with context (1.6x the box), BGR ``size`` px."""
    import cv2

    from facesearch.detection import most_prominent
    from facesearch.images import load_image

    img = load_image(photo)
    faces = detector.detect(img.image)
    x1, y1, x2, y2 = faces.boxes[most_prominent(faces, img.size)]
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, 0.8 * max(x2 - x1, y2 - y1)
    rgb = np.asarray(img.image)
    pad = int(half) + 2
    rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = rgb[
        int(cy - half) + pad : int(cy + half) + pad, int(cx - half) + pad : int(cx + half) + pad
    ]
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)


def background(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth coloured scene (gradients and a few soft blobs), different per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        a, b, base = rng.uniform(-60, 60), rng.uniform(-60, 60), rng.uniform(40, 200)
        img[..., c] = base + a * xx / width + b * yy / height
    for _ in range(4):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(40, 160)
        color = rng.uniform(-70, 70, 3)
        img += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None] * color
    return np.clip(img, 0, 255).astype(np.uint8)


def _place(
    scene: np.ndarray, patch: np.ndarray, side: float, centre: tuple[float, float], turn: float
) -> None:
    """Draw ``patch`` (square BGR) into ``scene`` at ``side`` px, turned by ``turn``."""
    import cv2

    h, w = scene.shape[:2]
    s = max(4, int(round(side)))
    p = cv2.resize(
        patch, (s, s), interpolation=cv2.INTER_AREA if s < patch.shape[0] else cv2.INTER_LINEAR
    )
    mask = np.full((s, s), 255, np.uint8)
    if turn > 0:
        # the far side recedes: narrower and shorter, as a head turned about its vertical axis
        squeeze, shrink = 1.0 - 0.7 * turn, 0.25 * turn
        src = np.float32([[0, 0], [s, 0], [s, s], [0, s]])
        dst = np.float32(
            [[0, 0], [s * squeeze, s * shrink], [s * squeeze, s * (1 - shrink)], [0, s]]
        )
        m = cv2.getPerspectiveTransform(src, dst)
        p = cv2.warpPerspective(p, m, (s, s), borderMode=cv2.BORDER_CONSTANT)
        mask = cv2.warpPerspective(mask, m, (s, s), borderMode=cv2.BORDER_CONSTANT)
    x0 = int(round(centre[0] * w - s / 2))
    y0 = int(round(centre[1] * h - s / 2))
    xs, ys = slice(max(0, x0), min(w, x0 + s)), slice(max(0, y0), min(h, y0 + s))
    ps = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
    region = scene[ys, xs]
    m3 = (mask[ps] > 127)[..., None]
    scene[ys, xs] = np.where(m3, p[ps], region)


def _lerp(a: float, b: float, f: float) -> float:
    return a + (b - a) * f


def render(
    shots: list[Shot],
    detector,
    path: Path,
    size: tuple[int, int] = (640, 480),
    fps: float = 25.0,
    seed: int = 0,
) -> Clip:
    """Write the shots one after another as an mp4 at ``path``; returns where each shot lies."""
    import cv2

    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    spans = []
    frame_no = 0
    scene = background(width, height, seed)
    patches: dict[Path, np.ndarray] = {}
    for k, shot in enumerate(shots):
        if k and not shot.same_scene:
            scene = background(width, height, seed + 1000 + k)
        if shot.photo not in patches:
            patches[shot.photo] = face_patch(detector, shot.photo)
        patch = patches[shot.photo]
        start, clear_from = frame_no, None
        for i in range(shot.frames):
            f = min(1.0, i / max(1.0, shot.settle * shot.frames))
            side = _lerp(*shot.size, f)
            cx = _lerp(shot.centre[0][0], shot.centre[1][0], f)
            cy = _lerp(shot.centre[0][1], shot.centre[1][1], f) + 0.01 * np.sin(i / 5)
            turn = _lerp(*shot.turn, f)
            img = scene.copy()
            _place(img, patch, side, (cx, cy), turn)
            writer.write(img)
            # the face inside the patch is about 1/1.6 of its side
            if clear_from is None and turn <= 0.1 and side / 1.6 >= 60:
                clear_from = frame_no
            frame_no += 1
        spans.append(
            ShotSpan(
                shot.truth,
                start,
                frame_no - 1,
                frame_no - 1 if clear_from is None else clear_from,
                cut=k > 0 and not shot.same_scene,
            )
        )
    writer.release()
    return Clip(path, fps, frame_no, spans)


def walking_clip(
    path: Path,
    detector,
    people: list[tuple[str | None, Path]],
    *,
    width: int = 640,
    height: int = 480,
    fps: float = 10.0,
    segment: int = 30,
    gap: int = 14,
    patch: int = 170,
    speed: float = 120.0,
) -> tuple[list[tuple[str | None, int, int]], int]:
    """An mp4 where each person walks across a gray scene (``speed`` px/s, bobbing), one after
    another with ``gap`` empty frames between; returns ``(truth, first, last)`` frame spans and
    the frame count. Used by the live and camera tests and ``benchmarks/cameras_bench.py``."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    spans = []
    frame_no = 0
    yy, xx = np.mgrid[0:height, 0:width]
    scene = (90 + 40 * xx / width + 20 * yy / height).astype(np.uint8)
    scene = np.dstack([scene] * 3)
    step = min(speed / fps, (width - patch - 60) / max(segment - 1, 1))
    for truth, photo in people:
        face = face_patch(detector, photo, size=patch)
        start = frame_no
        for k in range(segment):
            img = scene.copy()
            x = 30 + int(step * k)
            y = (height - patch) // 2 - 15 + int(20 * np.sin(k * step / 48))
            img[y : y + face.shape[0], x : x + face.shape[1]] = face
            writer.write(img)
            frame_no += 1
        spans.append((truth, start, frame_no - 1))
        for _ in range(gap):
            writer.write(scene)
            frame_no += 1
    writer.release()
    return spans, frame_no
