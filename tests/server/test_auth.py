"""Who may call: API keys (none, wrong, read-only on a write), and without keys loopback only."""

from __future__ import annotations

import pytest

from .conftest import KEY, READ_KEY, VAL, photo
from .test_api import one_line_error


@pytest.fixture
def keyed(make_client, enrolled_copy):
    return make_client(enrolled_copy, api_keys={KEY: "read-write", READ_KEY: "read-only"})


def test_every_api_call_needs_a_key(keyed):
    for method, url in (
        ("GET", "/api/v1/people"),
        ("GET", "/api/v1/info"),
        ("GET", "/api/v1/healthz"),
    ):
        r = keyed.request(method, url)
        one_line_error(r, 401, "API key is required")
        assert r.headers["www-authenticate"] == "Bearer"
    r = keyed.post("/api/v1/identify", files={"file": photo(VAL / "madonna" / "1.jpg")})
    one_line_error(r, 401, "API key")
    # probes and the page itself (static files, no data) need none
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code in (200, 503)
    assert keyed.get("/").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer wrong-key-0123456789"}, {"X-API-Key": "x"}, {"Authorization": KEY}],
)
def test_a_wrong_key_is_refused(keyed, headers):
    one_line_error(keyed.get("/api/v1/people", headers=headers), 401)


def test_a_read_only_key_reads_but_cannot_write(keyed):
    ro = {"X-API-Key": READ_KEY}
    assert keyed.get("/api/v1/info", headers=ro).status_code == 200
    assert keyed.get("/api/v1/info", headers=ro).json()["server"]["access"] == "read-only"
    r = keyed.post("/api/v1/identify", headers=ro, files={"file": photo(VAL / "madonna" / "1.jpg")})
    assert r.status_code == 200 and r.json()["faces"][0]["name"] == "madonna"
    token = r.json()["token"]
    for method, url, kwargs in (
        ("POST", "/api/v1/people/x/faces", {"files": {"file": photo(VAL / "madonna" / "2.jpg")}}),
        ("POST", "/api/v1/people/x/faces", {"data": {"face_from": token, "box": "1,1,50,50"}}),
        ("PATCH", "/api/v1/people/amy", {"json": {"name": "Amy"}}),
        ("DELETE", "/api/v1/people/amy", {}),
        ("DELETE", "/api/v1/faces/1", {}),
    ):
        one_line_error(keyed.request(method, url, headers=ro, **kwargs), 403, "read-only")
    assert keyed.get("/api/v1/info", headers=ro).json()["people"] == 13  # nothing changed


def test_a_read_write_key_writes_by_either_header(keyed):
    r = keyed.post(
        "/api/v1/people/madonna2/faces",
        headers={"Authorization": f"Bearer {KEY}"},
        files={"file": photo(VAL / "madonna" / "2.jpg")},
    )
    assert r.status_code == 201, r.text
    r = keyed.delete("/api/v1/people/madonna2", headers={"X-API-Key": KEY})
    assert r.status_code == 200 and r.json()["faces_removed"] == 1
    info = keyed.get("/api/v1/info", headers={"X-API-Key": KEY}).json()
    assert info["server"]["access"] == "read-write" and info["server"]["api_keys"] is True


def test_without_keys_only_loopback_names_and_same_origin_writes(client):
    # DNS rebinding: a page of evil.example resolving to 127.0.0.1 sends Host: evil.example
    r = client.get("/api/v1/info", headers={"Host": "evil.example:8000"})
    one_line_error(r, 403, "loopback")
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert client.get("/api/v1/info", headers={"Host": host}).status_code == 200, host
    # a form posted from another site
    r = client.delete("/api/v1/people/amy", headers={"Origin": "https://evil.example"})
    one_line_error(r, 403, "cross-site")
    assert client.get("/api/v1/info").json()["people"] == 13
    r = client.post(
        "/api/v1/identify",
        headers={"Origin": "http://127.0.0.1"},
        files={"file": photo(VAL / "madonna" / "1.jpg")},
    )
    assert r.status_code == 200
