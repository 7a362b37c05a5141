"""Detection ahead: the next frames' MTCNN runs on other cores while this frame is named.

On a CPU, MTCNN over one 640x480 frame gains little from a second intra-op thread (its many
small operations: 12.9 against 11.3 frames/s on 2 cores), while two frames detected at once, one
thread each, give 19.4 frames/s. So ``process_stream`` reads frames on a thread of its own and
hands each frame the recognizer will detect (``LiveRecognizer.detects``) to one of ``workers``
detection threads as soon as it arrives; the caller's thread tracks, embeds and names the frames
in their order (``LiveRecognizer.start`` and ``finish_frame``), exactly as ``process`` would,
as soon as each frame's detection is done. A frame is never held back to wait for later ones,
but it waits for those before it: ``facesearch live`` detects ahead where throughput counts (a
video file processed as fast as possible), not on a camera, where latency does.

A scene cut makes the recognizer detect a frame it would have skipped and moves its schedule:
that frame is detected on the spot, and the frames in flight are planned again from it.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from ..types import Faces
from .video import Frame

if TYPE_CHECKING:
    from .recognizer import FrameResult, LiveRecognizer

Detected = tuple[float, np.ndarray, Faces]  # a frame's detection scale, copy and faces

MAX_AUTO_WORKERS = 2  # measured on 2 cores (benchmarks/live_bench.py); more is untested


def auto_workers(device_type: str, latest_only: bool = False) -> int:
    """Frames detected at once: one per core (at most ``MAX_AUTO_WORKERS``) where throughput is
    what counts, a source whose frames wait for the loop (a video file read as fast as it is
    processed). One for a camera or stream (``latest_only``), where each frame would wait for
    the one before it (more latency), and on a GPU, which runs one frame's work in parallel."""
    if device_type != "cpu" or latest_only:
        return 1
    return max(1, min(MAX_AUTO_WORKERS, os.cpu_count() or 1))


@contextmanager
def _threads_per_worker(workers: int) -> Iterator[None]:
    """torch's intra-op threads shared out among the detection workers while they run."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before // workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _InFlight:
    """Frames read but not finished yet, each with its detection if it has one; filled by the
    reader thread (``feed``) and emptied in order by the caller's (``finish_next``)."""

    def __init__(self, rec: LiveRecognizer, pool: ThreadPoolExecutor, limit: int) -> None:
        self.rec, self.pool, self.limit = rec, pool, limit
        self.frames: deque[tuple[Frame, Future[Detected] | None]] = deque()
        self.unfinished = 0  # frames read and not yet returned, the one being named included
        self.planned: int | None = rec.last_detect  # the last frame planned to be detected
        self.cond = threading.Condition()
        self.done = False  # the frames ran out
        self.stopped = False  # the caller stopped taking results
        self.error: BaseException | None = None

    def feed(self, frames: Iterator[Frame]) -> None:
        """Read ``frames`` and start their detections, at most ``limit`` frames ahead."""
        try:
            for frame in frames:
                with self.cond:
                    while self.unfinished >= self.limit and not self.stopped:
                        self.cond.wait()
                    if self.stopped:
                        return
                    detect = self.rec.detects(frame.index, self.planned)
                    if detect:
                        self.planned = frame.index
                    self.frames.append((frame, self._submit(frame) if detect else None))
                    self.unfinished += 1
                    self.cond.notify_all()
        except BaseException as err:  # handed to the caller's thread, raised there
            self.error = err
        finally:
            with self.cond:
                self.done = True
                self.cond.notify_all()

    def _submit(self, frame: Frame) -> Future[Detected]:
        rec = self.rec

        def detect() -> Detected:
            scale, small = rec.detection_input(frame)
            return scale, small, rec.detect(small)

        return self.pool.submit(detect)

    def finish_next(self) -> FrameResult | None:
        """The oldest frame, tracked, embedded and named; None once the frames ran out."""
        with self.cond:
            while not self.frames and not self.done:
                self.cond.wait()
            if not self.frames:
                if self.error is not None:
                    raise self.error
                return None
            frame, future = self.frames.popleft()
        # a frame with a detection in flight is one the recognizer detects (the plan follows
        # its schedule), so its resized copy is handed to ``start`` rather than made again
        detected = future.result() if future is not None else None
        step = self.rec.start(frame, detected[:2] if detected is not None else None)
        faces = None
        if step.detect and step.small is not None:
            faces = detected[2] if detected is not None else self.rec.detect(step.small)
        with self.cond:
            self._replan()  # a scene cut may have moved the recognizer's schedule
        result = self.rec.finish_frame(step, faces)
        with self.cond:
            self.unfinished -= 1
            self.cond.notify_all()
        return result

    def _replan(self) -> None:
        """Plan the frames in flight again from the recognizer's last detected frame."""
        last = self.rec.last_detect
        replanned: deque[tuple[Frame, Future[Detected] | None]] = deque()
        for frame, future in self.frames:
            if self.rec.detects(frame.index, last):
                last = frame.index
                future = future or self._submit(frame)
            elif future is not None:
                future.cancel()
                future = None
            replanned.append((frame, future))
        self.frames, self.planned = replanned, last

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            for _, future in self.frames:
                if future is not None:
                    future.cancel()
            self.cond.notify_all()


def process_stream(
    rec: LiveRecognizer, frames: Iterable[Frame], workers: int | None = None
) -> Generator[FrameResult, None, None]:
    """``rec.process`` over ``frames``, with up to ``workers`` frames detected at once (None:
    ``auto_workers`` for frames that wait for the loop); results in frame order. Closing the
    generator early drops the frames in flight; the reader thread ends with the next frame
    ``frames`` yields."""
    if workers is None:
        workers = auto_workers(rec.fs.detector.device.type)
    if workers <= 1:
        for frame in frames:
            yield rec.process(frame)
        return
    with (
        _threads_per_worker(workers),
        ThreadPoolExecutor(workers, thread_name_prefix="facesearch-detect") as pool,
    ):
        # a frame being named and the next ones detected: every core busy, no frame kept
        # waiting behind more than the ones before it
        flight = _InFlight(rec, pool, limit=workers * rec.options.detect_every + 1)
        reader = threading.Thread(
            target=flight.feed, args=(iter(frames),), name="facesearch-frames", daemon=True
        )
        reader.start()
        try:
            while (result := flight.finish_next()) is not None:
                yield result
        finally:
            flight.stop()
