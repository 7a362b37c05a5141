"""A real uvicorn in this process: identify from several threads while an enroll runs, batching
of concurrent requests, and the upload limit enforced before a body is read whole."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit

import httpx

from .conftest import LFW, VAL

NEWCOMER = sorted((LFW / "Amelia_Vega").iterdir())


def test_identify_from_threads_while_an_enroll_runs(live_server, enrolled_copy):
    url = live_server(enrolled_copy)
    before = httpx.get(f"{url}/api/v1/info").json()["faces"]
    queries = [(VAL / who / "1.jpg", who) for who in ("madonna", "elton_john", "mindy_kaling")]
    errors: list[str] = []
    named: list[tuple[str, str | None]] = []
    stop = threading.Event()

    def identify(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            k = offset
            while not stop.is_set() or k < offset + 2:
                path, who = queries[k % len(queries)]
                r = http.post("/api/v1/identify", files={"file": (path.name, path.read_bytes())})
                if r.status_code != 200:
                    errors.append(r.text)
                else:
                    faces = r.json()["faces"]
                    named.append((who, faces[0]["name"] if faces else None))
                k += 1

    threads = [threading.Thread(target=identify, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        files = [("file", (p.name, p.read_bytes())) for p in NEWCOMER[:5]]
        enrolled = httpx.post(f"{url}/api/v1/people/amelia_vega/faces", files=files, timeout=120)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert enrolled.status_code == 201 and enrolled.json()["people"] == {"amelia_vega": 5}
    assert len(named) >= 8 and all(who == name for who, name in named), named
    # the very next identify knows her, here and in another server on the same gallery
    r = httpx.post(f"{url}/api/v1/identify", content=NEWCOMER[5].read_bytes(), timeout=60)
    assert r.json()["faces"][0]["name"] == "amelia_vega"
    other = live_server(enrolled_copy)
    r = httpx.post(f"{other}/api/v1/identify", content=NEWCOMER[6].read_bytes(), timeout=60)
    assert r.json()["faces"][0]["name"] == "amelia_vega"
    info = httpx.get(f"{url}/api/v1/info").json()
    assert info["faces"] == before + 5  # nothing lost
    # concurrent requests were identified together: fewer batches than images
    assert info["server"]["identify_batches"] < info["server"]["identify_images"]


def _raw(url: str, head: bytes, body_parts, read_after: int | None = None) -> tuple[bytes, int]:
    """Send a raw HTTP request part by part; returns the response and the body bytes sent
    before the server answered (it must answer without reading the rest)."""
    parts = urlsplit(url)
    sent = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
        s.sendall(head)
        s.settimeout(0.05)
        answer = b""
        for part in body_parts:
            try:
                answer = s.recv(65536)
            except TimeoutError:
                pass
            if answer:
                break
            try:
                s.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(part)
        s.settimeout(30)
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer, sent


def test_a_body_over_the_limit_is_refused_before_it_is_read(live_server, enrolled_copy):
    limit = 256 * 1024
    url = live_server(enrolled_copy, max_upload_bytes=limit)
    before = httpx.get(f"{url}/api/v1/info").json()["faces"]
    chunk = b"\0" * 65536
    # declared too large: refused at once, none of the 100 MB needed
    head = (
        b"POST /api/v1/identify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Length: 104857600\r\n\r\n"
    )
    answer, sent = _raw(url, head, [chunk] * 1600)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 8 * 1024 * 1024
    # no length given (chunked): refused once the limit is passed
    head = (
        b"POST /api/v1/people/x/faces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    answer, sent = _raw(url, head, [framed] * 1600)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 8 * 1024 * 1024
    assert httpx.get(f"{url}/api/v1/info").json()["faces"] == before  # nothing enrolled
