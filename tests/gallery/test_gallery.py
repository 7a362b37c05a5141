"""Gallery storage with synthetic embeddings: consistency, repair, removal, refusals."""

import json
import os
import shutil
import sqlite3
import stat
from dataclasses import replace

import numpy as np
import pytest

from facesearch.errors import GalleryError, ModelMismatchError, PersonNotFoundError
from facesearch.gallery import DB_NAME, INDEX_META_NAME, INDEX_NAME, Gallery
from facesearch.threshold import Threshold
from fakes import DIM, GALLERY_V1, GALLERY_V2, MODEL, records, unit, v1_records, v2_records


@pytest.fixture
def filled(tmp_path):
    rng = np.random.default_rng(0)
    recs = records(rng, "ann", 5) + records(rng, "bob", 7)
    with Gallery(tmp_path / "g", MODEL, DIM, writable=True) as g:
        ids = g.add(recs)
    return tmp_path / "g", recs, ids


def open_ro(path):
    return Gallery(path, MODEL, DIM)


def test_search_finds_each_face_owner(filled):
    path, recs, ids = filled
    with open_ro(path) as g:
        hits = g.search(np.stack([r.embedding for r in recs]), k_people=2)
    assert [h[0].name for h in hits] == [r.person for r in recs]
    assert [h[0].face_id for h in hits] == ids
    assert all(h[0].distance < 1e-4 and h[1].name != h[0].name for h in hits)


def test_search_scores_a_person_by_closest_face_or_template(filled):
    path, recs, _ = filled
    faces = {n: np.stack([r.embedding for r in recs if r.person == n]) for n in ("ann", "bob")}
    templates = {n: f.mean(0) / np.linalg.norm(f.mean(0)) for n, f in faces.items()}
    queries = np.r_[unit(np.random.default_rng(5), 20), templates["ann"][None]]
    with open_ro(path) as g:
        hits = g.search(queries, k_people=2)
    for q, h in zip(queries, hits):
        for c in h:
            expected = min(1 - np.max(faces[c.name] @ q), 1 - templates[c.name] @ q)
            assert c.distance == pytest.approx(expected, abs=1e-5)
        assert [c.distance for c in h] == sorted(c.distance for c in h)
    assert hits[-1][0].name == "ann" and hits[-1][0].distance == pytest.approx(0, abs=1e-5)


def test_search_with_one_face_per_person_is_that_face(tmp_path):
    rng = np.random.default_rng(1)
    recs = records(rng, "ann", 1) + records(rng, "bob", 1) + records(rng, "cy", 1)
    with Gallery(tmp_path / "g", MODEL, DIM, writable=True) as g:
        g.add(recs)
        hits = g.search(np.stack([r.embedding for r in recs]), k_people=3)
    for r, h in zip(recs, hits):
        assert h[0].name == r.person and h[0].distance == pytest.approx(0.0, abs=1e-5)
        assert [c.distance for c in h] == sorted(c.distance for c in h)


def test_remove_really_removes(filled):
    path, recs, _ = filled
    with Gallery(path, MODEL, DIM, writable=True) as g:
        assert g.remove_person("ann") == 5
        with pytest.raises(PersonNotFoundError):
            g.remove_person("ann")
    with open_ro(path) as g:
        assert [p.name for p in g.people()] == ["bob"]
        assert len(g.index) == 7
        hits = g.search(np.stack([r.embedding for r in recs[:5]]), k_people=5)
        assert all(c.name == "bob" for h in hits for c in h)


def test_index_save_load_round_trip(filled):
    path, recs, ids = filled
    with open_ro(path) as g:
        assert sorted(g.index.labels().tolist()) == sorted(ids)
        labels, dists = g.index.search(recs[3].embedding, 1)
    assert labels[0, 0] == ids[3] and dists[0, 0] < 1e-4


