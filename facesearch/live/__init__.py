"""Live recognition on a camera, stream or video file.

``video`` reads frames (a background thread keeps only the newest), ``tracking`` follows faces
between detections and decides their names by votes, ``appearance`` notices scene cuts and face
swaps, ``recognizer`` ties them into ``LiveRecognizer`` (frames in, named tracks and events out,
no I/O), ``ahead`` detects the next frames on other cores while one is named
(``process_stream``), and ``runner`` is ``facesearch live``: a window or an output file around it.
"""

from .ahead import process_stream
from .recognizer import FrameResult, LiveEvent, LiveOptions, LiveRecognizer, LiveStats
from .runner import display_available, draw_overlay, run_live
from .video import Frame, FrameSource, parse_source

__all__ = [
    "Frame",
    "FrameResult",
    "FrameSource",
    "LiveEvent",
    "LiveOptions",
    "LiveRecognizer",
    "LiveStats",
    "display_available",
    "draw_overlay",
    "parse_source",
    "process_stream",
    "run_live",
]
