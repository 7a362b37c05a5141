"""Real ``facesearch serve`` processes: two share one gallery, and SIGTERM lets an enroll in
flight finish, exits 0 and leaves the gallery whole."""

from __future__ import annotations

import signal
import threading
import time

import httpx

from facesearch import FaceSearch

from .conftest import LFW, serve_process, stop

AMELIA = sorted((LFW / "Amelia_Vega").iterdir())
BLAIR = sorted((LFW / "Tony_Blair").iterdir())


def files(paths):
    return [("file", (p.name, p.read_bytes())) for p in paths]


def test_two_servers_share_a_gallery_and_sigterm_finishes_the_enroll(
    enrolled_copy, detector, embedder
):
    a, url_a = serve_process(enrolled_copy)
    b, url_b = serve_process(enrolled_copy)
    try:
        before = httpx.get(f"{url_b}/api/v1/info").json()["faces"]
        r = httpx.post(
            f"{url_a}/api/v1/people/amelia_vega/faces", files=files(AMELIA[:3]), timeout=120
        )
        assert r.status_code == 201 and r.json()["enrolled"] == 3
        # the very next identify in the other server knows her
        r = httpx.post(f"{url_b}/api/v1/identify", content=AMELIA[3].read_bytes(), timeout=60)
        assert r.json()["faces"][0]["name"] == "amelia_vega"

        # SIGTERM to A while it enrolls 40 photos: the request finishes, then A exits 0
        answer: dict[str, httpx.Response] = {}

        def enroll() -> None:
            answer["r"] = httpx.post(
                f"{url_a}/api/v1/people/tony_blair/faces", files=files(BLAIR[:40]), timeout=300
            )
            answered.append(time.monotonic())

        answered: list[float] = []

        thread = threading.Thread(target=enroll)
        thread.start()
        time.sleep(1.0)  # the upload is in and being enrolled
        a.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        thread.join(300)
        assert answered and answered[0] > signalled  # it was in flight when the signal came
        assert a.wait(120) == 0
        assert "stopped by SIGTERM" in a.stderr.read()
        report = answer["r"].json()
        assert answer["r"].status_code == 201, report
        assert report["photos_seen"] == 40 and report["enrolled"] >= 35

        # the gallery is whole: B and a fresh reader see every face, and recognise him
        assert httpx.get(f"{url_b}/api/v1/info").json()["faces"] == before + 3 + report["enrolled"]
        r = httpx.post(f"{url_b}/api/v1/identify", content=BLAIR[60].read_bytes(), timeout=60)
        assert r.json()["faces"][0]["name"] == "tony_blair"
    finally:
        stop(a)
        code_b = stop(b)
    assert code_b == 0
    with FaceSearch(enrolled_copy, detector=detector, embedder=embedder) as fs:
        people = {p.name: p.faces for p in fs.people()}
        assert people["tony_blair"] == report["enrolled"] and people["amelia_vega"] == 3
