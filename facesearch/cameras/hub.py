"""``CameraHub``: every camera of the server recognised over the server's ``FaceSearch`` (its
loaded models and gallery) by a few worker threads (one per core, at most one per camera), each
with its share of the cameras, whose frames it detects, and whose faces it embeds, in shared
batches.

Each round of a worker takes the newest unprocessed frame of each of its cameras that has one
and runs the stages
of ``LiveRecognizer`` (one per camera) over all of them: one detection call for the frames due
for detection, one FaceNet batch for the faces due for embedding, then each camera's votes and
events. Events get a snapshot of the face (``recognized`` and ``unknown``), go to the timeline
(``feed``) and out to webhooks and MQTT (``events.Dispatcher``, which never blocks).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..events import Dispatcher, event_payload, open_sinks
from ..live.recognizer import FrameStep, LiveEvent, LiveRecognizer
from ..live.video import Frame
from .camera import Camera, CameraStatus
from .config import CamerasConfig
from .feed import EventFeed
from .snapshots import Snapshot, SnapshotStore

if TYPE_CHECKING:
    from ..pipeline import FaceSearch

log = logging.getLogger(__name__)

IDLE_WAIT_S = 0.004  # how long the worker sleeps when no camera has a new frame


class _Live:
    """A camera's recognizer for its current source session, and the snapshots of its tracks."""

    def __init__(self, fs: FaceSearch, camera: Camera, first_track: int = 1) -> None:
        self.session = camera.session
        # track numbers go on across sessions: an event's (camera, track) names one visit
        self.recognizer = LiveRecognizer(fs, camera.spec.options, first_track)
        self.last: Frame | None = None
        self.snapshots: dict[int, str] = {}  # track -> its latest snapshot id
        self.forgotten = 0  # the hub's ``_forget`` count this recognizer has acted on


