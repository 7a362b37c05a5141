"""``FaceSearch``'s per-face calls (faces, thumbnail, remove_face, rename, assign) and the CLI
commands over them, on synthetic galleries: no model is loaded."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from facesearch import FaceSearch
from facesearch.embedding import FaceEmbedder
from facesearch.errors import FaceNotFoundError, InputError, PersonNotFoundError
from facesearch.gallery import open_gallery
from fakes import DIM, MODEL, one_line_error, records, run


def make_gallery(location, model_id=MODEL, dim=DIM):
    rng = np.random.default_rng(0)
    recs = records(rng, "ann", 2, dim=dim, thumbnail=b"\xff\xd8")
    recs += records(rng, "bob", 3, dim=dim) + records(rng, None, 2, dim=dim)
    with open_gallery(location, model_id, dim, writable=True) as g:
        ids = g.add(recs)
    return recs, ids


@pytest.fixture
def fs(tmp_path):
    """A FaceSearch on a synthetic gallery; its "embedder" only names the model."""
    recs, ids = make_gallery(tmp_path / "g")
    with FaceSearch(
        tmp_path / "g", embedder=SimpleNamespace(model_id=MODEL, dim=DIM, subspace=lambda: None)
    ) as fs:
        yield fs, recs, ids


def best_names(fs, recs):
    return [
        h[0].name if h else None
        for h in fs.search_embeddings(np.stack([r.embedding for r in recs]))
    ]


def test_each_write_is_seen_by_the_next_read(fs):
    fs, recs, ids = fs
    assert best_names(fs, recs[:5]) == ["ann"] * 2 + ["bob"] * 3  # the reader is open now
    assert fs.rename("ann", "Zoë Saldaña").merged is False
    assert best_names(fs, recs[:2]) == ["Zoë Saldaña"] * 2
    assert fs.assign(ids[5:], "cy") == 2
    assert best_names(fs, recs[5:]) == ["cy", "cy"]
    assert fs.remove_face(ids[5]).person == "cy"
    assert all(
        c.face_id != ids[5] for h in fs.search_embeddings(recs[5].embedding[None]) for c in h
    )
    result = fs.rename("cy", "bob")
    assert (result.merged, result.faces) == (True, 1)
    assert best_names(fs, recs[2:5] + recs[6:]) == ["bob"] * 4
    assert [f.id for f in fs.faces("bob")] == [*ids[2:5], ids[6]]
    assert fs.faces(unassigned=True) == []
    assert fs.thumbnail(ids[0]).startswith(b"\xff\xd8") and fs.thumbnail(ids[2]) is None


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda fs, ids: fs.rename("ann", "a/b"), InputError),
        (lambda fs, ids: fs.rename("ann", " "), InputError),
        (lambda fs, ids: fs.rename("nobody", "x"), PersonNotFoundError),
        (lambda fs, ids: fs.assign(ids[5:], "x\u200b"), InputError),
        (lambda fs, ids: fs.assign([ids[5], 999], "cy"), FaceNotFoundError),
        (lambda fs, ids: fs.remove_face(999), FaceNotFoundError),
        (lambda fs, ids: fs.thumbnail(999), FaceNotFoundError),
        (lambda fs, ids: fs.faces("nobody"), PersonNotFoundError),
        (lambda fs, ids: fs.faces("ann", unassigned=True), InputError),
    ],
)
def test_bad_calls_change_nothing(fs, call, error):
    fs, recs, ids = fs
    with pytest.raises(error):
        call(fs, ids)
    assert {p.name: p.faces for p in fs.people()} == {"ann": 2, "bob": 3}
    assert [f.id for f in fs.faces()] == ids


# -- the command line ------------------------------------------------------------------------------


@pytest.fixture
def gallery(tmp_path):
    """A synthetic gallery under the real model's id and size, so the CLI opens it as is."""
    emb = FaceEmbedder(allow_download=False)
    recs, ids = make_gallery(tmp_path / "g", emb.model_id, emb.dim)
    return tmp_path / "g", ids


def test_cli_faces(capsys, gallery):
    g, ids = gallery
    code, out, err = run(capsys, "--gallery", g, "faces", "ann", "--json")
    assert code == 0, err
    faces = json.loads(out)["faces"]
    assert [(f["id"], f["person"], f["has_thumbnail"]) for f in faces] == [
        (ids[0], "ann", True),
        (ids[1], "ann", True),
    ]
    assert faces[0]["source_path"] == "ann/0.jpg" and faces[0]["box"] == [0.0, 0.0, 10.0, 10.0]
    code, out, err = run(capsys, "--gallery", g, "faces", "--unassigned")
    assert code == 0 and [line.split("\t")[:2] for line in out.splitlines()] == [
        [str(ids[5]), "-"],
        [str(ids[6]), "-"],
    ]
    assert "2 face(s) unassigned" in err
    code, out, err = run(capsys, "--gallery", g, "faces")
    assert code == 0 and len(out.splitlines()) == 7 and "7 face(s)" in err


def test_cli_remove_face_and_rename(capsys, gallery):
    g, ids = gallery
    code, out, err = run(capsys, "--gallery", g, "remove-face", ids[0])
    assert code == 0 and out.strip() == f"Removed face {ids[0]} ('ann', ann/0.jpg)", err
    code, out, _ = run(capsys, "--gallery", g, "remove-face", ids[5])
    assert code == 0 and "(unassigned, None/0.jpg)" in out
    code, out, _ = run(capsys, "--gallery", g, "rename", "bob", "Bob Lee")
    assert code == 0 and out.strip() == "Renamed 'bob' to 'Bob Lee' (3 face(s))"
    code, out, _ = run(capsys, "--gallery", g, "rename", "ann", "Bob Lee")
    assert code == 0 and out.strip() == "'ann' merged into 'Bob Lee': 1 face(s) moved"
    code, out, _ = run(capsys, "--gallery", g, "people", "--json")
    assert json.loads(out)["people"][0]["faces"] == 4 and len(json.loads(out)["people"]) == 1
    code, out, _ = run(capsys, "--gallery", g, "remove-face", ids[4])
    for face_id in ids[1:4]:
        code, out, _ = run(capsys, "--gallery", g, "remove-face", face_id)
    assert code == 0 and "last face of 'Bob Lee': they are no longer enrolled" in out
    code, out, _ = run(capsys, "--gallery", g, "people", "--json")
    assert json.loads(out)["people"] == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["faces", "nobody"], "no person named 'nobody'"),
        (["faces", "ann", "--unassigned"], "not both"),
        (["remove-face", "999"], "no face with id 999"),
        (["rename", "ann", "../x"], "path separator"),
        (["rename", "nobody", "x"], "no person named 'nobody'"),
    ],
)
def test_cli_errors_are_one_line_and_change_nothing(capsys, gallery, argv, message):
    g, ids = gallery
    code, _, err = run(capsys, "--gallery", g, *argv)
    assert code == 1 and message in one_line_error(err)
    code, out, _ = run(capsys, "--gallery", g, "faces", "--json")
    assert [f["id"] for f in json.loads(out)["faces"]] == ids
