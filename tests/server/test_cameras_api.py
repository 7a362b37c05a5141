"""The cameras over HTTP, on a real uvicorn on loopback: states on /readyz (a dead camera does
not make the server unready), the annotated picture and MJPEG stream, the SSE timeline, and an
unknown visitor's snapshot named from the timeline, after which the camera names them."""

from __future__ import annotations

import json
import shutil
import threading
import time

import httpx
import pytest

from conftest import CLIP_PEOPLE
from facesearch import FaceSearch
from facesearch.cameras import CamerasConfig, CameraSpec

from .conftest import free_port, wait_ready

API = "/api/v1"
STRANGER_PHOTO = CLIP_PEOPLE[2][1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, enrolled, detector, embedder, door_clip):
    """A uvicorn serving the enrolled gallery with the clip as camera "door" (looped) and a
    camera whose stream does not exist; yields the base URL."""
    import uvicorn

    from facesearch.server import Settings, create_app

    tmp = tmp_path_factory.mktemp("camera-server")
    gallery = tmp / "gallery"
    shutil.copytree(enrolled[0], gallery)
    fs = FaceSearch(gallery, detector=detector, embedder=embedder)
    dead = f"http://127.0.0.1:{free_port()}/stream.mjpg"
    cameras = CamerasConfig(
        (CameraSpec("door", str(door_clip[0])), CameraSpec("garage", dead)),
    )
    port = free_port()
    app = create_app(fs, Settings(port=port), cameras)
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_ready(url)
    yield url, gallery
    server.should_exit = True
    thread.join(30)


