"""Server fixtures: the app in-process (TestClient), a real uvicorn in a thread, and a real
``facesearch serve`` process; all share the session's models where they run in this process."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip(
    "fastapi", reason="the server extra is not installed: pip install -e '.[server]'"
)

from conftest import FACES, MODELS, REPO  # noqa: E402  (tests/conftest.py)

VAL = FACES / "celebrity5" / "val"
TRAIN = FACES / "celebrity5" / "train"
BBT = FACES / "bbt" / "people"
GROUP = FACES / "bbt" / "group"
LFW = FACES / "lfw_dev" / "images"
KEY = "rw-key-0123456789abcdef"
READ_KEY = "ro-key-0123456789abcdef"


def photo(path: Path) -> tuple[str, bytes]:
    """An upload as (file name, bytes)."""
    return path.name, path.read_bytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, seconds: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url``/readyz until it answers 200 (fails when ``proc`` exits first)."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready after {seconds}s")


@pytest.fixture
def make_client(detector, embedder):
    """Factory: a TestClient over ``create_app`` on a gallery (lifespan run), sharing the models."""
    from fastapi.testclient import TestClient

    from facesearch import FaceSearch
    from facesearch.server import Settings, create_app

    made = []

    def make(gallery: Path, **settings):
        fs = FaceSearch(gallery, detector=detector, embedder=embedder)
        client = TestClient(create_app(fs, Settings(**settings)), base_url="http://127.0.0.1")
        client.__enter__()
        made.append(client)
        return client

    yield make
    for client in made:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client, enrolled_copy):
    """The API over a private copy of the enrolled gallery (celebrity5/train + bbt/people)."""
    return make_client(enrolled_copy)


@pytest.fixture
def live_server(detector, embedder):
    """Factory: a real uvicorn serving ``create_app`` in a thread of this process, on a free
    loopback port; returns its base URL. Shares the models."""
    import uvicorn

    from facesearch import FaceSearch
    from facesearch.server import Settings, create_app

    running = []

    def start(gallery: Path, **settings) -> str:
        fs = FaceSearch(gallery, detector=detector, embedder=embedder)
        port = free_port()
        app = create_app(fs, Settings(port=port, **settings))
        server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        return url

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(30)


def serve_process(gallery: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """A real ``facesearch serve`` process on a free loopback port (this checkout's code, the
    shared models); returns it and its base URL once it is ready."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "FACESEARCH_MODELS": os.environ.get("FACESEARCH_MODELS", str(MODELS)),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "facesearch", "--gallery", str(gallery), "serve"]
        + ["--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc=proc)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, url


def stop(proc: subprocess.Popen, timeout: float = 60.0) -> int:
    """SIGTERM ``proc`` and return its exit code."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


# -- the browser tests (test_page.py, test_cameras_page.py) -----------------------------------------

HOW_TO_INSTALL = (
    "apt-get install chromium (Debian/Ubuntu; scripts/test.sh does it when run as root), "
    "or set FACESEARCH_CHROMIUM to a Chromium or Chrome binary"
)


def chromium() -> str:
    """The Chromium to drive, or skip (fail under CI) saying how to get one."""
    path = os.environ.get("FACESEARCH_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "playwright is not installed: pip install -e '.[test]'"
    if problem is None and path is None:
        problem = f"no Chromium found: {HOW_TO_INSTALL}"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run under CI: {problem}")
        pytest.skip(f"browser tests skipped: {problem}")
    return path  # type: ignore[return-value]


def expect(locator):
    from playwright.sync_api import expect

    return expect(locator)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for the module (skips, or fails under CI, without one)."""
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


def save_screenshot(page, path: Path) -> None:
    """A full-page screenshot of ``page`` at ``path``, as a 256-colour PNG (a third the size)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    shot.quantize(256).save(path, optimize=True)


@contextmanager
def watched_page(browser, url: str) -> Iterator:
    """A desktop-sized page open at ``url``; fails if the page's JavaScript threw meanwhile."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(url)
    yield page
    assert not errors, errors
    page.close()
