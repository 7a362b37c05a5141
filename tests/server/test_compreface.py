"""The CompreFace-compatible endpoints on real photos: the request/response examples of
CompreFace's REST documentation (docs/Rest-API-description.md in exadel-inc/CompreFace) replayed
with their multipart fields, headers and query parameters, and the request Double Take's
CompreFace detector sends, parsed as Double Take parses it.

One app (with a read-write and a read-only key) over a copy of the enrolled gallery serves the
module; tests that change it put back what they changed, and the two that need a gallery of
their own (delete every subject, the server-wide known-only setting) get one.
"""

from __future__ import annotations

import base64
import re
import shutil

import pytest

from conftest import REPO

from .conftest import BBT, GROUP, LFW, VAL, photo

API = "/api/v1/recognition"
RW = "rw-key-compreface-0123456789"
RO = "ro-key-compreface-0123456789"
STRANGER = sorted((LFW / "Amelia_Vega").iterdir())  # in lfw_dev, not enrolled


@pytest.fixture(scope="module")
def server(enrolled, tmp_path_factory, detector, embedder):
    """(client, FaceSearch reading the same gallery) for the whole module."""
    from fastapi.testclient import TestClient

    from facesearch import FaceSearch
    from facesearch.server import Settings, create_app

    gallery = tmp_path_factory.mktemp("compreface") / "gallery"
    shutil.copytree(enrolled[0], gallery)
    fs = FaceSearch(gallery, detector=detector, embedder=embedder)
    settings = Settings(api_keys={RW: "read-write", RO: "read-only"})
    with TestClient(create_app(fs, settings), base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def client(server):
    server.headers.clear()
    server.headers["x-api-key"] = RW
    return server


def compreface_error(response, status: int, code: int | None = None, fragment: str = "") -> str:
    """``status`` with ``{"error", "message", "code"}``: one line (the same in both keys)."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error", "message", "code"}, body
    assert body["error"] == body["message"] and isinstance(body["code"], int)
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    assert fragment.lower() in body["error"].lower(), body
    if code is not None:
        assert body["code"] == code, body
    return body["error"]


def identify(client, path) -> dict:
    r = client.post("/api/v1/identify", files={"file": photo(path)})
    assert r.status_code == 200, r.text
    return r.json()


# -- recognize -------------------------------------------------------------------------------------


def test_recognize_as_documented(client):
    """The doc's recognize request: multipart file, x-api-key, every query parameter."""
    params = "limit=0&prediction_count=2&det_prob_threshold=0.8&face_plugins=&status=true"
    r = client.post(f"{API}/recognize?{params}", files={"file": photo(VAL / "madonna" / "1.jpg")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"result", "plugins_versions"}
    assert set(body["plugins_versions"]) == {"detector", "calculator"}
    (face,) = body["result"]
    assert set(face) == {"box", "subjects", "execution_time"}
    box = face["box"]
    assert set(box) == {"probability", "x_min", "y_min", "x_max", "y_max"}
    assert all(isinstance(box[k], int) for k in ("x_min", "y_min", "x_max", "y_max"))
    assert 0.8 <= box["probability"] <= 1.0 and box["x_min"] < box["x_max"]
    assert [set(s) for s in face["subjects"]] == [{"subject", "similarity"}] * 2
    first, second = face["subjects"]
    assert first["subject"] == "madonna" and 0 < second["similarity"] < first["similarity"] <= 1
    # the similarity is identify's (1 - distance), to CompreFace's five decimals
    named = identify(client, VAL / "madonna" / "1.jpg")["faces"][0]
    assert first["similarity"] == pytest.approx(named["similarity"], abs=1e-4)
    # without status: no execution_time, no plugins_versions; one subject by default
    r = client.post(f"{API}/recognize", files={"file": photo(VAL / "elton_john" / "1.jpg")})
    assert list(r.json()) == ["result"] and list(r.json()["result"][0]) == ["box", "subjects"]
    assert [s["subject"] for s in r.json()["result"][0]["subjects"]] == ["elton_john"]


def test_recognize_base64_json_body(client):
    data = base64.b64encode((VAL / "mindy_kaling" / "1.jpg").read_bytes()).decode()
    r = client.post(f"{API}/recognize", json={"file": data})
    assert r.status_code == 200, r.text
    assert r.json()["result"][0]["subjects"][0]["subject"] == "mindy_kaling"


def test_recognize_group_photo_limit_and_det_prob_threshold(client):
    r = client.post(
        f"{API}/recognize?prediction_count=3", files={"file": photo(GROUP / "bbt2.jpg")}
    )
    faces = r.json()["result"]
    # the quality gate's salt shaker is left out; largest face first
    ok = [f for f in identify(client, GROUP / "bbt2.jpg")["faces"] if f["quality"] == "ok"]
    assert len(faces) == len(ok) >= 3
    areas = [
        (f["box"]["x_max"] - f["box"]["x_min"]) * (f["box"]["y_max"] - f["box"]["y_min"])
        for f in faces
    ]
    assert areas == sorted(areas, reverse=True)
    assert all(len(f["subjects"]) == 3 for f in faces)
    assert {"sheldon", "leonard"} <= {f["subjects"][0]["subject"] for f in faces}
    # limit: the largest faces only
    r = client.post(f"{API}/recognize?limit=2", files={"file": photo(GROUP / "bbt2.jpg")})
    assert [f["box"] for f in r.json()["result"]] == [f["box"] for f in faces[:2]]
    # det_prob_threshold drops the less certain detections
    scores = sorted(f["box"]["probability"] for f in faces)
    assert scores[0] < scores[-1] - 1e-4, "the group photo's faces all have the same score"
    cut = (scores[0] + scores[-1]) / 2
    r = client.post(
        f"{API}/recognize?det_prob_threshold={cut}", files={"file": photo(GROUP / "bbt2.jpg")}
    )
    assert r.status_code == 200, r.text
    kept = r.json()["result"]
    assert 1 <= len(kept) < len(faces) and all(f["box"]["probability"] >= cut for f in kept)


def test_known_only_gives_a_stranger_no_subjects(client):
    stranger = photo(STRANGER[0])
    r = client.post(f"{API}/recognize", files={"file": stranger})
    # as CompreFace: the nearest subject, however far
    assert len(r.json()["result"][0]["subjects"]) == 1
    r = client.post(f"{API}/recognize?known_only=true&prediction_count=3", files={"file": stranger})
    assert r.json()["result"][0]["subjects"] == []
    # a known face keeps its subject; the others listed are only those within the threshold
    r = client.post(
        f"{API}/recognize?known_only=true&prediction_count=3",
        files={"file": photo(VAL / "jerry_seinfeld" / "1.jpg")},
    )
    subjects = r.json()["result"][0]["subjects"]
    assert subjects[0]["subject"] == "jerry_seinfeld"
    named = identify(client, VAL / "jerry_seinfeld" / "1.jpg")
    accepted = [c for c in named["faces"][0]["candidates"] if c["distance"] <= named["threshold"]]
    assert [s["subject"] for s in subjects] == [c["name"] for c in accepted[:3]]


def test_known_only_server_wide(make_client, enrolled_copy):
    client = make_client(enrolled_copy, api_keys={RW: "read-write"}, compreface_known_only=True)
    client.headers["x-api-key"] = RW
    r = client.post(f"{API}/recognize", files={"file": photo(STRANGER[1])})
    assert r.json()["result"][0]["subjects"] == []
    # a request can still ask for CompreFace's answer
    r = client.post(f"{API}/recognize?known_only=false", files={"file": photo(STRANGER[1])})
    assert len(r.json()["result"][0]["subjects"]) == 1


def test_no_face_is_compreface_code_28(client):
    from .test_api import png

    r = client.post(f"{API}/recognize", files={"file": ("blank.png", png())})
    compreface_error(r, 400, 28, "no face is found")


# -- examples and subjects ---------------------------------------------------------------------------


def test_add_example_then_recognize_list_download_and_delete(client):
    # the doc's add-example request: subject and det_prob_threshold in the query, multipart file
    r = client.post(
        f"{API}/faces?subject=Amelia Vega&det_prob_threshold=0.8",
        files={"file": photo(STRANGER[0])},
    )
    assert r.status_code == 201, r.text
    added = r.json()
    assert set(added) == {"image_id", "subject"} and added["subject"] == "Amelia Vega"
    # base64 JSON, as the doc's Base64 section sends it
    data = base64.b64encode(STRANGER[1].read_bytes()).decode()
    r = client.post(f"{API}/faces?subject=Amelia Vega", json={"file": data})
    assert r.status_code == 201, r.text
    second = r.json()["image_id"]
    try:
        r = client.post(f"{API}/recognize?known_only=true", files={"file": photo(STRANGER[2])})
        assert r.json()["result"][0]["subjects"][0]["subject"] == "Amelia Vega"
        # list examples: the doc's paging
        r = client.get(f"{API}/faces?page=0&size=1&subject=Amelia Vega")
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"faces", "page_number", "page_size", "total_pages", "total_elements"}
        assert page["faces"] == [added] and page["page_number"] == 0 and page["page_size"] == 1
        assert page["total_elements"] == 2 and page["total_pages"] == 2
        every = client.get(f"{API}/faces").json()
        assert every["total_elements"] >= 40 and every["page_size"] == 20
        assert len(every["faces"]) == 20 and {"image_id", "subject"} == set(every["faces"][0])
        # the example's image: the face crop kept at enroll time
        r = client.get(f"{API}/faces/{added['image_id']}/img")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.content[:2] == b"\xff\xd8"
        # delete one example by id; then it is gone
        r = client.delete(f"{API}/faces/{added['image_id']}")
        assert r.status_code == 200 and r.json() == added
        compreface_error(client.delete(f"{API}/faces/{added['image_id']}"), 404, 11)
        compreface_error(client.get(f"{API}/faces/nonsense/img"), 404, 11)
    finally:
        # delete all examples of the subject by name (what Double Take's "remove" sends)
        r = client.delete(f"{API}/faces", params={"subject": "Amelia Vega"})
    assert r.status_code == 200 and r.json() == {"deleted": 1}
    assert "Amelia Vega" not in client.get(f"{API}/subjects").json()["subjects"]
    assert client.delete(f"{API}/faces?subject=Amelia Vega").json() == {"deleted": 0}
    assert second != added["image_id"]


def test_subjects_list_rename_and_delete(client):
    # the doc's list request (trailing slash, a JSON content type on a GET)
    r = client.get(f"{API}/subjects/", headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    subjects = r.json()["subjects"]
    assert {"madonna", "sheldon", "penny"} <= set(subjects) and len(subjects) == 13
    assert client.get(f"{API}/subjects").json() == r.json()
    # rename: PUT with {"subject": new}
    r = client.put(f"{API}/subjects/penny", json={"subject": "Penny"})
    assert r.status_code == 200 and r.json() == {"updated": True}
    r = client.post(f"{API}/recognize", files={"file": photo(sorted((BBT / "penny").iterdir())[0])})
    assert r.json()["result"][0]["subjects"][0]["subject"] == "Penny"
    assert client.put(f"{API}/subjects/Penny", json={"subject": "penny"}).json()["updated"]
    compreface_error(client.put(f"{API}/subjects/nobody", json={"subject": "x"}), 404, 42, "nobody")
    # add a subject without a face: facesearch keeps no such thing; says what to do instead
    compreface_error(
        client.post(f"{API}/subjects", json={"subject": "newcomer"}), 501, 0, "add an example"
    )


def test_delete_a_subject_and_all_subjects(make_client, enrolled_copy):
    client = make_client(enrolled_copy, api_keys={RW: "read-write"})
    client.headers["x-api-key"] = RW
    r = client.delete(f"{API}/subjects/madonna", headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json() == {"subject": "madonna"}
    compreface_error(client.delete(f"{API}/subjects/madonna"), 404, 42)
    r = client.delete(f"{API}/subjects")
    assert r.status_code == 200 and r.json() == {"deleted": 12}
    assert client.get(f"{API}/subjects").json() == {"subjects": []}


# -- bad input -------------------------------------------------------------------------------------


def test_bad_requests_are_one_line_4xx(client):
    recognize = f"{API}/recognize"
    compreface_error(client.post(recognize), 400, 34, "no image sent")
    compreface_error(client.post(recognize, json={"image": "x"}), 400, 34, '"file"')
    compreface_error(client.post(recognize, json={"file": "not base64!"}), 400, 36, "base64")
    compreface_error(client.post(recognize, files={"file": ("notes.txt", b"not a photo")}), 422, 21)
    compreface_error(client.post(f"{recognize}?limit=-1", files={"file": ("a", b"x")}), 400, 26)
    compreface_error(
        client.post(f"{recognize}?det_prob_threshold=high", files={"file": ("a", b"x")}), 400, 26
    )
    one = photo(VAL / "madonna" / "1.jpg")
    compreface_error(client.post(f"{API}/faces", files={"file": one}), 400, 33, "subject")
    compreface_error(
        client.post(f"{API}/faces?subject=../etc", files={"file": one}), 400, 36, "path separator"
    )
    compreface_error(client.delete(f"{API}/faces"), 400, 33, "subjects")
    # keys: none, a wrong one, a read-only one on a write
    client.headers.clear()
    compreface_error(client.post(recognize, files={"file": one}), 401, fragment="api key")
    client.headers["x-api-key"] = "wrong-key-0123456789abcdef"
    compreface_error(client.get(f"{API}/subjects"), 401, fragment="invalid api key")
    client.headers["x-api-key"] = RO
    assert client.get(f"{API}/subjects").status_code == 200
    compreface_error(
        client.post(f"{API}/faces?subject=madonna", files={"file": one}), 403, fragment="read-only"
    )
    compreface_error(client.delete(f"{API}/subjects/madonna"), 403)


# -- Double Take ------------------------------------------------------------------------------------


def double_take_normalize(data: dict, match: dict, unknown: dict) -> list[dict]:
    """Double Take's CompreFace ``normalize`` (api/src/util/detectors/compreface.js) and its
    ``checks``, in Python: name, confidence (similarity x 100, two decimals) and match."""
    if "result" not in data:
        if data.get("code") == 28:
            return []
        raise AssertionError(data.get("message"))
    out = []
    for obj in data["result"]:
        face = obj["subjects"][0] if obj["subjects"] else None
        confidence = round(face["similarity"] * 100, 2) if face else 0
        box = obj["box"]
        area = (box["x_max"] - box["x_min"]) * (box["y_max"] - box["y_min"])
        name = (
            face["subject"].lower() if face and confidence >= unknown["confidence"] else "unknown"
        )
        if name == "unknown" and area < unknown["min_area"]:
            continue
        out.append(
            {
                "name": name,
                "confidence": confidence,
                "match": confidence >= match["confidence"] and area >= match["min_area"],
            }
        )
    return out


def doc_double_take_config() -> str:
    """The ``config.yml`` block of docs/compreface.md's "Point Double Take at facesearch"."""
    text = (REPO / "docs" / "compreface.md").read_text()
    section = text.split("## Point Double Take at facesearch", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def test_double_take_request_and_parsing(client):
    """Exactly what Double Take's detector sends (URL with face_plugins, det_prob_threshold from
    its config, multipart 'file', x-api-key), parsed as Double Take does, with the documented
    confidence: 100 x (1 - the threshold in force)."""
    threshold = client.get("/api/v1/info").json()["threshold"]
    confidence = round(100 * (1 - threshold), 2)
    config = doc_double_take_config()
    assert "det_prob_threshold: 0.8" in config
    assert f"confidence: {confidence}" in config, f"the doc's confidence should be {confidence}"
    assert re.search(r"url: http://\S+:8000", config) and "min_area: 0" in config
    match = {"confidence": confidence, "min_area": 0}
    unknown = {"confidence": confidence, "min_area": 0}

    def double_take(path) -> list[dict]:
        with path.open("rb") as stream:
            r = client.post(
                f"{API}/recognize?face_plugins=undefined",
                params={"det_prob_threshold": 0.8},
                headers={"x-api-key": RW},
                files={"file": (path.name, stream, "image/jpeg")},
            )
        return double_take_normalize(r.json(), match, unknown)

    (madonna,) = double_take(VAL / "madonna" / "2.jpg")
    named = identify(client, VAL / "madonna" / "2.jpg")["faces"][0]
    assert madonna == {
        "name": "madonna",
        "confidence": round(named["similarity"] * 100, 2),
        "match": True,
    }
    (stranger,) = double_take(STRANGER[0])
    assert stranger["name"] == "unknown" and stranger["match"] is False
    # a group photo: Double Take's matches are exactly the faces facesearch names
    group = double_take(GROUP / "bbt2.jpg")
    names = [
        f["name"] for f in identify(client, GROUP / "bbt2.jpg")["faces"] if f["quality"] == "ok"
    ]
    assert sorted(f["name"] for f in group if f["match"]) == sorted(n for n in names if n)
    assert sum(f["name"] == "unknown" for f in group) == names.count(None) == 1
    # what Double Take's "train" and "remove" send
    for path in STRANGER[:2]:
        with path.open("rb") as stream:
            r = client.post(
                f"{API}/faces",
                params={"subject": "amelia"},
                headers={"x-api-key": RW},
                files={"file": (path.name, stream, "image/jpeg")},
            )
        assert r.status_code == 201 and r.json()["subject"] == "amelia"
    try:
        assert double_take(STRANGER[2])[0]["name"] == "amelia"
    finally:
        r = client.delete(f"{API}/faces", params={"subject": "amelia"}, headers={"x-api-key": RW})
    assert r.json() == {"deleted": 2}
    # no face: Double Take's code 28 means "nothing found", not an error
    from .test_api import png

    r = client.post(
        f"{API}/recognize?face_plugins=undefined&det_prob_threshold=0.8",
        files={"file": ("blank.jpg", png(), "image/jpeg")},
    )
    assert double_take_normalize(r.json(), match, unknown) == []
