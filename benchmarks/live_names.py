"""Time to first correct name in live recognition, and wrong names, on clips with a known truth.

Two kinds of input, both run through ``LiveRecognizer.process`` frame by frame at 25 fps:

* assembled clips (``tests/clipgen.py``): each is one shot of an enrolled lfw_dev person who
  enters small and turned away and then faces the camera (at 140-240 px), a scene cut to a second
  enrolled person facing the camera at the same place, and that person swapped in place (same
  background) for a stranger. Every person is enrolled from one photo and shown from another,
  and only people whom ``identify`` names on that other photo as a still are used (the clip then
  measures the live loop, not the model). Time to name = from the first frame where the face is
  large and frontal (``clear_from``) to the first ``recognized`` event with the right name;
* ``video.mp4`` (people walking towards the camera, 1920x1080): the faces of the last frame that
  are at least 60 px high are enrolled from that frame, and each is followed back through the
  video on per-frame detections; a person's time to name runs from the first frame they are seen
  at good quality (``quality >= 0.5``) to the first ``recognized`` event naming them at their
  place (people clear for less than the last half second are not timed).

A wrong name is a ``recognized`` event naming someone other than who is on screen then (the
stranger, the next person after a cut, another walker), or a frame on which a shown track
carries such a name.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from _common import LFW_DEV, REPO, person_photos

sys.path.insert(0, str(REPO / "tests"))
from clipgen import Clip, Shot, render  # noqa: E402

FPS = 25.0


@dataclass
class NameTiming:
    source: str
    person: str
    clear_from: int
    named_at: int | None  # frame of the first right ``recognized`` event

    @property
    def frames(self) -> int | None:
        return None if self.named_at is None else max(0, self.named_at - self.clear_from)


@dataclass
class RunResult:
    timings: list[NameTiming] = field(default_factory=list)
    wrong_events: int = 0
    wrong_frames: int = 0
    frames: int = 0
    seconds: float = 0.0
    embeddings: int = 0


def choose_people(n: int, seed: int = 7) -> tuple[list[tuple[str, Path, Path]], list[Path]]:
    """(person, enroll photo, clip photo) for ``n`` lfw_dev people with 4+ photos, and the
    one-photo people (strangers and distractors)."""
    people = person_photos(LFW_DEV)
    many = sorted(p for p, photos in people.items() if len(photos) >= 4)
    rng = np.random.default_rng(seed)
    picked = [many[i] for i in rng.permutation(len(many))[: 3 * n]]
    singles = [photos[0] for _, photos in sorted(people.items()) if len(photos) == 1]
    return [(p, people[p][0], people[p][1]) for p in picked], singles


def build_gallery(fs, people, distractors) -> None:
    """Enroll one photo per clip person, and the distractors as people of their own."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, enroll_photo, _ in people:
            (root / name).mkdir()
            (root / name / enroll_photo.name).symlink_to(enroll_photo)
        for photo in distractors:
            (root / photo.parent.name).mkdir()
            (root / photo.parent.name / photo.name).symlink_to(photo)
        fs.enroll(root)


def nameable(fs, people) -> list[tuple[str, Path, Path]]:
    """The people whom ``identify`` names correctly on their clip photo as a still."""
    from facesearch.detection import most_prominent
    from facesearch.images import load_image

    kept = []
    for name, enroll_photo, clip_photo in people:
        img = load_image(clip_photo)
        result = fs.identify(img)
        if not result.faces:
            continue
        boxes = np.array([f.box for f in result.faces], np.float32)
        from facesearch.types import Faces

        faces = Faces(
            boxes,
            np.array([f.score for f in result.faces], np.float32),
            np.zeros((len(boxes), 5, 2), np.float32),
        )
        if result.faces[most_prominent(faces, img.size)].name == name:
            kept.append((name, enroll_photo, clip_photo))
    return kept


