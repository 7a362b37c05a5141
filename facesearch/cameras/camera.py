"""One camera of the server: its source kept open (reopened with back-off when it fails or
drops, a file started again at its end), its state for ``/readyz`` and the page, and its latest
annotated picture."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import FaceSearchError
from ..live.recognizer import FrameResult, percentile_ms
from ..live.runner import draw_overlay
from ..live.video import Frame, FrameSource
from .config import CameraSpec

log = logging.getLogger(__name__)

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
FPS_WINDOW = 30  # frames the reported FPS is measured over
LATENCY_WINDOW = 300  # frames the reported latency percentiles are taken over
STALLED_S = 5.0  # a running source without a new frame for this long is reported stalled
PICTURE_QUALITY = 80


@dataclass(frozen=True)
class CameraStatus:
    """What ``/readyz``, ``GET /cameras`` and the page show of one camera."""

    name: str
    source: str
    state: str  # "connecting" | "running" | "stalled" | "reconnecting" | "ended" | "stopped"
    error: str | None
    fps: float  # frames processed per second, lately
    frames: int  # processed since the server started
    dropped: int  # frames the source delivered that recognition skipped (it was busy)
    reconnects: int
    width: int
    height: int
    #: capture to result of the last ``LATENCY_WINDOW`` frames, ms (None before the first)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "fps": round(self.fps, 1)}


class Camera:
    """A camera's source, kept open by its own thread; the hub's worker reads its frames."""

    def __init__(
        self,
        spec: CameraSpec,
        *,
        opener: Callable[[Any], Any] | None = None,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.source: FrameSource | None = None
        #: bumped each time the source is (re)opened: the hub starts a fresh recognizer then
        self.session = 0
        self.state = "connecting"
        self.error: str | None = None
        self.reconnects = 0
        self.frames = 0
        self._dropped_before = 0  # frames dropped by earlier sessions' sources
        self._opener = opener
        self._retry_max = retry_max_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown_at: deque[float] = deque(maxlen=FPS_WINDOW)
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._last_frame_at = 0.0
        self._shown: tuple[Frame, FrameResult] | None = None
        self._picture: tuple[tuple[int, int], bytes] | None = None
        self._picture_lock = threading.Lock()

    # -- keeping the source open ---------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._supervise, name=f"facesearch-camera-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        source = self.source
        if source is not None:
            source.close()
        if self._thread is not None:
            self._thread.join(timeout=3)
        self.state = "stopped"

    def _supervise(self) -> None:
        delay = RETRY_FIRST_S
        kind = None
        while not self._stop.is_set():
            source = FrameSource(
                self.spec.source, realtime=True, reconnect_s=0.0, opener=self._opener
            )
            kind = source.kind
            try:
                source.open()
            except FaceSearchError as err:
                # the message names the source: without a stream URL's password
                self.error = str(err).replace(str(self.spec.source), self.spec.describe())
                self.state = "reconnecting"
                log.warning("camera %s: %s; retrying in %.0fs", self.name, err, delay)
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self._retry_max)
                continue
            if self.source is not None:
                self._dropped_before += self.source.dropped
            self.source = source
            self._shown_at.clear()  # the rate of this session's frames, not across the gap
            self._latencies.clear()
            self.session += 1
            self.state, self.error, delay = "running", None, RETRY_FIRST_S
            self._last_frame_at = time.perf_counter()
            log.info("camera %s: %s open (%dx%d)", self.name, kind, source.width, source.height)
            while not self._stop.is_set() and not source.ended:
                self._stop.wait(0.1)
            source.close()
            if self._stop.is_set():
                break
            if kind == "file":
                if not self.spec.loop:
                    self.state = "ended"
                    return
                self.reconnects += 1
                continue  # played again from the start, like a camera that never ends
            self.reconnects += 1
            self.state = "reconnecting"
            self.error = f"{kind} {self.spec.describe()} dropped; reconnecting"
            log.warning("camera %s: %s", self.name, self.error)
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self._retry_max)
        self.state = "stopped"

    def read(self) -> Frame | None:
        """The newest frame not yet processed, or None (none yet, or the source is away)."""
        source = self.source
        if source is None or source.ended:
            return None
        return source.read(timeout=0)

    # -- what was seen -------------------------------------------------------------------------

    def show(self, frame: Frame, result: FrameResult) -> None:
        """Record a processed frame (the worker calls this): the picture, the rates and the
        latency (capture to result)."""
        now = time.perf_counter()
        self._shown_at.append(now)
        self._latencies.append(result.latency)
        self._last_frame_at = now
        self.frames += 1
        with self._picture_lock:
            self._shown = (frame, result)

    @property
    def fps(self) -> float:
        """Frames processed per second over the last ``FPS_WINDOW`` frames."""
        times = list(self._shown_at)
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def picture(self) -> bytes | None:
        """The latest processed frame as a JPEG with boxes and names drawn, or None before the
        first one. Encoded on request (once per frame), not for frames nobody looks at."""
        import cv2

        with self._picture_lock:
            shown = self._shown
            if shown is None:
                return None
            key = (self.session, shown[0].index)
            if self._picture is not None and self._picture[0] == key:
                return self._picture[1]
        frame, result = shown
        image = draw_overlay(frame.image.copy(), result, self.fps, self.name)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, PICTURE_QUALITY])
        if not ok:
            return None
        data = jpeg.tobytes()
        with self._picture_lock:
            self._picture = (key, data)
        return data

    @property
    def picture_key(self) -> tuple[int, int] | None:
        """Changes whenever a new frame has been processed (for streams: send only new ones)."""
        shown = self._shown
        return None if shown is None else (self.session, shown[0].index)

    def status(self) -> CameraStatus:
        source = self.source
        state = self.state
        if state == "running" and time.perf_counter() - self._last_frame_at > STALLED_S:
            state = "stalled"
        fps = self.fps if state == "running" else 0.0
        latencies = list(self._latencies)
        return CameraStatus(
            self.name,
            self.spec.describe(),
            state,
            self.error,
            fps,
            self.frames,
            self._dropped_before + (source.dropped if source is not None else 0),
            self.reconnects,
            source.width if source is not None else 0,
            source.height if source is not None else 0,
            percentile_ms(latencies, 50),
            percentile_ms(latencies, 95),
        )