def wait_json(url: str, pred, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(url, timeout=10).json()
        if pred(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def sse(url: str, pred, timeout: float = 60.0) -> list[dict]:
    """Read the event stream until ``pred(events)``; returns the events read."""
    events: list[dict] = []
    with httpx.stream("GET", url, timeout=httpx.Timeout(10, read=timeout)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        deadline = time.monotonic() + timeout
        message: dict[str, str] = {}
        for line in r.iter_lines():
            if line.startswith(("id: ", "event: ", "data: ")):
                key, _, value = line.partition(": ")
                message[key] = value
            elif line == "" and "data" in message:
                assert message["event"] == "face"
                item = json.loads(message["data"])
                assert str(item["id"]) == message["id"]
                events.append(item)
                message = {}
                if pred(events):
                    break
            assert time.monotonic() < deadline, events
    return events


def test_readyz_lists_the_cameras_and_a_dead_one_does_not_make_it_unready(server):
    url, _ = server
    body = wait_json(
        f"{url}/readyz",
        lambda b: (
            {c["name"]: c["state"] for c in b["cameras"]}.get("door") == "running"
            and b["cameras"][1]["error"]
        ),
    )
    states = {c["name"]: c for c in body["cameras"]}
    assert body["ready"] is True
    assert states["door"]["state"] == "running" and states["door"]["width"] == 640
    assert states["garage"]["state"] == "reconnecting"
    assert "cannot open stream" in states["garage"]["error"]
    listed = httpx.get(f"{url}{API}/cameras").json()
    assert [c["name"] for c in listed["cameras"]] == ["door", "garage"]
    assert set(listed["stats"]) >= {"rounds", "largest_round", "snapshots", "events"}


def test_the_picture_is_a_jpeg_that_changes(server):
    url, _ = server
    r = httpx.get(f"{url}{API}/cameras/door/picture")
    deadline = time.monotonic() + 30
    while r.status_code == 503 and time.monotonic() < deadline:  # no frame processed yet
        time.sleep(0.2)
        r = httpx.get(f"{url}{API}/cameras/door/picture")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:2] == b"\xff\xd8" and r.headers["cache-control"] == "no-store"
    time.sleep(0.5)
    assert httpx.get(f"{url}{API}/cameras/door/picture").content != r.content
    r = httpx.get(f"{url}{API}/cameras/garage/picture")
    assert r.status_code == 503 and "reconnecting" in r.json()["error"]
    r = httpx.get(f"{url}{API}/cameras/attic/picture")
    assert r.status_code == 404 and r.json() == {"error": "no camera named 'attic'"}


def test_the_mjpeg_stream_sends_new_pictures(server):
    url, _ = server
    with httpx.stream("GET", f"{url}{API}/cameras/door/stream", timeout=20) as r:
        assert r.headers["content-type"] == "multipart/x-mixed-replace; boundary=frame"
        data = b""
        for chunk in r.iter_bytes():
            data += chunk
            if data.count(b"--frame") >= 3:
                break
    parts = [p for p in data.split(b"--frame\r\n") if p]
    head, _, jpeg = parts[0].partition(b"\r\n\r\n")
    assert b"Content-Type: image/jpeg" in head and jpeg[:2] == b"\xff\xd8"
    assert parts[0] != parts[1]  # each part is a newly processed frame


def test_an_unknown_visitor_is_named_from_the_timeline_and_then_recognised(server):
    url, gallery = server
    events = sse(
        f"{url}{API}/events",
        lambda evs: any(e["event"] == "unknown" for e in evs),
        timeout=60,
    )
    recognized = {e["name"] for e in events if e["event"] == "recognized"}
    assert recognized <= {"ben_afflek", "mindy_kaling"} and recognized
    unknown = next(e for e in events if e["event"] == "unknown")
    assert unknown["camera"] == "door" and unknown["name"] is None and unknown["snapshot"]

    snaps = httpx.get(f"{url}{API}/snapshots", params={"unknown": "true"}).json()["snapshots"]
    snap = next(s for s in snaps if s["id"] == unknown["snapshot"])
    assert snap["event"] == "unknown" and snap["camera"] == "door" and snap["named"] is None
    picture = httpx.get(f"{url}{API}/snapshots/{snap['id']}/picture")
    assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"

    r = httpx.post(f"{url}{API}/snapshots/{snap['id']}/name", json={"name": "a/b"})
    assert r.status_code in (400, 422) and set(r.json()) == {"error"}
    r = httpx.post(f"{url}{API}/snapshots/{snap['id']}/name", json={"name": "abbas"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["snapshot"]["named"] == "abbas" and r.json()["face_id"] >= 0
    person = httpx.get(f"{url}{API}/people/abbas").json()
    assert len(person["faces"]) == 1 and person["faces"][0]["source_path"].startswith(
        "camera door "
    )
    unnamed = httpx.get(f"{url}{API}/snapshots", params={"unknown": "true"}).json()["snapshots"]
    assert snap["id"] not in {s["id"] for s in unnamed}
    # his own photo is now identified as him, and the camera names him when he comes by again
    r = httpx.post(f"{url}{API}/identify", content=STRANGER_PHOTO.read_bytes(), timeout=60)
    assert r.json()["faces"][0]["name"] == "abbas"
    last = events[-1]["id"]
    again = sse(
        f"{url}{API}/events?after={last}",
        lambda evs: any(e["event"] == "recognized" and e["name"] == "abbas" for e in evs),
        timeout=60,
    )
    assert all(e["id"] > last for e in again)


def test_snapshots_are_dismissed_and_bad_ids_are_one_line_errors(server):
    url, _ = server
    snaps = wait_json(f"{url}{API}/snapshots", lambda b: b["snapshots"])["snapshots"]
    sid = snaps[-1]["id"]
    assert httpx.delete(f"{url}{API}/snapshots/{sid}").json() == {"dismissed": sid}
    r = httpx.delete(f"{url}{API}/snapshots/{sid}")
    assert r.status_code == 404 and set(r.json()) == {"error"}
    assert httpx.get(f"{url}{API}/snapshots/{sid}/picture").status_code == 404
    r = httpx.get(f"{url}{API}/snapshots/../picture")
    assert r.status_code in (404, 422)
    r = httpx.post(f"{url}{API}/snapshots/0123456789abcdef/name", json={"name": "x"})
    assert r.status_code == 404 and "no snapshot" in r.json()["error"]
    r = httpx.get(f"{url}{API}/snapshots/nothex/picture")
    assert r.status_code in (400, 422) and set(r.json()) == {"error"}
    recent = httpx.get(f"{url}{API}/events/recent", params={"limit": 5}).json()["events"]
    assert 0 < len(recent) <= 5 and recent == sorted(recent, key=lambda e: e["id"])
