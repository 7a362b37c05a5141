"""When ``live`` detects frames ahead (``live.ahead.auto_workers``); that the results are those
of one frame at a time is tested on a real clip in test_live.py."""

from __future__ import annotations

import os

import pytest

from facesearch.live.ahead import MAX_AUTO_WORKERS, auto_workers

CORES = max(1, min(MAX_AUTO_WORKERS, os.cpu_count() or 1))


@pytest.mark.parametrize(
    "device, latest_only, expected",
    [
        ("cpu", False, CORES),  # a file read as fast as it is processed: throughput counts
        ("cpu", True, 1),  # a camera, a stream or --realtime: latency counts
        ("cuda", False, 1),
    ],
)
def test_auto_workers(device, latest_only, expected):
    assert auto_workers(device, latest_only) == expected
