"""``facesearch live``: a camera, stream or video file through ``LiveRecognizer``, shown in a
window or written to a file, with events printed as JSON lines and faces enrolled from the
window (press ``e``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..types import as_box
from .ahead import auto_workers, process_stream
from .recognizer import FrameResult, LiveEvent, LiveOptions, LiveRecognizer, LiveStats
from .video import Frame

if TYPE_CHECKING:
    from ..pipeline import FaceSearch

log = logging.getLogger(__name__)


def draw_overlay(image: np.ndarray, result: FrameResult, fps: float, note: str = "") -> np.ndarray:
    """Boxes, names/unknown, similarity and FPS drawn onto the BGR frame (in place)."""
    import cv2

    for t in result.tracks:
        x1, y1, x2, y2 = (int(round(v)) for v in t.box)
        if t.low_quality:
            color, label = (150, 150, 150), "low quality"
        elif t.name is not None:
            color, label = (60, 200, 60), f"{t.name} {t.similarity or 0:.2f}"
        elif t.decided:
            color, label = (
                (50, 50, 230),
                "unknown" + (f" {t.similarity:.2f}" if t.similarity else ""),
            )
        else:
            color, label = (200, 200, 200), "..."
        cv2.rectangle(image, (x1, y1), (x2, y2), color, 2)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(y1 - th - 6, 0)
        cv2.rectangle(image, (x1, top), (x1 + tw + 6, top + th + 6), color, -1)
        cv2.putText(
            image, label, (x1 + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1
        )
    status = f"{fps:.1f} FPS" + (f"  {note}" if note else "")
    cv2.putText(image, status, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 3)
    cv2.putText(image, status, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1)
    return image


# -- the loop ----------------------------------------------------------------------------------


def display_available() -> bool:
    """Whether a window can be shown (a display server and an OpenCV build with a GUI)."""
    import os
    import sys

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False
    import cv2

    try:
        cv2.namedWindow("facesearch-probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("facesearch-probe")
        return True
    except cv2.error:
        return False


class _NameEntry:
    """Typing a name in the window for ``--enroll-key``: e, then the name, Enter (Esc cancels)."""

    def __init__(self) -> None:
        self.active = False
        self.text = ""

    def key(self, code: int) -> str | None:
        """Feed one key; returns the name when Enter completes it."""
        if code in (13, 10):
            name, self.active, self.text = self.text.strip(), False, ""
            return name or None
        if code == 27:
            self.active, self.text = False, ""
        elif code in (8, 127):
            self.text = self.text[:-1]
        elif 32 <= code < 127:
            self.text += chr(code)
        return None


def run_live(
    fs: FaceSearch,
    source: Any,
    *,
    options: LiveOptions | None = None,
    show: bool = False,
    output: str | None = None,
    on_event: Callable[[LiveEvent], None] | None = None,
    enroll_key: bool = False,
    max_frames: int | None = None,
    log_every_s: float = 5.0,
) -> LiveStats:
    """Run the loop over an opened ``FrameSource`` until it ends, ``max_frames``, or q/Esc."""
    import cv2

    rec = LiveRecognizer(fs, options)
    writer = None
    entry = _NameEntry()
    note = ""
    last: Frame | None = None
    fps = avg_dt = 0.0
    t_start = t_log = time.perf_counter()
    window = "facesearch live"
    workers = rec.options.detect_workers
    if workers is None:
        workers = auto_workers(fs.detector.device.type, getattr(source, "latest_only", True))
    results = process_stream(rec, _frames(source, max_frames), workers)
    t_frame = time.perf_counter()
    try:
        for result in results:
            frame = last = result.frame
            for ev in result.events:
                if on_event:
                    on_event(ev)
            # average the time per frame, not its inverse: frames without detection take ~1 ms
            dt, t_frame = time.perf_counter() - t_frame, time.perf_counter()
            avg_dt = 0.9 * avg_dt + 0.1 * dt if avg_dt else dt
            fps = 1.0 / max(avg_dt, 1e-6)
            if show or output:
                shown_note = f"name: {entry.text}_" if entry.active else note
                image = draw_overlay(frame.image.copy(), result, fps, shown_note)
                if output:
                    if writer is None:
                        writer = _open_writer(output, image, source)
                    writer.write(image)
                if show:
                    cv2.imshow(window, image)
                    code = cv2.waitKey(1) & 0xFF
                    if entry.active:
                        name = entry.key(code) if code != 255 else None
                        if name:
                            note = _enroll_from_frame(fs, rec, frame, name)
                    elif code in (ord("q"), 27):
                        break
                    elif code == ord("e") and enroll_key:
                        entry.active = True
            now = time.perf_counter()
            if now - t_log >= log_every_s:
                t_log = now
                log.info(
                    "frame %d: %.1f FPS, %d tracks, %d dropped",
                    frame.index,
                    rec.stats.frames / (now - t_start),
                    len(result.tracks),
                    getattr(source, "dropped", 0),
                )
    finally:
        results.close()  # the frames still in flight are dropped
        for ev in rec.finish(last):
            if on_event:
                on_event(ev)
        rec.stats.seconds = time.perf_counter() - t_start
        if writer is not None:
            writer.release()
        if show:
            cv2.destroyAllWindows()
    if getattr(source, "error", None) is not None:
        raise source.error
    return rec.stats


def _frames(source: Any, max_frames: int | None) -> Iterator[Frame]:
    """The source's frames until it ends or ``max_frames`` were read."""
    count = 0
    while max_frames is None or count < max_frames:
        frame = source.read(timeout=None)
        if frame is None:
            return
        count += 1
        yield frame


def _open_writer(path: str, image: np.ndarray, source: Any) -> Any:
    import cv2

    from ..errors import InputError

    fps = getattr(source, "fps", 0.0) or 25.0
    if getattr(source, "latest_only", False):
        fps = min(fps, 15.0)  # a live source is processed at about this rate, not the camera's
    h, w = image.shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise InputError(f"{path}: cannot write a video here (check the folder and the extension)")
    return writer


def _enroll_from_frame(fs: FaceSearch, rec: LiveRecognizer, frame: Frame, name: str) -> str:
    """Enroll the largest face in view under ``name``; returns a status line for the window."""
    import cv2

    from ..errors import FaceSearchError

    tracks = rec.tracker.recent(frame.index, within=rec.options.detect_every)
    if not tracks:
        return "no face in view to enroll"
    big = max(tracks, key=lambda t: (t.box[2] - t.box[0]) * (t.box[3] - t.box[1]))
    rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
    try:
        fs.enroll_face(name, rgb, box=as_box(big.box), source=f"live frame {frame.index}")
    except FaceSearchError as err:
        log.warning("enroll failed: %s", err)
        return f"not enrolled: {err}"
    rec.forget_names()
    return f"enrolled {name}"
