"""Video sources (camera, file, network stream) read by OpenCV in a background thread.

Live sources (cameras, streams, and files with ``realtime=True``) hand over only the newest
frame: a consumer slower than the source skips frames instead of falling further and further
behind. A file is otherwise read frame by frame, none dropped. Network streams that drop are
reopened with exponential back-off.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class SourceError(InputError):
    """A video source cannot be opened, or was lost for good."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` is BGR uint8 (OpenCV's order)."""

    index: int  # position in the source: frames read so far, including any skipped
    t: float  # seconds: position in a file, or since the source was opened for live ones
    image: np.ndarray
    captured: float  # time.perf_counter() when it was read, for latency


def source_kind(source: int | str) -> str:
    """ "camera", "stream" or "file"."""
    if isinstance(source, int):
        return "camera"
    return "stream" if source.lower().startswith(NETWORK_SCHEMES) else "file"


def parse_source(text: str) -> int | str:
    """``0`` → camera 0; anything else is a path or URL."""
    return int(text) if text.strip().isdigit() else text


class FrameSource:
    """Reads frames in a thread; ``read()`` returns the next (or newest) frame, None at the end.

    ``opener`` (default ``cv2.VideoCapture``) is injectable for tests.
    """

    def __init__(
        self,
        source: int | str,
        *,
        realtime: bool = False,
        reconnect_s: float = 30.0,
        opener: Callable[[Any], Any] | None = None,
    ) -> None:
        self.source = source
        self.kind = source_kind(source)
        self.latest_only = self.kind != "file" or realtime
        self.realtime = realtime and self.kind == "file"
        self.reconnect_s = reconnect_s
        self._opener = opener
        self._cap: Any = None
        self.fps = 0.0
        self.width = self.height = 0
        self.dropped = 0  # frames the consumer never saw (live sources only)
        self.error: SourceError | None = None
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=4)
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._ended = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- opening -------------------------------------------------------------------------------

    def _open_capture(self) -> Any:
        if self._opener is not None:
            return self._opener(self.source)
        import cv2

        return cv2.VideoCapture(self.source)

    def open(self) -> FrameSource:
        """Open the source (raises SourceError with a clear message) and start reading."""
        if self.kind == "file" and not Path(str(self.source)).exists():
            raise SourceError(f"{self.source}: no such video file")
        cap = self._open_capture()
        if not cap.isOpened():
            raise SourceError(self._cannot_open())
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            what = "no frames (not a video, or an unsupported codec)"
            raise SourceError(
                f"{self._name()}: {what}" if self.kind == "file" else self._cannot_open()
            )
        import cv2

        self._cap = cap
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.height, self.width = first.shape[:2]
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(
            target=self._run, args=(first,), name="facesearch-capture", daemon=True
        )
        self._thread.start()
        return self

    def _name(self) -> str:
        return f"camera {self.source}" if self.kind == "camera" else str(self.source)

    def _cannot_open(self) -> str:
        if self.kind == "camera":
            return f"cannot open camera {self.source} (is it connected, and not used by another program?)"
        if self.kind == "stream":
            return f"cannot open stream {self.source} (unreachable, or not a video stream)"
        return f"{self.source}: cannot open as a video (not a video, or an unsupported codec)"

    # -- reading thread ------------------------------------------------------------------------

    def _run(self, first: np.ndarray) -> None:
        index, image = 0, first
        try:
            while not self._stop.is_set():
                now = time.perf_counter()
                if self.kind == "file" and self.fps > 0:
                    t = index / self.fps
                    if self.realtime:  # pace the file like a camera
                        ahead = self._t0 + t - now
                        if ahead > 0:
                            time.sleep(ahead)
                            now = time.perf_counter()
                else:
                    t = now - self._t0
                self._hand_over(Frame(index, t, image, now))
                ok, image = self._cap.read()
                index += 1
                if not ok or image is None:
                    if self.kind != "stream" or not self._reconnect():
                        break
                    ok, image = self._cap.read()
                    if not ok:
                        break
        finally:
            self._finish()

    def _reconnect(self) -> bool:
        """Reopen a dropped stream with exponential back-off; False once ``reconnect_s`` is spent."""
        deadline = time.perf_counter() + self.reconnect_s
        delay = 0.5
        while not self._stop.is_set() and time.perf_counter() < deadline:
            log.warning("stream %s dropped; reconnecting in %.1fs", self.source, delay)
            if self._stop.wait(delay):
                return False
            self._cap.release()
            self._cap = self._open_capture()
            if self._cap.isOpened():
                log.warning("stream %s reconnected", self.source)
                return True
            delay = min(delay * 2, 8.0)
        self.error = SourceError(
            f"stream {self.source} dropped and could not be reopened for {self.reconnect_s:.0f}s"
        )
        return False

    def _hand_over(self, frame: Frame) -> None:
        if self.latest_only:
            with self._cond:
                if self._latest is not None:
                    self.dropped += 1
                self._latest = frame
                self._cond.notify_all()
        else:
            while not self._stop.is_set():
                try:
                    self._queue.put(frame, timeout=0.1)
                    return
                except queue.Full:
                    continue

    def _finish(self) -> None:
        if self._cap is not None:
            self._cap.release()
        with self._cond:
            self._ended = True
            self._cond.notify_all()
        if not self.latest_only:
            while True:
                try:
                    self._queue.put(None, timeout=0.1)
                    return
                except queue.Full:
                    if self._stop.is_set():
                        return

    @property
    def ended(self) -> bool:
        """The reading thread has stopped: the file ended, or the stream was lost for good."""
        return self._ended

    # -- consumer ------------------------------------------------------------------------------

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame (files) or the newest unseen one (live); None when the source ended."""
        if not self.latest_only:
            try:
                return self._queue.get(timeout=timeout)
            except queue.Empty:
                return None
        with self._cond:
            if not self._cond.wait_for(lambda: self._latest is not None or self._ended, timeout):
                return None
            frame, self._latest = self._latest, None
            return frame

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> FrameSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
