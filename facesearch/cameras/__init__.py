"""Cameras as a service: the server's cameras recognised live, events out, snapshots kept.

``config`` reads ``--camera NAME=SOURCE`` and the config file, ``camera`` keeps one source open
(reconnecting with back-off), ``hub`` recognises every camera in shared batches and hands events
to the timeline (``feed``), the webhooks and MQTT (``facesearch.events``), and ``snapshots``
keeps the faces seen, for naming unknown visitors later.
"""

from .camera import Camera, CameraStatus
from .config import (
    CamerasConfig,
    CameraSpec,
    SnapshotSettings,
    load_config,
    parse_camera,
    snapshot_dir,
)
from .feed import EventFeed
from .hub import CameraHub
from .snapshots import Snapshot, SnapshotStore

__all__ = [
    "Camera",
    "CameraHub",
    "CameraSpec",
    "CameraStatus",
    "CamerasConfig",
    "EventFeed",
    "Snapshot",
    "SnapshotSettings",
    "SnapshotStore",
    "load_config",
    "parse_camera",
    "snapshot_dir",
]
