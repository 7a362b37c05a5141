"""Snapshots of the faces the cameras saw: a JPEG of the face with its surroundings and what
was decided, kept on disk (at most ``keep``, none older than ``days``), so that an unknown
visitor can be named later (which enrolls that face) or dismissed.

Each snapshot is ``<id>.jpg`` and ``<id>.json`` in one folder; the JSON is written last, so a
snapshot without one (a crash between the two) is not listed and is removed by the next prune.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..types import Box, as_box

CONTEXT = 0.6  # the snapshot shows this much around the face, per side, as a fraction of its side
MAX_SIDE = 320  # pixels: larger snapshots are scaled down (the face stays large enough to enroll)
QUALITY = 88


@dataclass(frozen=True)
class Snapshot:
    """One kept face: where and when, what was decided, and its box inside the JPEG."""

    id: str
    camera: str
    time: float  # seconds since the epoch
    event: str  # the event it was taken for: "recognized" | "unknown"
    name: str | None
    similarity: float | None
    track: int
    box: Box  # the face inside the snapshot's picture, pixels
    named: str | None = None  # who it was enrolled as, once named from the timeline

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["box"] = [round(v, 1) for v in self.box]
        return out


class SnapshotStore:
    """A folder of snapshots, thread-safe; ids are random (a snapshot's URL reveals nothing)."""

    def __init__(self, directory: Path, keep: int, days: float) -> None:
        self.directory = Path(directory)
        self.keep = keep
        self.max_age = days * 86400.0
        self._lock = threading.Lock()
        self._index: dict[str, Snapshot] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"{self.directory}: cannot keep snapshots here ({err})") from None
        for meta in self.directory.glob("*.json"):
            try:
                data = json.loads(meta.read_text(encoding="utf-8"))
                data["box"] = as_box(data["box"])
                snap = Snapshot(**data)
            except (OSError, ValueError, TypeError, KeyError):
                continue
            if (self.directory / f"{snap.id}.jpg").exists():
                self._index[snap.id] = snap
        self._loaded = True
        self._prune(time.time())

    def add(
        self,
        image: np.ndarray,
        box: Box,
        *,
        camera: str,
        event: str,
        name: str | None,
        similarity: float | None,
        track: int,
        when: float | None = None,
    ) -> Snapshot:
        """Keep the face at ``box`` of the BGR frame ``image``; returns its snapshot."""
        import cv2

        picture, inner = _cut(image, box)
        ok, jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
        if not ok:
            raise InputError("could not encode a snapshot")
        snap = Snapshot(
            secrets.token_hex(8),
            camera,
            time.time() if when is None else when,
            event,
            name,
            None if similarity is None else round(float(similarity), 4),
            track,
            inner,
        )
        with self._lock:
            self._load()
            self._write(snap, jpeg.tobytes())
            self._index[snap.id] = snap
            self._prune(snap.time)
        return snap

    def _write(self, snap: Snapshot, jpeg: bytes) -> None:
        (self.directory / f"{snap.id}.jpg").write_bytes(jpeg)
        tmp = self.directory / f"{snap.id}.json.tmp"
        tmp.write_text(json.dumps(snap.to_dict()), encoding="utf-8")
        os.replace(tmp, self.directory / f"{snap.id}.json")

    def _prune(self, now: float) -> None:
        order = sorted(self._index.values(), key=lambda s: s.time, reverse=True)
        for i, snap in enumerate(order):
            if i >= self.keep or now - snap.time > self.max_age:
                self._delete(snap.id)
        known = set(self._index)
        for path in self.directory.glob("*.jpg"):  # leftovers without metadata
            if path.stem not in known and now - path.stat().st_mtime > 60:
                path.unlink(missing_ok=True)

    def _delete(self, snap_id: str) -> None:
        self._index.pop(snap_id, None)
        for suffix in (".json", ".jpg"):
            (self.directory / f"{snap_id}{suffix}").unlink(missing_ok=True)

    def get(self, snap_id: str) -> Snapshot | None:
        with self._lock:
            self._load()
            return self._index.get(snap_id)

    def jpeg(self, snap_id: str) -> bytes | None:
        """The snapshot's picture, or None when there is no such snapshot (any more)."""
        with self._lock:
            self._load()
            if snap_id not in self._index:
                return None
            try:
                return (self.directory / f"{snap_id}.jpg").read_bytes()
            except FileNotFoundError:
                return None

    def list(self, *, unknown: bool = False, limit: int = 100) -> list[Snapshot]:
        """The newest snapshots first; ``unknown``: only unknown faces not yet named."""
        with self._lock:
            self._load()
            snaps = sorted(self._index.values(), key=lambda s: s.time, reverse=True)
        if unknown:
            snaps = [s for s in snaps if s.event == "unknown" and s.named is None]
        return snaps[:limit]

    def mark_named(self, snap_id: str, name: str) -> Snapshot | None:
        with self._lock:
            self._load()
            snap = self._index.get(snap_id)
            if snap is None:
                return None
            snap = Snapshot(**{**asdict(snap), "named": name})
            meta = self.directory / f"{snap_id}.json"
            meta.write_text(json.dumps(snap.to_dict()), encoding="utf-8")
            self._index[snap_id] = snap
            return snap

    def remove(self, snap_id: str) -> bool:
        """Dismiss a snapshot; False when there was none."""
        with self._lock:
            self._load()
            if snap_id not in self._index:
                return False
            self._delete(snap_id)
            return True

    def __len__(self) -> int:
        with self._lock:
            self._load()
            return len(self._index)


def _cut(image: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
    """The face with ``CONTEXT`` around it (inside the frame), at most ``MAX_SIDE`` px, and the
    face's box in that picture."""
    import cv2

    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1)
    cx1 = int(max(0, x1 - side * CONTEXT))
    cy1 = int(max(0, y1 - side * CONTEXT))
    cx2 = int(min(w, x2 + side * CONTEXT))
    cy2 = int(min(h, y2 + side * CONTEXT))
    if cx2 - cx1 < 2 or cy2 - cy1 < 2:
        raise InputError(f"face box {list(box)} is outside the frame")
    picture = image[cy1:cy2, cx1:cx2]
    scale = min(1.0, MAX_SIDE / max(picture.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
        picture = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
    inner = as_box(
        [
            (max(x1, cx1) - cx1) * scale,
            (max(y1, cy1) - cy1) * scale,
            (min(x2, cx2) - cx1) * scale,
            (min(y2, cy2) - cy1) * scale,
        ]
    )
    return np.ascontiguousarray(picture), inner
