"""What the server's cameras are started with: ``--camera NAME=SOURCE`` flags and the
``[cameras]``, ``[events]`` and ``[snapshots]`` sections of a TOML config file, checked once.

A config file (``serve --config facesearch.toml``)::

    [cameras]
    front = "rtsp://user:pass@192.168.1.20:554/stream1"
    desk = 0                                  # a local camera by number
    door = { source = "/srv/door.mp4", detect_every = 1 }

    [events]
    webhook = ["http://127.0.0.1:5000/faces"]
    webhook_secret = "..."                    # or $FACESEARCH_WEBHOOK_SECRET
    mqtt = "mqtt://user:pass@127.0.0.1:1883"

    [snapshots]
    dir = "/var/lib/facesearch/snapshots"
    keep = 500                                # snapshots kept, newest first
    days = 7                                  # and none older than this

Flags given on the command line add to (cameras, webhooks) or override (the rest) the file's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..live.recognizer import LiveOptions
from ..live.video import parse_source

CAMERA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DEFAULT_KEEP = 500
DEFAULT_DAYS = 7.0
#: per-camera settings a config file may give (the rest of ``LiveOptions`` keep their defaults)
CAMERA_OPTIONS = ("detect_every", "detect_width", "min_face", "recheck_frames", "threshold")


@dataclass(frozen=True)
class CameraSpec:
    """One camera: its name (in events, topics and URLs), its source, and its live options."""

    name: str
    source: int | str
    options: LiveOptions = field(default_factory=LiveOptions)
    #: a video file is played at its own speed and started again at its end, like a camera
    loop: bool = True

    def describe(self) -> str:
        """The source as shown to users: a stream URL without its password."""
        text = str(self.source)
        return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", text)


@dataclass(frozen=True)
class SnapshotSettings:
    """Where event snapshots are kept and how many: at most ``keep``, none older than ``days``."""

    directory: Path | None = None  # None: "snapshots" beside a local gallery, else ./snapshots
    keep: int = DEFAULT_KEEP
    days: float = DEFAULT_DAYS

    def __post_init__(self) -> None:
        if self.keep < 1 or self.days <= 0:
            raise InputError("snapshots: keep must be at least 1 and days more than 0")


@dataclass(frozen=True)
class CamerasConfig:
    """Everything the camera service needs besides the gallery and the models."""

    cameras: tuple[CameraSpec, ...] = ()
    webhooks: tuple[str, ...] = ()
    webhook_secret: str | None = None
    mqtt: str | None = None
    snapshots: SnapshotSettings = field(default_factory=SnapshotSettings)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.name in seen:
                raise InputError(f"camera {cam.name!r} is given twice")
            seen.add(cam.name)

    def merged(
        self,
        cameras: Sequence[CameraSpec] = (),
        webhooks: Sequence[str] = (),
        webhook_secret: str | None = None,
        mqtt: str | None = None,
        snapshots: SnapshotSettings | None = None,
    ) -> CamerasConfig:
        """This config with command-line values added (cameras, webhooks) or put first."""
        return CamerasConfig(
            self.cameras + tuple(cameras),
            self.webhooks + tuple(w for w in webhooks if w not in self.webhooks),
            webhook_secret or self.webhook_secret,
            mqtt or self.mqtt,
            snapshots or self.snapshots,
        )


def snapshot_dir(settings: SnapshotSettings, gallery_location: Path | str) -> Path:
    """Where snapshots go: the configured folder, else ``snapshots`` inside a local gallery's
    folder, else (a PostgreSQL gallery) beside the default gallery's folder."""
    from ..config import default_gallery_dir

    if settings.directory is not None:
        return settings.directory
    if isinstance(gallery_location, Path):
        return gallery_location / "snapshots"
    return default_gallery_dir().parent / "snapshots"


def check_name(name: str) -> str:
    if not CAMERA_NAME.match(name):
        raise InputError(
            f"camera name {name!r}: use letters, digits, - and _ (up to 64, starting with a "
            "letter or digit); it appears in URLs and MQTT topics"
        )
    return name


def parse_camera(text: str) -> CameraSpec:
    """``NAME=SOURCE`` (``front=rtsp://…``, ``desk=0``, ``door=/path/clip.mp4``)."""
    name, sep, source = text.partition("=")
    if not sep or not source.strip():
        raise InputError(f"--camera {text!r}: expected NAME=SOURCE, e.g. front=rtsp://host/stream")
    return CameraSpec(check_name(name.strip()), parse_source(source.strip()))


def _camera_from(name: str, value: Any, where: str) -> CameraSpec:
    try:
        check_name(name)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return CameraSpec(name, parse_source(str(value)))
    if not isinstance(value, Mapping) or "source" not in value:
        raise InputError(f"{where}: camera {name!r} needs a source (a string, number or table)")
    unknown = set(value) - {"source", "loop", *CAMERA_OPTIONS}
    if unknown:
        raise InputError(
            f"{where}: camera {name!r}: unknown setting(s) {', '.join(sorted(unknown))}"
        )
    opts: dict[str, Any] = {k: value[k] for k in CAMERA_OPTIONS if k in value}
    types = {f.name: f.type for f in fields(LiveOptions)}
    for key, v in opts.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise InputError(f"{where}: camera {name!r}: {key} must be a positive number")
        if "int" in str(types[key]) and "float" not in str(types[key]) and v != int(v):
            raise InputError(f"{where}: camera {name!r}: {key} must be a whole number")
    return CameraSpec(
        name,
        parse_source(str(value["source"])),
        replace(LiveOptions(), **opts),
        loop=bool(value.get("loop", True)),
    )


def load_config(path: str | Path) -> CamerasConfig:
    """Read a TOML config file (InputError naming the file and what is wrong)."""
    import tomllib

    where = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{where}: no such config file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{where}: cannot read ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{where}: not valid TOML ({err})") from None
    unknown = set(data) - {"cameras", "events", "snapshots"}
    if unknown:
        raise InputError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}")
    cams = data.get("cameras", {})
    events = data.get("events", {})
    snaps = data.get("snapshots", {})
    for section, value in (("cameras", cams), ("events", events), ("snapshots", snaps)):
        if not isinstance(value, Mapping):
            raise InputError(f"{where}: [{section}] must be a table")
    bad = set(events) - {"webhook", "webhook_secret", "mqtt"} or set(snaps) - {
        "dir",
        "keep",
        "days",
    }
    if bad:
        raise InputError(f"{where}: unknown setting(s) {', '.join(sorted(bad))}")
    hooks = events.get("webhook", [])
    hooks = [hooks] if isinstance(hooks, str) else hooks
    if not isinstance(hooks, list) or not all(isinstance(h, str) for h in hooks):
        raise InputError(f"{where}: events.webhook must be a URL or a list of URLs")
    try:
        snapshots = SnapshotSettings(
            Path(snaps["dir"]) if "dir" in snaps else None,
            int(snaps.get("keep", DEFAULT_KEEP)),
            float(snaps.get("days", DEFAULT_DAYS)),
        )
    except (TypeError, ValueError):
        raise InputError(f"{where}: snapshots.keep and .days must be numbers") from None
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    return CamerasConfig(
        tuple(_camera_from(name, value, where) for name, value in cams.items()),
        tuple(hooks),
        events.get("webhook_secret"),
        events.get("mqtt"),
        snapshots,
    )