@pytest.mark.parametrize("damage", ["missing", "corrupt", "stale-meta"])
def test_index_is_rebuilt_when_missing_corrupt_or_stale(filled, damage):
    path, recs, ids = filled
    if damage == "missing":
        (path / INDEX_NAME).unlink()
    elif damage == "corrupt":
        (path / INDEX_NAME).write_bytes(b"\x00garbage" * 100)
    else:
        meta = json.loads((path / INDEX_META_NAME).read_text())
        meta["generation"] -= 1
        (path / INDEX_META_NAME).write_text(json.dumps(meta))
    with open_ro(path) as g:
        assert sorted(g.index.labels().tolist()) == sorted(ids)
        assert g.search(recs[0].embedding[None], 1)[0][0].name == "ann"
    meta = json.loads((path / INDEX_META_NAME).read_text())
    assert meta["count"] == len(ids)  # the repaired index was saved


def test_index_behind_database_after_crash_is_repaired(filled):
    """Faces committed to the database but never saved to the index (a crash before flush)."""
    path, recs, ids = filled
    rng = np.random.default_rng(1)
    extra = records(rng, "cy", 3)
    g = Gallery(path, MODEL, DIM, writable=True)
    new_ids = g.add(extra)
    g.store.close()
    g._release_lock()  # simulate the process dying: index never flushed
    with open_ro(path) as g2:
        assert sorted(g2.index.labels().tolist()) == sorted(ids + new_ids)
        assert g2.search(extra[1].embedding[None], 1)[0][0].name == "cy"


def test_reindex_rebuilds_from_database(filled):
    path, recs, ids = filled
    with Gallery(path, MODEL, DIM, writable=True) as g:
        assert g.reindex() == len(ids)
    with open_ro(path) as g:
        assert len(g.index) == len(ids)


def test_other_model_is_refused(filled):
    path, _, _ = filled
    with pytest.raises(ModelMismatchError, match="built with test-model"):
        Gallery(path, "other-model", DIM)
    with pytest.raises(ModelMismatchError):
        Gallery(path, MODEL, DIM * 2, writable=True)


def test_duplicate_hash_is_known(filled):
    path, recs, _ = filled
    with open_ro(path) as g:
        assert g.owner_of_hash(recs[6].image_sha256) == "bob"
        assert g.owner_of_hash("nope") is None


