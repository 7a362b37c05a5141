"""serve's camera settings: ``--camera NAME=SOURCE`` and the TOML config file, checked once."""

from __future__ import annotations

from pathlib import Path

import pytest

from facesearch.cameras import CamerasConfig, SnapshotSettings, load_config, parse_camera
from facesearch.cameras.config import snapshot_dir
from facesearch.errors import InputError


@pytest.mark.parametrize(
    ("text", "name", "source"),
    [
        ("front=rtsp://cam.local/stream1", "front", "rtsp://cam.local/stream1"),
        ("desk=0", "desk", 0),
        ("door=/srv/clips/door.mp4", "door", "/srv/clips/door.mp4"),
        (" yard_2 = http://10.0.0.2/video.mjpg", "yard_2", "http://10.0.0.2/video.mjpg"),
        ("a=b=c.mp4", "a", "b=c.mp4"),
    ],
)
def test_parse_camera(text, name, source):
    spec = parse_camera(text)
    assert (spec.name, spec.source, spec.loop) == (name, source, True)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("front", "expected NAME=SOURCE"),
        ("front=", "expected NAME=SOURCE"),
        ("=rtsp://x", "camera name ''"),
        ("front door=0", "camera name 'front door'"),
        ("cam/1=0", "camera name 'cam/1'"),
        ("x" * 65 + "=0", "up to 64"),
    ],
)
def test_bad_camera_flags(text, says):
    with pytest.raises(InputError, match=says):
        parse_camera(text)


def test_a_password_is_not_shown():
    spec = parse_camera("front=rtsp://admin:hunter2@192.0.2.7:554/stream")
    assert spec.describe() == "rtsp://admin:***@192.0.2.7:554/stream"
    assert "hunter2" not in spec.describe()


def test_config_file(tmp_path):
    path = tmp_path / "facesearch.toml"
    path.write_text(
        """
[cameras]
front = "rtsp://u:p@cam/1"
desk = 0
door = { source = "/srv/door.mp4", detect_every = 1, threshold = 0.3, loop = false }

[events]
webhook = "http://127.0.0.1:5000/faces"
webhook_secret = "s3"
mqtt = "mqtt://127.0.0.1:1883"

[snapshots]
dir = "/var/lib/facesearch/snaps"
keep = 50
days = 2.5
"""
    )
    cfg = load_config(path)
    assert [c.name for c in cfg.cameras] == ["front", "desk", "door"]
    door = cfg.cameras[2]
    assert door.source == "/srv/door.mp4" and door.loop is False
    assert door.options.detect_every == 1 and door.options.threshold == 0.3
    assert cfg.cameras[1].source == 0 and cfg.cameras[0].options.detect_every == 2
    assert cfg.webhooks == ("http://127.0.0.1:5000/faces",) and cfg.webhook_secret == "s3"
    assert cfg.mqtt == "mqtt://127.0.0.1:1883"
    assert cfg.snapshots == SnapshotSettings(Path("/var/lib/facesearch/snaps"), 50, 2.5)


def test_flags_add_to_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[cameras]\nfront = 0\n[events]\nwebhook = ["http://a/1"]\n')
    cfg = load_config(path).merged(
        [parse_camera("back=1")], ["http://a/1", "http://b/2"], mqtt="mqtt://h"
    )
    assert [c.name for c in cfg.cameras] == ["front", "back"]
    assert cfg.webhooks == ("http://a/1", "http://b/2") and cfg.mqtt == "mqtt://h"
    with pytest.raises(InputError, match="camera 'front' is given twice"):
        load_config(path).merged([parse_camera("front=2")])


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[cameras\n", "not valid TOML"),
        ("[camera]\nx = 0\n", r"unknown section\(s\) camera"),
        ("[cameras]\nfront = { detect_every = 1 }\n", "needs a source"),
        ("[cameras]\nfront = true\n", "needs a source"),
        ("[cameras]\nfront = { source = 0, fps = 5 }\n", r"unknown setting\(s\) fps"),
        ("[cameras]\nfront = { source = 0, detect_every = 0 }\n", "positive number"),
        ("[cameras]\nfront = { source = 0, detect_every = 1.5 }\n", "whole number"),
        ("[cameras]\n'front door' = 0\n", "camera name"),
        ("[events]\nwebhooks = []\n", r"unknown setting\(s\) webhooks"),
        ("[events]\nwebhook = 3\n", "a URL or a list"),
        ("[snapshots]\nkeep = 'many'\n", "must be numbers"),
        ("[snapshots]\nkeep = 0\n", "keep must be at least 1"),
        ("cameras = 3\n", r"\[cameras\] must be a table"),
    ],
)
def test_bad_config_files(tmp_path, text, says):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=says) as err:
        load_config(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="no such config file"):
        load_config(tmp_path / "nope.toml")


def test_where_snapshots_go(tmp_path):
    assert snapshot_dir(SnapshotSettings(), tmp_path / "g") == tmp_path / "g" / "snapshots"
    assert snapshot_dir(SnapshotSettings(tmp_path / "s"), tmp_path / "g") == tmp_path / "s"
    assert snapshot_dir(SnapshotSettings(), "postgresql://db/x").name == "snapshots"
    assert CamerasConfig().cameras == ()