class CameraHub:
    """Runs the cameras of ``config`` over ``fs``; ``start()`` once the models are loaded."""

    def __init__(
        self,
        fs: FaceSearch,
        config: CamerasConfig,
        snapshot_dir: Path,
        *,
        opener: Callable[[Any], Any] | None = None,
        workers: int | None = None,
    ) -> None:
        self.fs = fs
        self.config = config
        self.cameras = {spec.name: Camera(spec, opener=opener) for spec in config.cameras}
        self.feed = EventFeed()
        self.snapshots = SnapshotStore(snapshot_dir, config.snapshots.keep, config.snapshots.days)
        self.dispatcher: Dispatcher | None = None
        #: recognition rounds run, frames in them, and the largest number of frames in one
        self.rounds = 0
        self.round_frames = 0
        self.largest_round = 0
        self.error: str | None = None
        #: recognition workers, each with its share of the cameras (default: one per core, at
        #: most one per camera): frames in parallel use the cores better than one worker whose
        #: every torch op is split over them
        self.workers = max(1, min(len(self.cameras), workers or os.cpu_count() or 1))
        self._live: dict[str, _Live] = {}
        self._stop = threading.Event()
        self._forget = 0  # bumped when everyone enrolled may have changed: names are re-decided
        self._stats_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._torch_threads: int | None = None

    def start(self) -> None:
        """Open the event sinks and the cameras and start recognising (no-op without cameras
        beyond the sinks)."""
        cfg = self.config
        self.dispatcher = open_sinks(cfg.webhooks, cfg.mqtt, secret=cfg.webhook_secret)
        if not self.cameras:
            return
        for cam in self.cameras.values():
            cam.start()
        if self.workers > 1:
            import torch

            # each worker gets its share of the cores for the models' own threads (the
            # process's setting: given back at stop)
            self._torch_threads = torch.get_num_threads()
            torch.set_num_threads(max(1, self._torch_threads // self.workers))
        names = list(self.cameras)
        for i in range(self.workers):
            mine = [self.cameras[n] for n in names[i :: self.workers]]
            thread = threading.Thread(
                target=self._run, args=(mine,), name=f"facesearch-cameras-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the cameras, send ``leave`` for the faces still in view, deliver what is queued."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._torch_threads is not None:
            import torch

            torch.set_num_threads(self._torch_threads)
        for cam in self.cameras.values():
            cam.stop()
        for name, live in list(self._live.items()):
            self._emit(self.cameras[name], live, live.recognizer.finish(live.last), live.last)
        self._live.clear()
        if self.dispatcher is not None:
            self.dispatcher.close()

    # -- the worker ----------------------------------------------------------------------------

    def _run(self, cameras: list[Camera]) -> None:
        """One worker: rounds over ``cameras``' newest frames until the hub stops."""
        while not self._stop.is_set():
            ready: list[tuple[Camera, _Live, Frame]] = []
            for cam in cameras:
                live = self._session(cam)
                frame = cam.read() if live is not None else None
                if live is not None and frame is not None:
                    ready.append((cam, live, frame))
            if not ready:
                self._stop.wait(IDLE_WAIT_S)
                continue
            try:
                self._round(ready)
                self.error = None
            except Exception as err:  # one bad round must not stop every camera for good
                self.error = f"recognition failed: {err}"
                log.exception("cameras: recognition round failed")
                self._stop.wait(0.5)

    def _session(self, cam: Camera) -> _Live | None:
        """The camera's recognizer, fresh for each source session (a reopened stream, a file
        started again): the old one's faces are reported as having left."""
        live = self._live.get(cam.name)
        first_track = 1
        if live is not None and live.session != cam.session:
            self._emit(cam, live, live.recognizer.finish(live.last), live.last)
            first_track = live.recognizer.tracker.next_id
            live = None
        elif live is not None and (cam.source is None or cam.source.ended):
            if live.recognizer.tracker.tracks:  # the source is away: its faces are not in view
                self._emit(cam, live, live.recognizer.finish(live.last), live.last)
        if live is None and cam.session > 0:
            live = self._live[cam.name] = _Live(self.fs, cam, first_track)
            live.forgotten = self._forget
        return live

    def _round(self, ready: list[tuple[Camera, _Live, Frame]]) -> None:
        forget = self._forget
        for _, live, _ in ready:
            if live.forgotten != forget:
                live.forgotten = forget
                live.recognizer.forget_names()
        steps = [(cam, live, live.recognizer.start(frame)) for cam, live, frame in ready]
        self._detect(steps)
        due = [(step, todo) for _, _, step in steps if (todo := step.to_embed) is not None]
        vectors = self.fs.embed_faces_many([todo for _, todo in due])
        by_step = {id(step): v for (step, _), v in zip(due, vectors)}
        for cam, live, step in steps:
            result = live.recognizer.conclude(step, by_step.get(id(step)))
            live.last = step.frame
            cam.show(step.frame, result)
            self._emit(cam, live, result.events, step.frame)
        with self._stats_lock:
            self.rounds += 1
            self.round_frames += len(steps)
            self.largest_round = max(self.largest_round, len(steps))

    def _detect(self, steps: list[tuple[Camera, _Live, FrameStep]]) -> None:
        """One detection call for the frames due (per ``min_face``, which selects the detector)."""
        groups: dict[int, list[tuple[_Live, FrameStep]]] = {}
        for _, live, step in steps:
            if step.detect:
                groups.setdefault(live.recognizer.options.min_face, []).append((live, step))
            else:
                live.recognizer.track(step, None)
        for min_face, group in groups.items():
            found = self.fs.detect_many(
                [step.small for _, step in group], min_face=min_face, padded_retry=False
            )
            for (live, step), faces in zip(group, found):
                live.recognizer.track(step, faces)

    def _emit(self, cam: Camera, live: _Live, events: list[LiveEvent], frame: Frame | None) -> None:
        for ev in events:
            snap_id = live.snapshots.get(ev.track)
            if ev.event in ("recognized", "unknown") and frame is not None:
                try:
                    snap = self.snapshots.add(
                        frame.image,
                        ev.box,
                        camera=cam.name,
                        event=ev.event,
                        name=ev.name,
                        similarity=ev.similarity,
                        track=ev.track,
                    )
                    snap_id = live.snapshots[ev.track] = snap.id
                except (InputError, OSError) as err:
                    log.warning("camera %s: snapshot not kept (%s)", cam.name, err)
            if ev.event == "leave":
                live.snapshots.pop(ev.track, None)
            payload = event_payload(ev.to_dict(), cam.name, snap_id)
            self.feed.publish(payload)
            if self.dispatcher is not None:
                self.dispatcher.send(payload)

    # -- what the server asks ------------------------------------------------------------------

    def status(self) -> list[CameraStatus]:
        return [cam.status() for cam in self.cameras.values()]

    def camera(self, name: str) -> Camera:
        cam = self.cameras.get(name)
        if cam is None:
            raise LookupError(f"no camera named {name!r}")
        return cam

    def stats(self) -> dict[str, Any]:
        return {
            "cameras": len(self.cameras),
            "rounds": self.rounds,
            "mean_frames_per_round": round(self.round_frames / self.rounds, 2)
            if self.rounds
            else None,
            "largest_round": self.largest_round,
            "workers": self.workers,
            "events": self.dispatcher.stats() if self.dispatcher is not None else {},
            "snapshots": len(self.snapshots),
            "error": self.error,
        }

    def name_snapshot(self, snap_id: str, name: str) -> tuple[Snapshot, int]:
        """Enroll the face of a snapshot as ``name`` (the timeline's "name this visitor");
        returns the snapshot, marked named, and the new face's id. LookupError if there is no
        such snapshot; the library's InputError for a bad name or a face already enrolled."""
        import cv2

        snap = self.snapshots.get(snap_id)
        jpeg = self.snapshots.jpeg(snap_id)
        if snap is None or jpeg is None:
            raise LookupError(f"no snapshot {snap_id!r} (dismissed, or pruned as too old)")
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        when = datetime.fromtimestamp(snap.time, timezone.utc).isoformat(timespec="seconds")
        face_id = self.fs.enroll_face(
            name,
            cv2.cvtColor(image, cv2.COLOR_BGR2RGB),
            box=snap.box,
            source=f"camera {snap.camera} {when}",
        )
        self._forget += 1  # every camera names its faces again, with the new person known
        named = self.snapshots.mark_named(snap_id, name)
        return (named or snap), face_id

    def wait_frames(self, count: int, timeout: float) -> bool:
        """Wait until every camera has processed ``count`` frames (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(cam.frames >= count for cam in self.cameras.values()):
                return True
            time.sleep(0.05)
        return False
