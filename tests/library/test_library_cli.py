"""The library's commands (clusters, name, assign, unassign, confirm, merge, split, find,
photos-of) and the contact sheet, on a synthetic scanned gallery: no model is loaded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from facesearch.crops import face_thumbnail
from facesearch.embedding import FaceEmbedder
from facesearch.gallery import open_gallery
from facesearch.types import FaceRecord, ScannedPhoto
from fakes import one_line_error, run

PEOPLE = 3  # unknown people in the photos, 5 photos each, one face per photo; plus one stranger


@pytest.fixture
def scanned(tmp_path):
    """A gallery as a scan of 16 photos (on disk, for photos-of) leaves it; returns
    (gallery, {face id: person index, -1 for the stranger}, photo folder)."""
    emb = FaceEmbedder(allow_download=False)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((PEOPLE + 1, emb.dim))
    photos, who = [], []
    (tmp_path / "photos").mkdir()
    for k in range(PEOPLE * 5 + 1):
        person = k // 5 if k < PEOPLE * 5 else PEOPLE
        v = centres[person] + 0.3 * rng.standard_normal(emb.dim)
        v = (v / np.linalg.norm(v)).astype(np.float32)
        path = tmp_path / "photos" / f"p{k:02d}.jpg"
        img = Image.new("RGB", (120, 120), (40 * person % 255, 90, 160))
        img.save(path)
        face = FaceRecord(
            None,
            str(path),
            f"sha{k}",
            (10, 10, 90, 100),
            0.99,
            v,
            face_thumbnail(img, (10, 10, 90, 100)),
        )
        photos.append(ScannedPhoto(str(path), f"sha{k}", 1000, 1.0, (face,)))
        who.append(person if person < PEOPLE else -1)
    with open_gallery(tmp_path / "g", emb.model_id, emb.dim, writable=True) as g:
        ids = g.add_photos(photos)
    return tmp_path / "g", dict(zip(ids, who)), tmp_path / "photos"


def clusters(capsys, g, *extra):
    code, out, err = run(capsys, "--gallery", g, "clusters", "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_clusters_json_contract_and_sheet(capsys, scanned, tmp_path):
    g, who, _ = scanned
    doc = clusters(capsys, g, "--sheet", tmp_path / "sheet.png")
    assert set(doc) == {"clusters", "unclustered"} and doc["unclustered"] == 1
    assert len(doc["clusters"]) == PEOPLE
    for c in doc["clusters"]:
        assert {"id", "size", "faces", "representative"} <= set(c)
        assert c["size"] == len(c["faces"]) == 5
        assert len({who[f["id"]] for f in c["faces"]}) == 1
        assert c["representative"] in {f["id"] for f in c["faces"]}
        f = c["faces"][0]
        assert set(f) == {"id", "image", "box"} and f["box"] == [10.0, 10.0, 90.0, 100.0]
        assert f["image"].endswith(".jpg")
    assert clusters(capsys, g) == doc  # stable
    assert clusters(capsys, g, "--recluster") == doc
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.format == "PNG" and sheet.height > PEOPLE * 72
    code, out, err = run(capsys, "--gallery", g, "clusters", "--min-faces", "6")
    assert code == 0 and out == "" and "0 cluster(s)" in err and "16 face(s) unclustered" in err


def test_name_unassign_assign_merge_find_photos_of(capsys, scanned, tmp_path):
    g, who, photos = scanned
    doc = clusters(capsys, g)
    first, second = doc["clusters"][0], doc["clusters"][1]
    code, out, err = run(capsys, "--gallery", g, "name", first["id"], "Ann")
    assert code == 0 and out.startswith(f"Cluster {first['id']}: 5 face(s) are now 'Ann'"), err
    ejected = first["faces"][0]["id"]
    code, out, _ = run(capsys, "--gallery", g, "unassign", ejected)
    assert code == 0 and "will not be suggested to them again" in out
    code, out, _ = run(capsys, "--gallery", g, "find", "Ann", "--json")
    found = json.loads(out)
    assert found["person"] == "Ann" and len(found["photos"]) == 4
    assert ejected not in {p["face"] for p in found["photos"]}
    code, out, _ = run(capsys, "--gallery", g, "name", second["id"], "Bo")
    code, out, _ = run(capsys, "--gallery", g, "assign", ejected, "Bo")
    assert code == 0 and out.strip() == "1 face(s) given to 'Bo'"
    code, out, _ = run(capsys, "--gallery", g, "merge", "Bo", "Ann")
    assert code == 0 and "'Bo' merged into 'Ann': 6 face(s) moved" in out
    code, out, _ = run(capsys, "--gallery", g, "people", "--json")
    assert json.loads(out)["people"][0]["faces"] == 10
    code, out, err = run(capsys, "--gallery", g, "photos-of", "Ann", "--link", tmp_path / "ann")
    assert code == 0 and "10 photo(s) of 'Ann' linked" in out, err
    links = sorted((tmp_path / "ann").iterdir())
    assert len(links) == 10 and all(p.is_symlink() and p.resolve().parent == photos for p in links)
    code, out, _ = run(capsys, "--gallery", g, "photos-of", "Ann", "--copy", tmp_path / "ann")
    assert code == 0 and len(list((tmp_path / "ann").iterdir())) == 20  # nothing overwritten


def test_split_and_confirm(capsys, scanned):
    g, who, _ = scanned
    doc = clusters(capsys, g)
    one = doc["clusters"][0]["id"]
    code, out, _ = run(capsys, "--gallery", g, "split", one)
    assert (
        code == 0 and out.strip() == f"Cluster {one} did not split (its faces are close together)"
    )
    code, out, _ = run(capsys, "--gallery", g, "split", one, "--average-distance", "0.01")
    assert code == 0 and "fell apart" in out
    after = clusters(capsys, g)
    assert one not in {c["id"] for c in after["clusters"]} and after["unclustered"] == 6
    two = doc["clusters"][1]
    code, _, _ = run(capsys, "--gallery", g, "name", two["id"], "Cy")
    code, out, _ = run(capsys, "--gallery", g, "confirm", "Cy")
    assert code == 0 and out.strip() == "0 suggested face(s) are now 'Cy''s"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["name", "999", "Ann"], "no cluster with id 999"),
        (["name", "1", "a/b"], "path separator"),
        (["unassign", "999"], "no face with id 999"),
        (["merge", "Ann", "Bo"], "no person named 'Ann'"),
        (["split", "999"], "no cluster with id 999"),
        (["find", "nobody"], "no person named 'nobody'"),
        (["confirm", "nobody"], "no person named 'nobody'"),
        (["clusters", "--min-faces", "0"], "at least 1"),
        (["scan", "/no/such/folder"], "no such folder"),
    ],
)
def test_library_errors_are_one_line_and_change_nothing(capsys, scanned, argv, message):
    g, who, _ = scanned
    clusters(capsys, g)
    code, _, err = run(capsys, "--gallery", g, *argv)
    assert code == 1 and message in one_line_error(err)
    code, out, _ = run(capsys, "--gallery", g, "faces", "--unassigned", "--json")
    assert [f["id"] for f in json.loads(out)["faces"]] == sorted(who)
