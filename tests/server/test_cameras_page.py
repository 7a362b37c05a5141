"""The page's Cameras view in a real headless Chromium against real ``facesearch serve
--camera`` processes. Without an API key the page shows the MJPEG stream in an ``<img>`` and
follows an EventSource; with one (the rest of the tests) it fetches the pictures and reads the
event stream with the key: the camera's picture updates, an enrolled person is recognized and a
stranger shown unknown in the timeline, the stranger is named from the timeline (enrolled: the
API lists them, the camera then recognizes them) and another snapshot dismissed; a screenshot
(out/cameras.png) and a phone-width screen.

Needs Chromium, as test_page.py: without it these tests skip, except under ``CI=true``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from clipgen import walking_clip
from conftest import REPO

from .conftest import KEY, LFW, VAL, expect, save_screenshot, serve_process, stop, watched_page

pytestmark = pytest.mark.browser

# out/ (ignored), not docs/: the screenshot shows the shared photos, which are never committed
SCREENSHOT = REPO / "out" / "cameras.png"
ENROLLED = "ben_afflek"  # in the enrolled gallery (celebrity5/train); the clip has a val photo
STRANGER = "Abbas Kiarostami"  # in no gallery, until named from the timeline
PEOPLE = [
    (ENROLLED, VAL / "ben_afflek" / "1.jpg"),
    (None, LFW / "Abbas_Kiarostami" / "Abbas_Kiarostami_0001.jpg"),
]
WAIT_MS = 30_000  # for an event: the clip (played at real time, looped) lasts 6.4 s


@pytest.fixture(scope="module")
def scene(tmp_path_factory, detector, enrolled, browser):
    """The camera's clip (the enrolled person walks by, then the stranger) and a factory of
    galleries (copies of the enrolled one). (``browser`` first: without Chromium the module
    skips before making anything.)"""
    tmp = tmp_path_factory.mktemp("cameras-page")
    clip = tmp / "door.mp4"
    walking_clip(clip, detector, PEOPLE, fps=10, segment=24, gap=8)

    def gallery(name: str) -> Path:
        shutil.copytree(enrolled[0], tmp / name)
        return tmp / name

    return clip, gallery


@pytest.fixture(scope="module")
def server(scene):
    """A real server on a copy of the enrolled gallery, with an API key and the camera."""
    clip, gallery = scene
    proc, url = serve_process(gallery("keyed"), "--api-key", KEY, "--camera", f"door={clip}")
    yield url
    assert stop(proc) == 0


@pytest.fixture(scope="module")
def page(browser, server):
    with watched_page(browser, server) as page:
        # the server wants a key: the page asks for one, then shows the cameras
        page.fill("#key-input", KEY)
        page.click("#key-form button[type=submit]")
        page.wait_for_selector("#cameras:not([hidden]) .camera[data-name='door']")
        yield page


def get(url: str, path: str):
    import httpx

    return httpx.get(f"{url}/api/v1/{path}", headers={"X-API-Key": KEY}, timeout=10)


def picture(page) -> tuple[str, int, int]:
    """The camera's picture as shown: its URL, its width and a hash of its pixels."""
    return page.eval_on_selector(
        ".camera[data-name='door'] .camera-picture img",
        """img => {
            if (!img.naturalWidth) return [img.src, 0, 0];
            const c = document.createElement("canvas");
            c.width = img.naturalWidth;
            c.height = img.naturalHeight;
            const g = c.getContext("2d");
            g.drawImage(img, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data;
            let h = 0;
            for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) >>> 0;
            return [img.src, img.naturalWidth, h];
        }""",
    )


def wait_for_picture(page, seconds: float = 15) -> tuple[str, int, int]:
    deadline = time.monotonic() + seconds
    shown = picture(page)
    while shown[1] == 0:
        assert time.monotonic() < deadline, "no picture shown"
        time.sleep(0.2)
        shown = picture(page)
    assert shown[1] == 640
    return shown


def picture_changes(page, first: tuple[str, int, int], seconds: float = 10) -> tuple[str, int, int]:
    """Wait until the picture shows other pixels than ``first``; returns it."""
    deadline = time.monotonic() + seconds
    shown = first
    while shown[1] == 0 or shown[2] == first[2]:  # 0: a new picture not decoded yet
        assert time.monotonic() < deadline, "the picture did not change"
        time.sleep(0.2)
        shown = picture(page)
    assert shown[1] == 640
    return shown


