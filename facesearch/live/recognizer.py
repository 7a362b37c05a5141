"""Live recognition: detect, track, and name faces in a video stream, smoothly on a CPU.

Per frame: MTCNN on a copy downscaled to ``detect_width`` (every ``detect_every`` frames; on
the frames between, tracks move by their velocity), IoU tracking, then only the tracks that need
it (new, undecided, unknown, due for a periodic re-check, or changed) are cropped from the
full-resolution frame and embedded, all in one batch, and searched in the gallery. Names are
decided by quality-weighted votes (``tracking``, ``quality``), and events are emitted when a face
appears, is recognised and leaves. Faces below the quality gate (``FaceSearch.quality_gate``,
measured at full resolution) are tracked and shown but never embedded or named.

A track never carries a name onto a different face: a scene cut (the frame's colour histogram
jumps) ends every track, a face whose colours jump inside its box is embedded again, and a track
whose new embedding is far from its previous one is split into a new track.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..quality import face_quality, passes_gate
from ..threshold import Threshold
from ..types import Box, Faces, as_box
from . import appearance
from .tracking import Track, Tracker
from .video import Frame

if TYPE_CHECKING:
    from ..pipeline import FaceSearch

log = logging.getLogger(__name__)


@dataclass
class LiveOptions:
    """Knobs of the live loop; the defaults are what ``benchmarks/live_bench.py`` measured."""

    detect_width: int = 640  # frames wider than this are downscaled for detection
    detect_every: int = 2  # run the detector on every Nth frame, predict tracks in between
    detect_workers: int | None = None  # frames detected at once (None: ``ahead.auto_workers``)
    min_face: int = 20  # smallest face searched, in detection-frame pixels
    recheck_frames: int = 25  # re-embed a track with a verdict this often (frames)
    sure_margin: float = 0.08  # a first result this far on either side of the threshold decides
    threshold: float | None = None  # None: the gallery's (``threshold.py``)
    refresh_s: float = 2.0  # how often to look for gallery changes made by others
    refine: str = "none"  # "exact" | "gradient": re-examine a wider pool of index candidates
    ef: int | None = None  # HNSW search breadth (None: the gallery's)
    scene_cut: float = 0.35  # frame-histogram distance between consecutive frames that ends tracks
    face_change: float = 0.45  # histogram distance inside a face's box that asks for a re-check
    split_distance: float = 0.7  # embedding distance between checks of a track that splits it


@dataclass(frozen=True)
class LiveEvent:
    """One line of ``--events``: a face appeared, was recognised (or renamed), or left."""

    t: float
    frame: int
    event: str  # "appear" | "recognized" | "unknown" | "leave"
    track: int
    name: str | None
    similarity: float | None
    box: Box
    quality: str = "ok"  # "low": the face is below the quality gate, so it is not named

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "frame": self.frame,
            "event": self.event,
            "track": self.track,
            "name": self.name,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "box": [round(v, 1) for v in self.box],
            "quality": self.quality,
        }


@dataclass
class FrameResult:
    frame: Frame
    tracks: list[Track]
    events: list[LiveEvent]
    detected: bool
    embedded: int
    latency: float = 0.0  # seconds from capture to this result


@dataclass
class FrameStep:
    """One frame between the stages of ``LiveRecognizer``: ``start``, ``track``, ``conclude``."""

    frame: Frame
    events: list[LiveEvent] = field(default_factory=list)
    detect: bool = False
    scale: float = 1.0  # of ``small`` to the frame
    small: np.ndarray | None = None  # RGB, what to detect on (frames being detected)
    rgb: np.ndarray | None = None  # the full frame in RGB (frames with faces to embed)
    due: list[Track] = field(default_factory=list)  # tracks to embed, in order
    due_faces: Faces | None = None  # their boxes in ``rgb``

    @property
    def to_embed(self) -> tuple[np.ndarray, Faces] | None:
        """The frame and the faces in it to embed, if any."""
        if not self.due or self.rgb is None or self.due_faces is None:
            return None
        return self.rgb, self.due_faces


@dataclass
class LiveStats:
    frames: int = 0
    detected_frames: int = 0
    embedded_faces: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The counts, the rate and the latency percentiles (capture to result, ms)."""
        return {
            "frames": self.frames,
            "detected_frames": self.detected_frames,
            "embedded_faces": self.embedded_faces,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
            "latency_p50_ms": percentile_ms(self.latencies, 50),
            "latency_p95_ms": percentile_ms(self.latencies, 95),
        }


