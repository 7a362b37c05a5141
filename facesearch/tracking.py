"""Face tracks across video frames: IoU association, and names confirmed by votes.

A track is embedded when it appears, then only every ``recheck_frames`` frames, or sooner when
its face has grown or shrunk a lot since the last embedding, or while it has no verdict yet.
A verdict (a name, or unknown) is reached at once when the first result is clear-cut (within
``sure_margin`` of the threshold's right side), else once it holds a majority of the track's
recent votes (at least ``confirm_votes`` of them); it then sticks until another verdict wins by
votes, so one odd frame does not make the label flicker.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from .types import Box, as_box


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection-over-union of boxes ``a`` (N, 4) and ``b`` (M, 4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class Vote:
    name: str | None
    similarity: float | None


@dataclass
class Track:
    """One face followed over frames."""

    id: int
    box: np.ndarray
    score: float
    first_frame: int
    last_seen: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    seen_box: np.ndarray | None = None  # where it was last detected (``box`` may be predicted)
    name: str | None = None  # confirmed name; None = unknown (or not yet decided)
    similarity: float | None = None  # of the latest embedding to the confirmed/nearest person
    decided: bool = False  # a first verdict (name or unknown) has been reached
    stale: bool = False  # the verdict must be re-established (the gallery changed)
    votes: deque[Vote] = field(default_factory=lambda: deque(maxlen=5))
    embedded_frame: int | None = None
    embedded_box: np.ndarray | None = None

    @property
    def as_box(self) -> Box:
        return as_box(self.box)


@dataclass(frozen=True)
class TrackUpdate:
    """What one frame did to the tracks."""

    appeared: list[Track]
    ended: list[Track]


class Tracker:
    """Greedy IoU tracker for face boxes (faces rarely cross, so greedy matching suffices)."""

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_missed: int = 10,
        recheck_frames: int = 25,
        unconfirmed_every: int = 3,
        confirm_votes: int = 2,
        grew: float = 1.5,
    ) -> None:
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.recheck_frames = recheck_frames
        self.unconfirmed_every = unconfirmed_every
        self.confirm_votes = confirm_votes
        self.grew = grew
        self.tracks: list[Track] = []
        self._next_id = 1

    def predict(self) -> None:
        """Move tracks by their velocity, for a frame on which detection does not run."""
        for t in self.tracks:
            t.box = t.box + t.velocity

    def update(self, boxes: np.ndarray, scores: np.ndarray, frame: int) -> TrackUpdate:
        """Associate this frame's detections with tracks; start and end tracks."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        live = self.tracks
        ious = iou_matrix(np.array([t.box for t in live]).reshape(-1, 4), boxes)
        matched_t: set[int] = set()
        matched_d: set[int] = set()
        for flat in np.argsort(-ious, axis=None):
            ti, di = divmod(int(flat), len(boxes))
            if ious[ti, di] < self.iou_threshold:
                break
            if ti in matched_t or di in matched_d:
                continue
            matched_t.add(ti)
            matched_d.add(di)
            t = live[ti]
            gap = max(frame - t.last_seen, 1)
            t.velocity = 0.5 * t.velocity + 0.5 * (boxes[di] - t.box) / gap
            t.box, t.score, t.last_seen = boxes[di], float(scores[di]), frame
            t.seen_box = t.box
        appeared = []
        for di in range(len(boxes)):
            if di not in matched_d:
                t = Track(self._next_id, boxes[di], float(scores[di]), frame, frame)
                t.seen_box = t.box
                self._next_id += 1
                appeared.append(t)
        ended = [t for t in live if frame - t.last_seen > self.max_missed]
        self.tracks = [t for t in live if frame - t.last_seen <= self.max_missed] + appeared
        return TrackUpdate(appeared, ended)

    def recent(self, frame: int, within: int = 0) -> list[Track]:
        """Tracks detected in the last ``within`` frames (0: in this very frame)."""
        return [t for t in self.tracks if frame - t.last_seen <= within]

    def needs_embedding(self, track: Track, frame: int) -> bool:
        if track.embedded_frame is None or track.embedded_box is None:
            return True
        since = frame - track.embedded_frame
        if not track.decided or track.stale:
            return since >= self.unconfirmed_every
        if since >= self.recheck_frames:
            return True
        # A face that came much closer (or went away) gives new evidence; one that only moved
        # is the same face, which the IoU association already guarantees.
        side = float(track.box[2] - track.box[0])
        before = max(float(track.embedded_box[2] - track.embedded_box[0]), 1.0)
        return not 1 / self.grew <= side / before <= self.grew

    def vote(
        self,
        track: Track,
        name: str | None,
        similarity: float | None,
        frame: int,
        sure: bool = False,
    ) -> bool:
        """Record one recognition result; returns True when the verdict changed.

        ``sure``: this result alone is decisive if the track has no verdict yet.
        """
        track.embedded_frame, track.embedded_box = frame, track.box.copy()
        track.votes.append(Vote(name, similarity))
        if sure and (not track.decided or track.stale):
            changed = not track.decided or name != track.name
            track.name, track.similarity, track.decided, track.stale = name, similarity, True, False
            return changed
        counts = Counter(v.name for v in track.votes)
        leader, n = counts.most_common(1)[0]
        if n < self.confirm_votes or n * 2 <= len(track.votes):
            if not track.decided and track.name is None:
                track.similarity = similarity
            return False
        sims = [v.similarity for v in track.votes if v.name == leader and v.similarity is not None]
        track.similarity = sims[-1] if sims else similarity
        changed = not track.decided or leader != track.name
        track.name, track.decided, track.stale = leader, True, False
        return changed
