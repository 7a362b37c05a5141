"""The REST API on real photos: right names, unknowns unknown, enroll outcomes, faces, errors.

The app runs in-process (TestClient, lifespan included) over a copy of the enrolled gallery
(celebrity5/train + bbt/people), with the session's models.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from facesearch import FaceSearch

from .conftest import BBT, GROUP, LFW, TRAIN, VAL, photo

AMELIA = sorted((LFW / "Amelia_Vega").iterdir())


def one_line_error(response, status: int, fragment: str = "") -> str:
    """The response is ``status`` with a body of exactly ``{"error": one line}``."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    message = body["error"]
    assert isinstance(message, str) and message and "\n" not in message
    assert "Traceback" not in message
    assert fragment.lower() in message.lower(), message
    return message


def png(size=(64, 64), color=(200, 200, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def bomb() -> bytes:
    """A small PNG that claims 20000 x 20000 pixels (a decompression bomb)."""
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG")
    return out.getvalue()


# -- identify and verify ---------------------------------------------------------------------------


def test_identify_names_known_faces_and_leaves_strangers_unknown(
    client, enrolled_copy, detector, embedder
):
    for who in ("madonna", "elton_john", "mindy_kaling"):
        r = client.post("/api/v1/identify", files={"file": photo(VAL / who / "1.jpg")})
        assert r.status_code == 200, r.text
        assert r.json()["faces"][0]["name"] == who
    r = client.post("/api/v1/identify", files={"file": photo(AMELIA[0])})
    face = r.json()["faces"][0]
    assert face["name"] is None and face["nearest"] is not None and face["distance"] > 0
    # exactly identify --json's object for the image (and a token), from the same to_dict
    body = r.json()
    assert isinstance(body.pop("token"), str)
    with FaceSearch(enrolled_copy, detector=detector, embedder=embedder) as fs:
        expected = fs.identify(AMELIA[0]).to_dict()
    assert body.pop("image") == AMELIA[0].name
    expected.pop("image")
    assert body == expected


def test_identify_group_photo_and_parameters(client):
    r = client.post("/api/v1/identify", files={"file": photo(GROUP / "bbt2.jpg")})
    names = {f["name"] for f in r.json()["faces"]}
    assert {"sheldon", "leonard"} <= names and None in names
    assert "default for 13 people" in r.json()["threshold_source"]
    # raw bytes, a strict threshold and more candidates
    data = (GROUP / "bbt2.jpg").read_bytes()
    r = client.post("/api/v1/identify?threshold=0.01&top_k=5", content=data)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (
        body["threshold"] == 0.01 and body["threshold_source"] == "set by the threshold parameter"
    )
    assert all(f["name"] is None for f in body["faces"])
    ok = [f for f in body["faces"] if f["quality"] == "ok"]
    assert ok and all(len(f["candidates"]) == 5 for f in ok)
    # the salt shaker in bbt2.jpg is below the quality gate: reported, never named
    assert all(f["candidates"] == [] for f in body["faces"] if f["quality"] == "low")


def test_verify_same_and_different_people(client):
    amy = sorted((BBT / "amy").iterdir())
    r = client.post("/api/v1/verify", files=[("file", photo(amy[0])), ("file", photo(amy[1]))])
    assert r.status_code == 200, r.text
    same = r.json()
    assert same["same_person"] is True and same["distance"] <= same["threshold"]
    assert "1:1 verification" in same["threshold_source"]
    assert [f["image"] for f in same["faces"]] == [amy[0].name, amy[1].name]
    sheldon = BBT / "sheldon" / "sheldon1.png"
    r = client.post("/api/v1/verify", files=[("file", photo(amy[0])), ("file", photo(sheldon))])
    assert r.json()["same_person"] is False and r.json()["distance"] > r.json()["threshold"]


# -- enroll ------------------------------------------------------------------------------------------


def test_enroll_reports_each_photo_and_the_next_identify_knows_them(client):
    files = [("file", photo(p)) for p in AMELIA[:3]]
    files += [
        ("file", ("notes.txt", b"not a photo")),
        ("file", ("blank.png", png())),
        (
            "file",
            photo(TRAIN / "madonna" / sorted(p.name for p in (TRAIN / "madonna").iterdir())[0]),
        ),
    ]
    r = client.post("/api/v1/people/amelia_vega/faces", files=files)
    assert r.status_code == 201, r.text
    report = r.json()
    assert report["photos_seen"] == 6 and report["enrolled"] == 3
    assert report["people"] == {"amelia_vega": 3}
    reasons = {s["path"]: s["reason"] for s in report["skipped"]}
    assert reasons["notes.txt"] == "unreadable" and reasons["blank.png"] == "no_face"
    assert list(reasons.values()).count("duplicate") == 1
    r = client.post("/api/v1/identify", files={"file": photo(AMELIA[3])})
    assert r.json()["faces"][0]["name"] == "amelia_vega"
    # nothing new: 200, not 201
    r = client.post("/api/v1/people/amelia_vega/faces", files={"file": photo(AMELIA[0])})
    assert r.status_code == 200 and r.json()["enrolled"] == 0


def test_enroll_a_face_of_an_identify_result(client):
    r = client.post("/api/v1/identify", files={"file": photo(GROUP / "bbt2.jpg")})
    result = r.json()
    # one stranger; the salt shaker is unnamed too, but as a low-quality detection
    unknown = [f for f in result["faces"] if f["name"] is None and f["quality"] == "ok"]
    assert len(unknown) == 1
    assert sorted(f["quality"] for f in result["faces"] if f["name"] is None) == ["low", "ok"]
    box = ",".join(str(v) for v in unknown[0]["box"])
    form = {"face_from": result["token"], "box": box}
    r = client.post("/api/v1/people/guest/faces", data=form)
    assert r.status_code == 201, r.text
    assert r.json()["person"] == "guest" and r.json()["box"] == unknown[0]["box"]
    one_line_error(client.post("/api/v1/people/guest/faces", data=form), 400, "already enrolled")
    # another face of the same photo is another face
    known = next(f for f in result["faces"] if f["name"] is not None)
    form2 = {"face_from": result["token"], "box": ",".join(map(str, known["box"]))}
    assert client.post("/api/v1/people/other/faces", data=form2).status_code == 201
    r = client.post("/api/v1/identify", files={"file": photo(GROUP / "bbt2.jpg")})
    named = {tuple(f["box"]): f["name"] for f in r.json()["faces"]}
    assert named[tuple(unknown[0]["box"])] == "guest"
    assert named[tuple(known["box"])] == "other"  # its very embedding is now other's


def test_enroll_one_face_of_an_uploaded_photo_by_box(client):
    r = client.post(
        "/api/v1/people/visitor/faces",
        files={"file": photo(GROUP / "bbt2.jpg")},
        data={"box": "[0, 87, 47, 162]"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["box"] == [0.0, 87.0, 47.0, 162.0]


# -- people and faces ----------------------------------------------------------------------------------


def test_people_and_one_person_with_faces_and_thumbnails(client):
    people = client.get("/api/v1/people").json()["people"]
    assert len(people) == 13
    sheldon = next(p for p in people if p["name"] == "sheldon")
    assert sheldon["faces"] == 5
    r = client.get("/api/v1/people/sheldon")
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["person"]["name"] == "sheldon" and len(detail["faces"]) == 5
    face = detail["faces"][0]
    assert face["person"] == "sheldon" and face["source_path"].endswith(".png")
    assert face["score"] > 0.9 and face["added"] and len(face["box"]) == 4
    assert face["has_thumbnail"]
    r = client.get(f"/api/v1/faces/{face['id']}/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(r.content))
    assert thumb.format == "JPEG" and max(thumb.size) <= 256
    if sheldon["face_id"] is not None:
        assert sheldon["face_id"] in {f["id"] for f in detail["faces"]}


def test_rename_and_merge(client):
    r = client.patch("/api/v1/people/howard", json={"name": "Howard Wolowitz"})
    assert r.status_code == 200, r.text
    # howard5.png's only detection (an eye) is below the quality gate: 4 faces enrolled
    assert r.json() == {"old": "howard", "new": "Howard Wolowitz", "merged": False, "faces": 4}
    r = client.patch("/api/v1/people/stuart", json={"name": "Howard Wolowitz"})
    assert r.json()["merged"] is True
    people = {p["name"]: p["faces"] for p in client.get("/api/v1/people").json()["people"]}
    assert people["Howard Wolowitz"] == 9 and "stuart" not in people and "howard" not in people


def test_delete_a_face_then_a_person(client):
    faces = client.get("/api/v1/people/raj").json()["faces"]
    r = client.delete(f"/api/v1/faces/{faces[0]['id']}")
    assert r.status_code == 200 and r.json()["id"] == faces[0]["id"]
    assert client.get("/api/v1/people/raj").json()["person"]["faces"] == 4
    one_line_error(client.delete(f"/api/v1/faces/{faces[0]['id']}"), 404)
    r = client.delete("/api/v1/people/raj")
    assert r.status_code == 200 and r.json() == {"name": "raj", "faces_removed": 4}
    one_line_error(client.get("/api/v1/people/raj"), 404, "raj")
    assert "raj" not in {p["name"] for p in client.get("/api/v1/people").json()["people"]}


def test_an_empty_gallery_is_created_and_lists_no_one(make_client, tmp_path):
    client = make_client(tmp_path / "new-gallery")
    assert client.get("/api/v1/people").json() == {"people": []}
    r = client.post("/api/v1/identify", files={"file": photo(AMELIA[0])})
    assert r.status_code == 200 and r.json()["faces"][0]["nearest"] is None
    info = client.get("/api/v1/info").json()
    assert info["people"] == 0 and info["server"]["access"] == "read-write"


def test_health_readiness_info_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code in (200, 503)
    info = client.get("/api/v1/info").json()
    assert info["people"] == 13 and info["threshold"] > 0 and "threshold_source" in info
    schema = client.get("/openapi.json").json()
    for path in (
        "/api/v1/identify",
        "/api/v1/verify",
        "/api/v1/people",
        "/api/v1/people/{name}",
        "/api/v1/people/{name}/faces",
        "/api/v1/faces/{face_id}",
        "/api/v1/faces/{face_id}/thumbnail",
        "/api/v1/info",
    ):
        assert path in schema["paths"], path
    page = client.get("/")
    assert page.status_code == 200 and "<title>facesearch</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


# -- every bad input: a status and one line ---------------------------------------------------------

TRUNCATED = (GROUP / "bbt2.jpg").read_bytes()[:3000]
BAD_INPUTS = [
    # (method, url, request kwargs, status, part of the message)
    ("post", "/api/v1/identify", {}, 400, "no image sent"),
    ("post", "/api/v1/identify", {"content": b"hello"}, 422, "not an image"),
    ("post", "/api/v1/identify", {"files": {"file": ("x.jpg", TRUNCATED)}}, 422, "truncated"),
    ("post", "/api/v1/identify", {"files": {"file": ("bomb.png", bomb())}}, 422, "too large"),
    (
        "post",
        "/api/v1/identify",
        {"files": [("file", ("a.png", png())), ("file", ("b.png", png()))]},
        400,
        "expected one image",
    ),
    ("post", "/api/v1/identify", {"data": {"file": "text"}}, 400, "must be a file upload"),
    (
        "post",
        "/api/v1/identify",
        {
            "content": b"--x\r\nbroken",
            "headers": {"content-type": "multipart/form-data; boundary=x"},
        },
        400,
        "",
    ),
    ("post", "/api/v1/identify?threshold=3", {"content": png()}, 400, "threshold"),
    ("post", "/api/v1/identify?top_k=0", {"content": png()}, 400, "top_k"),
    ("post", "/api/v1/identify?refine=magic", {"content": png()}, 400, "refine"),
    ("post", "/api/v1/verify", {"files": {"file": ("a.png", png())}}, 400, "expected 2 images"),
    (
        "post",
        "/api/v1/verify",
        {"files": [("file", ("a.png", png())), ("file", ("b.png", png()))]},
        400,
        "no face detected",
    ),
    (
        "post",
        "/api/v1/people/a%5Cb/faces",
        {"files": {"file": ("a.png", png())}},
        400,
        "path separator",
    ),
    ("post", "/api/v1/people/..x/faces", {"files": {"file": ("a.png", png())}}, 400, "not allowed"),
    (
        "post",
        "/api/v1/people/x%E2%80%8By/faces",
        {"files": {"file": ("a.png", png())}},
        400,
        "invisible",
    ),
    ("post", "/api/v1/people/someone/faces", {}, 400, "no photos sent"),
    (
        "post",
        "/api/v1/people/someone/faces",
        {"data": {"face_from": "nope", "box": "1,2,3,4"}},
        400,
        "expired",
    ),
    (
        "post",
        "/api/v1/people/someone/faces",
        {"files": {"file": ("a.png", png())}, "data": {"box": "1,2,3"}},
        400,
        "four numbers",
    ),
    (
        "post",
        "/api/v1/people/someone/faces",
        {"files": {"file": ("a.png", png())}, "data": {"box": "100,100,120,120"}},
        400,
        "not a face box",
    ),
    (
        "post",
        "/api/v1/people/someone/faces",
        {
            "files": [("file", ("a.png", png())), ("file", ("b.png", png()))],
            "data": {"box": "1,2,3,4"},
        },
        400,
        "exactly one file",
    ),
    ("get", "/api/v1/people/nobody", {}, 404, "nobody"),
    ("delete", "/api/v1/people/nobody", {}, 404, "nobody"),
    ("patch", "/api/v1/people/nobody", {"json": {"name": "x"}}, 404, "nobody"),
    ("patch", "/api/v1/people/amy", {"json": {"name": "a/b"}}, 400, "path separator"),
    ("patch", "/api/v1/people/amy", {"json": {}}, 400, "name"),
    ("delete", "/api/v1/faces/999999", {}, 404, "999999"),
    ("delete", "/api/v1/faces/-1", {}, 400, "face_id"),
    ("get", "/api/v1/faces/999999/thumbnail", {}, 404, "999999"),
    ("get", "/api/v1/nothing-here", {}, 404, "not found"),
]


@pytest.mark.parametrize(("method", "url", "kwargs", "status", "fragment"), BAD_INPUTS)
def test_bad_input_is_a_status_and_one_line(client, method, url, kwargs, status, fragment):
    one_line_error(client.request(method.upper(), url, **kwargs), status, fragment)


def test_upload_over_the_limit_is_413(make_client, enrolled_copy):
    client = make_client(enrolled_copy, max_upload_bytes=64 * 1024)
    big = (AMELIA[0].read_bytes() * 20)[: 200 * 1024]
    one_line_error(client.post("/api/v1/identify", content=big), 413, "upload limit")
    r = client.post("/api/v1/people/x/faces", files={"file": ("big.jpg", big)})
    one_line_error(r, 413, "upload limit")
    # a photo under the limit still works
    assert client.post("/api/v1/identify", files={"file": photo(AMELIA[0])}).status_code == 200