def percentile_ms(seconds: list[float], q: float) -> float | None:
    """The ``q``-th percentile (nearest rank) of ``seconds``, in ms rounded to 0.1; None if empty."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(1000 * ordered[k], 1)


class LiveRecognizer:
    """Turns frames into tracked, named faces and events (no I/O: see ``run_live``)."""

    def __init__(
        self, fs: FaceSearch, options: LiveOptions | None = None, first_track: int = 1
    ) -> None:
        self.fs = fs
        self.options = options or LiveOptions()
        self.tracker = Tracker(recheck_frames=self.options.recheck_frames, first_id=first_track)
        self._threshold = self._gallery_threshold()
        self._checked = time.perf_counter()
        self._last_detect: int | None = None
        self._frame_signature: np.ndarray | None = None
        self.stats = LiveStats()

    def _gallery_threshold(self) -> Threshold:
        return self.fs.threshold_in_force(self.options.threshold)

    def process(self, frame: Frame) -> FrameResult:
        """Detect/track/recognise one frame (the stages below, one after the other)."""
        step = self.start(frame)
        faces = self.detect(step.small) if step.detect and step.small is not None else None
        return self.finish_frame(step, faces)

    def finish_frame(self, step: FrameStep, faces: Faces | None) -> FrameResult:
        """``track`` the frame's detected faces (None: not detected), embed the due ones and
        ``conclude``: everything after detection, in frame order."""
        self.track(step, faces)
        todo = step.to_embed
        vectors = self.fs.embed_faces(*todo) if todo is not None else None
        return self.conclude(step, vectors)

    def detect(self, small: np.ndarray) -> Faces:
        """MTCNN on a frame's detection copy (``detection_input``). Reads no state of the
        recognizer, so frames can be detected ahead on other threads (``live.ahead``)."""
        # no padded retry: an empty frame is normal in video, and the retry doubles its cost
        return self.fs.detect(small, min_face=self.options.min_face, padded_retry=False)

    def detection_input(self, frame: Frame) -> tuple[float, np.ndarray]:
        """The frame's scale for detection and its RGB copy at most ``detect_width`` wide."""
        import cv2

        h, w = frame.image.shape[:2]
        scale = min(1.0, self.options.detect_width / w)
        small = frame.image
        if scale < 1.0:
            size = (round(w * scale), round(h * scale))
            small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
        return scale, cv2.cvtColor(small, cv2.COLOR_BGR2RGB)

    def detects(self, index: int, last_detect: int | None) -> bool:
        """Whether frame ``index`` is detected when ``last_detect`` was (a scene cut aside)."""
        return last_detect is None or index - last_detect >= self.options.detect_every

    @property
    def last_detect(self) -> int | None:
        """The index of the last frame that was detected."""
        return self._last_detect

    # -- the stages of one frame: the server's cameras run them for several frames at once ----

    def start(self, frame: Frame, prepared: tuple[float, np.ndarray] | None = None) -> FrameStep:
        """Look for gallery changes and scene cuts, and decide whether this frame is detected
        (``step.small``, RGB at ``detect_width``, is what to detect on; ``prepared``: the
        frame's ``detection_input`` if the caller already made it)."""
        opts = self.options
        now = time.perf_counter()
        if now - self._checked >= opts.refresh_s:
            self._checked = now
            if self.fs.refresh():
                self._threshold = self._gallery_threshold()
                self.forget_names()
        step = FrameStep(frame)
        step.detect = self.detects(frame.index, self._last_detect)
        if self._scene_cut(frame.image):
            step.events += [self._event(frame, "leave", t) for t in self.tracker.end_all()]
            step.detect = True  # find the new scene's faces now, not on the next detection frame
        if step.detect:
            self._last_detect = frame.index
            step.scale, step.small = prepared or self.detection_input(frame)
        return step

    def track(self, step: FrameStep, faces: Faces | None) -> None:
        """Move the tracks by the faces detected in ``step.small`` (None on frames that were not
        detected: tracks move by their velocity) and choose the faces to embed (``step.due``,
        ``step.due_faces`` in ``step.rgb``)."""
        import cv2

        frame, idx = step.frame, step.frame.index
        if faces is not None:
            boxes = faces.boxes / step.scale
            landmarks = faces.landmarks / step.scale
            quality = face_quality(boxes, landmarks, faces.scores)
            good = passes_gate(Faces(boxes, faces.scores, landmarks), self.fs.quality_gate)
            update = self.tracker.update(boxes, faces.scores, idx, quality, low=~good)
            step.events += [self._event(frame, "appear", t) for t in update.appeared]
            step.events += [self._event(frame, "leave", t) for t in update.ended]
            current = self.tracker.recent(idx)
            self._notice_changed_faces(frame.image, current)
        else:
            self.tracker.predict(idx)
            current = []  # nothing was detected in this frame: nothing new to embed
        due = [t for t in current if self.tracker.needs_embedding(t, idx)]
        if not due:
            return
        h, w = frame.image.shape[:2]
        boxes = np.array([t.box for t in due], np.float32)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        ok = (boxes[:, 2] - boxes[:, 0] >= 4) & (boxes[:, 3] - boxes[:, 1] >= 4)
        step.due = [t for t, k in zip(due, ok) if k]
        if step.due:
            step.due_faces = Faces.from_boxes(boxes[ok])
            step.rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)

    def conclude(self, step: FrameStep, vectors: np.ndarray | None) -> FrameResult:
        """Name the due faces by their embeddings (``vectors[i]`` is ``step.due[i]``'s) and
        return the frame's tracks and events."""
        frame = step.frame
        if step.due and vectors is not None and step.due_faces is not None:
            step.events += self._recognise(frame, step.due, step.due_faces, vectors)
        # after recognition, which may have split a track
        within = 0 if step.detect else self.options.detect_every
        shown = self.tracker.recent(frame.index, within=within)
        self.stats.frames += 1
        self.stats.detected_frames += int(step.detect)
        self.stats.embedded_faces += len(step.due)
        result = FrameResult(frame, shown, step.events, step.detect, len(step.due))
        result.latency = time.perf_counter() - frame.captured
        self.stats.latencies.append(result.latency)
        return result

    def _recognise(
        self, frame: Frame, tracks: list[Track], faces: Faces, vectors: np.ndarray
    ) -> list[LiveEvent]:
        events: list[LiveEvent] = []
        matches = self.fs.match_embeddings(
            vectors,
            faces,
            threshold=self._threshold,
            top_k=1,
            refine=self.options.refine,
            ef=self.options.ef,
        )
        for t, vector, match in zip(tracks, vectors, matches):
            if (
                t.vector is not None
                and 1.0 - float(vector @ t.vector) > self.options.split_distance
            ):
                # another face under the same box (a swap the IoU tracker cannot see)
                events.append(self._event(frame, "leave", t))
                t = self.tracker.split(t, frame.index)
                events.append(self._event(frame, "appear", t))
            t.vector = vector
            t.signature = appearance.region_signature(frame.image, t.box)
            dist = match.distance if match.distance is not None else 2.0
            sure = abs(dist - self._threshold.value) >= self.options.sure_margin
            if (
                self.tracker.vote(t, match.name, match.similarity, frame.index, sure, t.quality)
                and t.decided
            ):
                events.append(self._event(frame, "unknown" if t.name is None else "recognized", t))
        return events

    def _scene_cut(self, image: np.ndarray) -> bool:
        """Whether this frame starts a new shot (its colours differ wholesale from the last)."""
        signature = appearance.frame_signature(image)
        previous, self._frame_signature = self._frame_signature, signature
        return (
            previous is not None
            and appearance.distance(previous, signature) > self.options.scene_cut
        )

    def _notice_changed_faces(self, image: np.ndarray, tracks: list[Track]) -> None:
        """Mark tracks whose face looks different from when it was last embedded."""
        for t in tracks:
            if t.signature is None or t.changed:
                continue
            now = appearance.region_signature(image, t.box)
            if now is not None and appearance.distance(now, t.signature) > self.options.face_change:
                t.changed = True

    def forget_names(self) -> None:
        """Make every track be recognised again (after the gallery changed)."""
        for t in self.tracker.tracks:
            t.votes.clear()
            t.stale = True
            t.embedded_frame = None

    def finish(self, frame: Frame | None) -> list[LiveEvent]:
        """ "leave" events for the tracks still open when the stream ends."""
        if frame is None:
            return []
        events = [self._event(frame, "leave", t) for t in self.tracker.tracks]
        self.tracker.tracks = []
        return events

    @staticmethod
    def _event(frame: Frame, kind: str, track: Track) -> LiveEvent:
        box = track.seen_box if kind == "leave" and track.seen_box is not None else track.box
        return LiveEvent(
            frame.t,
            frame.index,
            kind,
            track.id,
            track.name,
            track.similarity,
            as_box(box),
            "low" if track.low_quality else "ok",
        )


# -- drawing -----------------------------------------------------------------------------------