def test_read_only_directory_refuses_writes_but_still_reads(filled):
    path, recs, _ = filled
    before = (path / DB_NAME).read_bytes()
    os.chmod(path, stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(GalleryError, match="read-only"):
            Gallery(path, MODEL, DIM, writable=True)
        with open_ro(path) as g:
            assert len(g.people()) == 2
    finally:
        os.chmod(path, stat.S_IRWXU)
    assert (path / DB_NAME).read_bytes() == before


def test_corrupt_database_is_a_clear_error(tmp_path):
    d = tmp_path / "g"
    d.mkdir()
    (d / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GalleryError, match="cannot open gallery database"):
        Gallery(d, MODEL, DIM)


def test_missing_gallery_for_reading(tmp_path):
    with pytest.raises(GalleryError, match="enroll people first"):
        Gallery(tmp_path / "none", MODEL, DIM)


def test_second_writer_is_refused(filled):
    path, _, _ = filled
    with Gallery(path, MODEL, DIM, writable=True):
        with pytest.raises(GalleryError, match="another facesearch process"):
            Gallery(path, MODEL, DIM, writable=True)


def test_failed_batch_leaves_nothing_half_written(filled):
    path, recs, ids = filled
    rng = np.random.default_rng(2)
    clash = records(rng, "dee", 2) + [recs[0]]  # last one repeats an enrolled photo hash
    with Gallery(path, MODEL, DIM, writable=True) as g:
        with pytest.raises(GalleryError, match="already stored; nothing was written"):
            g.add(clash)
    with open_ro(path) as g:
        assert [p.name for p in g.people()] == ["ann", "bob"]
        assert len(g.index) == len(ids)


def test_threshold_setting(filled):
    path, _, _ = filled
    with Gallery(path, MODEL, DIM, writable=True) as g:
        assert g.threshold().source.startswith("default")
        g.set_threshold(0.25, "calibrated on my photos")
    with open_ro(path) as g:
        assert g.threshold() == Threshold(0.25, "calibrated on my photos", "calibrated")


def test_templates_follow_added_and_removed_faces(filled):
    path, recs, _ = filled
    rng = np.random.default_rng(7)
    ann = np.stack([r.embedding for r in recs if r.person == "ann"])
    q = (ann.mean(0) / np.linalg.norm(ann.mean(0)))[None]  # ann's template
    with Gallery(path, MODEL, DIM, writable=True) as g:
        before = g.search(q, k_people=1)[0][0]
        assert before.name == "ann" and before.distance == pytest.approx(0, abs=1e-5)
        g.add(records(rng, "ann", 3, tag="more"))  # the template moves away from q
        after = g.search(q, k_people=1)[0][0]
        assert after.name == "ann" and after.distance > 0.05
        g.remove_person("ann")
        assert g.search(q, k_people=2)[0][0].name == "bob"


# -- a schema-1 gallery (tests/data/gallery_v1, made by the release before schema 2) -------------


@pytest.fixture
def v1_gallery(tmp_path):
    dst = tmp_path / "v1"
    shutil.copytree(GALLERY_V1 / "gallery", dst)
    return dst, v1_records()


def schema(path):
    db = sqlite3.connect(path / DB_NAME)
    try:
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        columns = {r[1]: r[3] for r in db.execute("PRAGMA table_info(faces)")}  # name: notnull
        return int(version), columns
    finally:
        db.close()


def check_v1_content(g, recs):
    assert {p.name: p.faces for p in g.people()} == {"ann": 3, "bob": 2, "Zoë": 1}
    assert (g.count_faces(), g.count_unassigned()) == (6, 0)
    hits = g.search(np.stack([r.embedding for r in recs]), k_people=2)
    assert [h[0].name for h in hits] == [r.person for r in recs]
    assert [h[0].face_id for h in hits] == [1, 2, 3, 4, 5, 6]
    assert all(h[0].distance < 1e-4 for h in hits)
    assert g.threshold() == Threshold(0.3, "calibrated for the fixture", "calibrated")
    faces = g.faces()
    assert [(f.id, f.person, f.source_path) for f in faces] == [
        (i, r.person, r.source_path) for i, r in enumerate(recs, 1)
    ]
    assert [f.box for f in faces] == [r.box for r in recs]


def test_v1_gallery_reads_as_it_is(v1_gallery, caplog):
    path, recs = v1_gallery
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    with open_ro(path) as g:
        check_v1_content(g, recs)
        assert not any(f.has_thumbnail for f in g.faces()) and g.thumbnail(1) is None
        exported = [r for chunk in g.export_faces() for r in chunk]
        assert [r.thumbnail for r in exported] == [None] * 6
        assert all(np.array_equal(a.embedding, b.embedding) for a, b in zip(exported, recs))
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before  # nothing written
    assert schema(path)[0] == 1 and "rebuild" not in caplog.text


def test_v1_gallery_is_upgraded_by_a_write(v1_gallery, caplog):
    path, recs = v1_gallery
    version, columns = schema(path)
    assert version == 1 and columns["person_id"] == 1 and "thumbnail" not in columns
    with Gallery(path, MODEL, DIM, writable=True) as g:  # opening for writing upgrades
        check_v1_content(g, recs)
        new = g.add(records(np.random.default_rng(0), None, 1, thumbnail=b"jpg"))
        new += g.add(records(np.random.default_rng(1), "bob", 1))
        assert g.thumbnail(new[0]).startswith(b"jpg") and g.faces(unassigned=True)[0].id == new[0]
    version, columns = schema(path)
    assert version == 3 and columns["person_id"] == 0 and "thumbnail" in columns
    assert new == [9, 10]  # labels 7 and 8 belonged to a removed person: never reused
    assert "rebuild" not in caplog.text and "repairing" not in caplog.text  # the index stayed
    with open_ro(path) as g:
        assert (g.count_people(), g.count_faces(), g.count_unassigned()) == (3, 8, 1)
        hits = g.search(np.stack([r.embedding for r in recs]), k_people=1)
        assert [h[0].name for h in hits] == [r.person for r in recs]


def test_failed_upgrade_leaves_the_v1_gallery_as_it_was(v1_gallery, monkeypatch):
    from facesearch.gallery import store

    path, recs = v1_gallery
    db_before = (path / DB_NAME).read_bytes()
    monkeypatch.setattr(store, "_V1_FACE_COLUMNS", "id, no_such_column")
    with pytest.raises(GalleryError, match="cannot open gallery database"):
        Gallery(path, MODEL, DIM, writable=True)
    assert (path / DB_NAME).read_bytes() == db_before
    monkeypatch.undo()
    with open_ro(path) as g:
        check_v1_content(g, recs)
    with Gallery(path, MODEL, DIM, writable=True) as g:
        check_v1_content(g, recs)
    assert schema(path)[0] == 3


# -- a schema-2 gallery (tests/data/gallery_v2, made by the release before the photo library) ----


@pytest.fixture
def v2_gallery(tmp_path):
    dst = tmp_path / "v2"
    shutil.copytree(GALLERY_V2 / "gallery", dst)
    return dst, v2_records()


def check_v2_content(g, recs):
    assert {p.name: p.faces for p in g.people()} == {"ann": 3, "bob": 2}
    assert (g.count_faces(), g.count_unassigned()) == (7, 2)
    people = [r for r in recs if r.person]
    hits = g.search(np.stack([r.embedding for r in people]), k_people=2)
    assert [h[0].name for h in hits] == [r.person for r in people]
    assert [h[0].face_id for h in hits] == [1, 2, 3, 4, 5]
    assert g.threshold() == Threshold(0.3, "calibrated for the fixture", "calibrated")
    faces = g.faces()
    assert [(f.id, f.person, f.source_path, f.box) for f in faces] == [
        (i, r.person, r.source_path, r.box) for i, r in enumerate(recs, 1)
    ]
    assert [g.thumbnail(f.id) for f in faces] == [r.thumbnail for r in recs]
    assert {f.kind for f in faces} == {"enrolled"} and {f.cluster for f in faces} == {None}


def test_v2_gallery_reads_as_it_is(v2_gallery):
    path, recs = v2_gallery
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    with open_ro(path) as g:
        check_v2_content(g, recs)
        assert g.photos() == [] and g.count_photos() == 0 and len(g.loose_faces()) == 0
        assert g.faces(cluster=1) == [] and g.rejections([6]) == {}
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before  # nothing written
    assert schema(path)[0] == 2


def test_v2_gallery_is_upgraded_by_a_write(v2_gallery, caplog):
    from facesearch.types import ScannedPhoto

    path, recs = v2_gallery
    with Gallery(path, MODEL, DIM, writable=True) as g:
        check_v2_content(g, recs)
        assert g.loose_faces().ids.tolist() == [6, 7]
        loose = [replace(r, source_path="/p/x.jpg", image_sha256="x") for r in recs[:2]]
        ids = g.add_photos([ScannedPhoto("/p/x.jpg", "x", 1, 1.0, tuple(loose))])
        assert ids == [9, 10]  # label 8 belonged to a removed person: never reused
        with pytest.raises(GalleryError, match="nothing was written"):
            g.add([recs[0]])  # enroll's dedupe: one enrolled subject per photo
    version, columns = schema(path)
    assert version == 3 and {"photo_id", "kind", "suggested_person_id", "cluster_id"} <= set(
        columns
    )
    assert "rebuild" not in caplog.text and "repairing" not in caplog.text  # the index stayed
    with open_ro(path) as g:
        assert (g.count_faces(), g.count_unassigned(), g.count_photos()) == (9, 4, 1)
        assert [f.id for f in g.faces(unassigned=True)] == [6, 7, 9, 10]


def test_failed_upgrade_leaves_the_v2_gallery_as_it_was(v2_gallery, monkeypatch):
    from facesearch.gallery import store

    path, recs = v2_gallery
    db_before = (path / DB_NAME).read_bytes()
    monkeypatch.setattr(store, "_V3_EXTRAS", store._V3_EXTRAS + ";SELECT no_such_function()")
    with pytest.raises(GalleryError, match="cannot open gallery database"):
        Gallery(path, MODEL, DIM, writable=True)
    assert (path / DB_NAME).read_bytes() == db_before
    monkeypatch.undo()
    with Gallery(path, MODEL, DIM, writable=True) as g:
        check_v2_content(g, recs)
    assert schema(path)[0] == 3