def make_clips(detector, people, strangers, n_clips: int, folder: Path) -> list[Clip]:
    """``n_clips`` clips: late-facing person, cut to a second person, swap to a stranger."""
    clips = []
    for k in range(n_clips):
        a = people[(2 * k) % len(people)]
        b = people[(2 * k + 1) % len(people)]
        stranger = strangers[(37 * k) % len(strangers)]
        side = 140 + 25 * (k % 5)  # the face patch's final side; the face is ~1/1.6 of it
        start_x = 0.15 if k % 2 == 0 else 0.85
        shots = [
            Shot(
                a[0],
                a[2],
                90,
                size=(42.0, float(side)),
                centre=((start_x, 0.35), (0.5, 0.45)),
                turn=(0.9, 0.0),
                settle=0.55,
            ),
            Shot(b[0], b[2], 50, size=(float(side), float(side))),
            Shot(None, stranger, 50, size=(float(side), float(side)), same_scene=True),
        ]
        clips.append(render(shots, detector, folder / f"clip{k}.mp4", fps=FPS, seed=k))
    return clips


def read_frames(path: Path, width: int | None = None) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        if width and f.shape[1] != width:
            f = cv2.resize(
                f, (width, round(f.shape[0] * width / f.shape[1])), interpolation=cv2.INTER_AREA
            )
        frames.append(f)
    cap.release()
    return frames


def run_clip(fs, options, clip: Clip, result: RunResult) -> None:
    from facesearch.live import LiveRecognizer
    from facesearch.live.video import Frame

    rec = LiveRecognizer(fs, options)
    named: dict[int, int] = {}  # shot -> first right recognized frame
    t0 = time.perf_counter()
    for i, img in enumerate(read_frames(clip.path)):
        r = rec.process(Frame(i, i / clip.fps, img, time.perf_counter()))
        truth = clip.truth_at(i)
        shot = next(k for k, s in enumerate(clip.spans) if s.start <= i <= s.end)
        for e in r.events:
            if e.event != "recognized":
                continue
            if e.name == truth:
                named.setdefault(shot, i)
            else:
                result.wrong_events += 1
        if any(t.name is not None and t.name != truth for t in r.tracks):
            result.wrong_frames += 1
        result.frames += 1
    result.seconds += time.perf_counter() - t0
    result.embeddings += rec.stats.embedded_faces
    for k, span in enumerate(clip.spans):
        if span.truth is not None:
            kind = "late-facing" if k == 0 else "after a cut"
            result.timings.append(
                NameTiming(f"{clip.path.stem} ({kind})", span.truth, span.clear_from, named.get(k))
            )


@dataclass
class VideoTruth:
    frames: list[np.ndarray]
    walkers: dict[str, dict[int, np.ndarray]]  # name -> frame -> box (where that person is)
    clear_from: dict[str, int]