def test_without_a_key_the_page_shows_the_mjpeg_stream_and_the_event_source(browser, scene):
    """(First: this server stops before the module's server, with a key, starts.)"""
    clip, gallery = scene
    proc, url = serve_process(gallery("open"), "--camera", f"door={clip}")
    try:
        with watched_page(browser, url) as page:
            page.wait_for_selector("#cameras:not([hidden]) .camera[data-name='door']")
            first = wait_for_picture(page)
            assert "/api/v1/cameras/door/stream?" in first[0]  # the <img>: the MJPEG stream
            picture_changes(page, first)
            recognized = page.locator(f"#timeline li.recognized[data-name='{ENROLLED}']").first
            expect(recognized).to_be_visible(timeout=WAIT_MS)
    finally:
        assert stop(proc) == 0


def test_the_cameras_picture_updates(page):
    card = page.locator(".camera[data-name='door']")
    expect(card.locator(".camera-state")).to_have_text("running")
    expect(card.locator(".camera-title")).to_contain_text("fps")
    first = wait_for_picture(page)
    later = picture_changes(page, first)
    # fetched with the key into a new blob URL each time
    assert first[0].startswith("blob:") and later[0].startswith("blob:") and later[0] != first[0]


def test_the_timeline_shows_the_enrolled_person_and_the_stranger(page):
    recognized = page.locator(f"#timeline li.recognized[data-name='{ENROLLED}']").first
    expect(recognized).to_be_visible(timeout=WAIT_MS)
    expect(recognized).to_contain_text("similarity 0.")
    expect(recognized).to_contain_text("door")
    expect(recognized.locator("img")).to_have_count(1)  # its snapshot, fetched with the key
    assert recognized.locator("img").evaluate("img => img.naturalWidth") > 0
    unknown = page.locator("#timeline li.unknown").first
    expect(unknown).to_be_visible(timeout=WAIT_MS)
    expect(unknown.locator(".who")).to_have_text("unknown")
    expect(unknown.locator("form.name-visitor button[type=submit]")).to_have_text("Name")
    # appear events are left out, every other one is there
    assert page.locator("#timeline li[data-event='appear']").count() == 0
    assert page.locator("#timeline li").count() <= 100


def test_dismiss_one_snapshot_and_name_the_stranger_from_the_timeline(page, server):
    unknown = page.locator("#timeline li.unknown:has(form.name-visitor)")
    expect(unknown).not_to_have_count(0, timeout=WAIT_MS)
    if unknown.count() < 2:  # the next pass of the clip brings another
        expect(unknown).to_have_count(2, timeout=WAIT_MS)

    # dismiss the older one: its snapshot is deleted
    dismissed = unknown.last
    snap = dismissed.get_attribute("data-snapshot")
    dismissed.locator("button.dismiss").click()
    expect(page.locator(f"#timeline li[data-snapshot='{snap}'].dismissed")).to_have_count(1)
    assert get(server, f"snapshots/{snap}/picture").status_code == 404

    # name the newest one: a bad name says why, a good one enrolls the face
    item = page.locator("#timeline li.unknown:has(form.name-visitor)").first
    snap = item.get_attribute("data-snapshot")
    item = page.locator(f"#timeline li[data-snapshot='{snap}'].unknown")
    item.locator("input").fill("abbas/kiarostami")
    item.locator("button[type=submit]").click()
    expect(item.locator(".visitor-outcome.error")).to_contain_text("path separator")
    item.locator("input").fill(STRANGER)
    item.locator("button[type=submit]").click()
    expect(item.locator(".visitor-outcome.ok")).to_contain_text(f"Enrolled as {STRANGER}")
    expect(item.locator(".who")).to_have_text(f"unknown → {STRANGER}")
    detail = get(server, f"people/{quote(STRANGER)}")
    assert detail.status_code == 200, detail.text
    assert detail.json()["person"]["name"] == STRANGER and len(detail.json()["faces"]) == 1
    # the page's people grid has them, and the camera now knows them
    expect(page.locator(f"#people-grid li[data-name='{STRANGER}']")).to_have_count(1)
    named = page.locator(f"#timeline li.recognized[data-name='{STRANGER}']").first
    expect(named).to_be_visible(timeout=WAIT_MS)
    named.locator("img").wait_for()
    time.sleep(1.0)  # the picture too shows them named
    save_screenshot(page, SCREENSHOT)


def test_the_cameras_view_fits_a_phone(browser, server):
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.add_init_script(f"localStorage.setItem('facesearch-api-key', '{KEY}')")
    phone.goto(server)
    phone.locator("#timeline li.recognized img").first.wait_for(timeout=WAIT_MS)
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 390
    img = phone.locator(".camera-picture").bounding_box()
    assert img["width"] <= 390 and img["height"] > 100
    phone.close()
