"""The photo library over HTTP: clusters of a scan, naming one, ejecting a face, a person's photos."""

from __future__ import annotations

from librarygen import build_library

from facesearch import FaceSearch

from .test_api import one_line_error


def test_clusters_name_unassign_and_photos(make_client, tmp_path, detector, embedder):
    who = build_library(tmp_path / "photos", per_person=4, strangers=False)
    gallery = tmp_path / "gallery"
    with FaceSearch(gallery, detector=detector, embedder=embedder) as fs:
        fs.scan(tmp_path / "photos")  # scanning is a command: the server never reads client paths
    client = make_client(gallery)

    got = client.get("/api/v1/clusters").json()
    assert set(got) == {"clusters", "unclustered"} and got["clusters"]
    first = got["clusters"][0]
    assert set(first) == {"id", "size", "representative", "faces"}
    assert set(first["faces"][0]) == {"id", "image", "box"}
    person = who[first["faces"][0]["image"]]
    assert {who[f["image"]] for f in first["faces"]} == {person}
    assert client.get(f"/api/v1/faces/{first['faces'][0]['id']}/thumbnail").status_code == 200

    named = client.post(f"/api/v1/clusters/{first['id']}/name", json={"name": "Someone"}).json()
    assert sorted(named["faces"]) == sorted(f["id"] for f in first["faces"])
    assert [p["name"] for p in client.get("/api/v1/people").json()["people"]] == ["Someone"]
    photos = client.get("/api/v1/people/Someone/photos").json()["photos"]
    assert sorted(p["image"] for p in photos) == sorted(f["image"] for f in first["faces"])

    ejected = first["faces"][-1]["id"]
    out = client.post(f"/api/v1/faces/{ejected}/unassign").json()
    assert out["id"] == ejected and out["person"] == "Someone"
    left = client.get("/api/v1/people/Someone/photos").json()["photos"]
    assert ejected not in {p["face"] for p in left} and len(left) == len(photos) - 1

    one_line_error(client.post("/api/v1/clusters/99999/name", json={"name": "x"}), 404, "cluster")
    one_line_error(client.post(f"/api/v1/clusters/{first['id']}/name", json={"name": ""}), 400)
    one_line_error(client.post("/api/v1/faces/99999/unassign"), 404, "face")
    one_line_error(client.get("/api/v1/people/Nobody/photos"), 404, "Nobody")