def prepare_video(fs, video: Path, detect_width: int = 640, min_side: float = 60.0) -> VideoTruth:
    """Enroll the walkers of the last frame from it, and follow each back through the video.

    Every frame is detected once (independently of the live loop); a walker's box is chained
    backwards from the last frame by IoU with the previous one, and their ``clear_from`` is the
    first frame of that chain where the face's quality is at least 0.5.
    """
    import cv2
    from PIL import Image

    from facesearch.live.tracking import iou_matrix
    from facesearch.quality import face_quality
    from facesearch.types import Faces

    frames = read_frames(video)
    scale = min(1.0, detect_width / frames[0].shape[1])
    detected = []
    for f in frames:  # as the live loop does: detect on a small copy, boxes in full resolution
        small = cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = fs.detector.detect(Image.fromarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB)))
        detected.append(Faces(faces.boxes / scale, faces.scores, faces.landmarks / scale))
    last = len(frames) - 1
    rgb = cv2.cvtColor(frames[last], cv2.COLOR_BGR2RGB)
    walkers: dict[str, dict[int, np.ndarray]] = {}
    clear: dict[str, int] = {}
    for j, box in enumerate(detected[last].boxes):
        if box[3] - box[1] < min_side:
            continue
        name = f"walker_{j}"
        # from a region around the face: enroll_face takes each image's pixels once
        x1, y1, x2, y2 = box
        pad = 1.5 * max(x2 - x1, y2 - y1)
        ox, oy = int(max(0, x1 - pad)), int(max(0, y1 - pad))
        region = np.ascontiguousarray(rgb[oy : int(y2 + pad), ox : int(x2 + pad)])
        fs.enroll_face(
            name, region, box=(x1 - ox, y1 - oy, x2 - ox, y2 - oy), source="video.mp4, last frame"
        )
        path = {last: box}
        good = last
        cur = box
        missed = 0
        for i in range(last - 1, -1, -1):
            faces = detected[i]
            ious = iou_matrix(cur[None], faces.boxes)[0] if len(faces) else np.zeros(1)
            k = int(np.argmax(ious))
            if ious[k] < 0.3:
                missed += 1  # a detection missed for a frame or two does not end the path
                if missed > 3:
                    break
                continue
            missed = 0
            cur = faces.boxes[k]
            path[i] = cur
            q = face_quality(
                faces.boxes[k : k + 1], faces.landmarks[k : k + 1], faces.scores[k : k + 1]
            )[0]
            if q >= 0.5:
                good = i
        walkers[name] = path
        if good <= last - FPS / 2:  # seen clearly for at least half a second
            clear[name] = good
    return VideoTruth(frames, walkers, clear)


def run_video(fs, options, truth: VideoTruth, label: str) -> RunResult:
    from facesearch.live import LiveRecognizer
    from facesearch.live.tracking import iou_matrix
    from facesearch.live.video import Frame

    def at(name: str, frame: int, box: np.ndarray) -> bool:
        """Whether ``name`` is at ``box`` on ``frame`` (not wrong where their path is unknown)."""
        path = truth.walkers.get(name)
        if path is None:
            return False
        where = path.get(frame)
        if where is None:
            return frame < min(path) or frame > max(path)
        return iou_matrix(where[None], np.asarray(box)[None])[0, 0] >= 0.3

    rec = LiveRecognizer(fs, options)
    result = RunResult()
    named: dict[str, int] = {}
    t0 = time.perf_counter()
    for i, img in enumerate(truth.frames):
        r = rec.process(Frame(i, i / FPS, img, time.perf_counter()))
        for e in r.events:
            if e.event != "recognized":
                continue
            if at(e.name, i, e.box):
                named.setdefault(e.name, i)
            else:
                result.wrong_events += 1
        if any(t.name is not None and not at(t.name, i, t.box) for t in r.tracks):
            result.wrong_frames += 1
        result.frames += 1
    result.seconds = time.perf_counter() - t0
    result.embeddings = rec.stats.embedded_faces
    for name, clear in truth.clear_from.items():
        result.timings.append(NameTiming(label, name, clear, named.get(name)))
    return result


def summarise(label: str, r: RunResult) -> dict:
    frames = [t.frames for t in r.timings if t.frames is not None]
    missed = sum(t.frames is None for t in r.timings)
    return {
        "method": label,
        "people": len(r.timings),
        "named": len(frames),
        "never_named": missed,
        "median_s": statistics.median(frames) / FPS if frames else None,
        "max_s": max(frames) / FPS if frames else None,
        "within_0_5s": sum(f <= 0.5 * FPS for f in frames),
        "wrong_events": r.wrong_events,
        "wrong_frames": r.wrong_frames,
        "fps": r.frames / r.seconds if r.seconds else 0.0,
        "embeddings": r.embeddings,
        "timings": [
            {
                "source": t.source,
                "person": t.person,
                "clear_from": t.clear_from,
                "named_at": t.named_at,
            }
            for t in r.timings
        ],
    }
