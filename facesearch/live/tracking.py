"""Face tracks across video frames: IoU association, and names decided by quality-weighted votes.

Each recognition result is a vote weighted by the face's quality (``quality``: a large, frontal,
confidently detected face counts for more than a small or turned one). A track is embedded when
it appears; while it has no verdict, while its latest result disagrees with its verdict, or while
it is "unknown", it is re-examined soon (every ``unconfirmed_every`` frames; every
``unknown_every`` frames, backing off slowly while the results keep saying unknown; and at once
when its face becomes clearly better), because a person who enters small or turned away is the
case that matters. A named track is re-checked only every ``recheck_frames``
frames, or when its face grew or shrank a lot.

A verdict (a name, or unknown) is reached at once when one good view gives a clear-cut result
(at least ``sure_margin`` from the threshold); a clear-cut name from a good view also overturns an
"unknown" at once. Otherwise the outcome holding most of the recent votes' weight (quality, times
``recency`` per newer vote, so the present counts for more than the past), with at least
``confirm_votes`` votes, wins, so one odd frame does not make the label flicker.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

import numpy as np

from ..types import Box, as_box


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
    """One recognition result of a track: who (None = unknown), how similar, how good a view."""

    name: str | None
    similarity: float | None
    quality: float = 1.0
    sure: bool = False


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
    quality: float = 1.0  # of the latest detection (``quality.face_quality``)
    low_quality: bool = False  # the latest detection is below the quality gate: not embedded
    name: str | None = None  # the verdict's name; None = unknown (or not yet decided)
    similarity: float | None = None  # of the latest embedding to the verdict's/nearest person
    decided: bool = False  # a first verdict (name or unknown) has been reached
    stale: bool = False  # the verdict must be re-established (the gallery changed)
    votes: deque[Vote] = field(default_factory=lambda: deque(maxlen=6))
    embedded_frame: int | None = None
    embedded_box: np.ndarray | None = None
    best_quality: float = 0.0  # the best view embedded so far
    vector: np.ndarray | None = None  # the latest embedding, to notice a different face
    signature: np.ndarray | None = None  # appearance when last embedded (``live``)
    changed: bool = False  # the face's appearance jumped since it was last embedded
    unknown_since: int | None = None  # first frame of the current run of "unknown" results

    @property
    def as_box(self) -> Box:
        return as_box(self.box)

    @property
    def unsettled(self) -> bool:
        """The latest result disagrees with the verdict: look again soon."""
        return bool(self.votes) and self.votes[-1].name != self.name


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
        unknown_every: int = 8,
        confirm_votes: int = 2,
        grew: float = 1.5,
        good_quality: float = 0.5,
        better_by: float = 0.15,
        recency: float = 0.85,
        first_id: int = 1,
    ) -> None:
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.recheck_frames = recheck_frames
        self.unconfirmed_every = unconfirmed_every
        self.unknown_every = unknown_every
        self.confirm_votes = confirm_votes
        self.grew = grew
        self.good_quality = good_quality
        self.better_by = better_by
        self.recency = recency
        self.tracks: list[Track] = []
        self._next_id = first_id

    @property
    def next_id(self) -> int:
        """The id the next new track gets (a camera's new recognizer continues from it)."""
        return self._next_id

    def predict(self, frame: int | None = None) -> None:
        """Move tracks by their velocity, for a frame on which detection does not run: to where
        they are expected at ``frame`` (frames the consumer skipped count), else one frame on."""
        for t in self.tracks:
            if frame is None or t.seen_box is None:
                t.box = t.box + t.velocity
            else:
                t.box = self._expected(t, frame)

    @staticmethod
    def _expected(t: Track, frame: int) -> np.ndarray:
        """Where track ``t`` is expected at ``frame``: moved on from where it was last seen."""
        if t.seen_box is None:
            return t.box
        return t.seen_box + t.velocity * max(frame - t.last_seen, 0)

    def update(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        frame: int,
        quality: np.ndarray | None = None,
        low: np.ndarray | None = None,
    ) -> TrackUpdate:
        """Associate this frame's detections with tracks; start and end tracks. ``low`` marks
        the detections below the quality gate (``quality.QualityGate``)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        quality = np.ones(len(boxes)) if quality is None else np.asarray(quality, np.float64)
        low = np.zeros(len(boxes), bool) if low is None else np.asarray(low, bool)
        live = self.tracks
        # compared where each face is expected now: a slow consumer skips frames, and a face
        # that walks on would otherwise be taken for a new one
        expected = [self._expected(t, frame) for t in live]
        ious = iou_matrix(np.array(expected).reshape(-1, 4), boxes)
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
            moved = boxes[di] - (t.seen_box if t.seen_box is not None else t.box)
            t.velocity = 0.5 * t.velocity + 0.5 * moved / gap
            t.box, t.score, t.last_seen = boxes[di], float(scores[di]), frame
            t.seen_box, t.quality, t.low_quality = t.box, float(quality[di]), bool(low[di])
        appeared = []
        for di in range(len(boxes)):
            if di not in matched_d:
                t = self._start(boxes[di], float(scores[di]), frame, float(quality[di]))
                t.low_quality = bool(low[di])
                appeared.append(t)
        ended = [t for t in live if frame - t.last_seen > self.max_missed]
        self.tracks = [t for t in live if frame - t.last_seen <= self.max_missed] + appeared
        return TrackUpdate(appeared, ended)

    def _start(self, box: np.ndarray, score: float, frame: int, quality: float) -> Track:
        t = Track(self._next_id, box, score, frame, frame, seen_box=box, quality=quality)
        self._next_id += 1
        return t

    def end_all(self) -> list[Track]:
        """End every track (a scene cut: no face on screen is the one it was before)."""
        ended, self.tracks = self.tracks, []
        return ended

    def split(self, track: Track, frame: int) -> Track:
        """End ``track`` and start a new one on the same box: it now shows a different face."""
        new = self._start(track.box, track.score, frame, track.quality)
        new.velocity = track.velocity
        self.tracks = [new if t is track else t for t in self.tracks]
        return new

    def recent(self, frame: int, within: int = 0) -> list[Track]:
        """Tracks detected in the last ``within`` frames (0: in this very frame)."""
        return [t for t in self.tracks if frame - t.last_seen <= within]

    def needs_embedding(self, track: Track, frame: int) -> bool:
        if track.low_quality:
            return False
        if track.embedded_frame is None or track.embedded_box is None or track.changed:
            return True
        since = frame - track.embedded_frame
        last = track.votes[-1] if track.votes else None
        # a poor view that said "unknown" says the same 3 frames later: wait for a better one
        poor_unknown = last is not None and last.name is None and last.quality < self.good_quality
        if (not track.decided or track.stale or track.unsettled) and not poor_unknown:
            return since >= self.unconfirmed_every
        # A face that came much closer (or went away) gives new evidence; one that only moved
        # is the same face, which the IoU association already guarantees.
        side = float(track.box[2] - track.box[0])
        before = max(float(track.embedded_box[2] - track.embedded_box[0]), 1.0)
        if not 1 / self.grew <= side / before <= self.grew:
            return True
        if track.name is None or poor_unknown:
            # Unknown is often a person not yet seen well: look again at once when the view is
            # clearly better than any embedded so far, and otherwise every unknown_every frames,
            # backing off (by unknown_every per recheck_frames, up to recheck_frames) while the
            # results keep saying unknown.
            if track.quality >= track.best_quality + self.better_by:
                return True
            unknown_for = frame - (
                track.unknown_since if track.unknown_since is not None else frame
            )
            wait = self.unknown_every * (1 + unknown_for // self.recheck_frames)
            recent = list(track.votes)[-2:]
            if len(recent) == 2 and all(v.name is None and v.sure for v in recent):
                wait = (
                    self.recheck_frames
                )  # twice clearly a stranger: only a better view asks again
            return since >= min(wait, self.recheck_frames)
        return since >= self.recheck_frames

    def vote(
        self,
        track: Track,
        name: str | None,
        similarity: float | None,
        frame: int,
        sure: bool = False,
        quality: float = 1.0,
    ) -> bool:
        """Record one recognition result; returns True when the verdict changed.

        ``sure``: the result is clear-cut (far from the threshold); from a good view
        (``quality >= good_quality``) it alone decides a track without a verdict, and a sure
        name alone overturns "unknown".
        """
        track.embedded_frame, track.embedded_box = frame, track.box.copy()
        track.best_quality = max(track.best_quality, quality)
        track.changed = False
        track.votes.append(Vote(name, similarity, quality, sure))
        if name is not None:
            track.unknown_since = None
        elif track.unknown_since is None:
            track.unknown_since = frame
        good = quality >= self.good_quality
        if sure and good and (not track.decided or track.stale or track.name is None):
            return self._settle(track, name, similarity)
        weight: dict[str | None, float] = defaultdict(float)
        count: dict[str | None, int] = defaultdict(int)
        for age, v in enumerate(reversed(track.votes)):
            weight[v.name] += v.quality * self.recency**age
            count[v.name] += 1
        leader = max(weight, key=lambda k: weight[k])
        needed = self.confirm_votes
        if track.decided and None not in (track.name, leader) and leader != track.name:
            needed += 1  # renaming someone is the costly mistake: one more vote for it
        if count[leader] < needed or weight[leader] * 2 <= sum(weight.values()):
            if not track.decided and track.name is None:
                track.similarity = similarity
            return False
        sims = [v.similarity for v in track.votes if v.name == leader and v.similarity is not None]
        return self._settle(track, leader, sims[-1] if sims else similarity)

    @staticmethod
    def _settle(track: Track, name: str | None, similarity: float | None) -> bool:
        changed = not track.decided or name != track.name
        track.name, track.similarity, track.decided, track.stale = name, similarity, True, False
        return changed
