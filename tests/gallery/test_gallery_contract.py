"""The contract every gallery backend keeps, run against a directory and a PostgreSQL database.

Synthetic unit vectors, no model: fast. PostgreSQL comes from ``pg_url`` (conftest.py).
"""

import threading
from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest

from facesearch.errors import (
    FaceNotFoundError,
    GalleryError,
    InputError,
    ModelMismatchError,
    PersonNotFoundError,
)
from facesearch.gallery import open_gallery
from facesearch.threshold import Threshold, default_threshold
from fakes import DIM, MODEL, records, unit


@pytest.fixture(params=["directory", "postgres"])
def location(request, tmp_path):
    if request.param == "directory":
        return str(tmp_path / "gallery")
    return request.getfixturevalue("pg_url")


def open_(location, writable=False, model=MODEL, dim=DIM):
    return open_gallery(location, model, dim, writable=writable)


@pytest.fixture
def filled(location):
    rng = np.random.default_rng(0)
    recs = records(rng, "ann", 5) + records(rng, "bob", 7)
    with open_(location, writable=True) as g:
        ids = g.add(recs)
    return location, recs, ids


def test_add_search_people_counts(filled):
    location, recs, ids = filled
    with open_(location) as g:
        hits = g.search(np.stack([r.embedding for r in recs]), k_people=2)
        people = g.people()
        assert (g.count_people(), g.count_faces()) == (2, 12)
    assert [h[0].name for h in hits] == [r.person for r in recs]
    assert [h[0].face_id for h in hits] == ids
    assert all(h[0].distance < 1e-4 and h[1].name != h[0].name for h in hits)
    assert [(p.name, p.faces) for p in people] == [("ann", 5), ("bob", 7)]
    assert len(set(ids)) == len(ids)


def test_empty_gallery_finds_nobody(location):
    with open_(location, writable=True) as g:
        assert g.search(unit(np.random.default_rng(0), 2), k_people=3) == [[], []]
        assert g.people() == [] and g.count_faces() == 0


def test_person_is_scored_by_closest_face_or_template(filled):
    location, recs, _ = filled
    faces = {n: np.stack([r.embedding for r in recs if r.person == n]) for n in ("ann", "bob")}
    templates = {n: f.mean(0) / np.linalg.norm(f.mean(0)) for n, f in faces.items()}
    queries = np.r_[unit(np.random.default_rng(5), 20), templates["ann"][None]]
    with open_(location) as g:
        hits = g.search(queries, k_people=2)
    for q, h in zip(queries, hits):
        assert len(h) == 2
        for c in h:
            expected = min(1 - np.max(faces[c.name] @ q), 1 - templates[c.name] @ q)
            assert c.distance == pytest.approx(expected, abs=1e-5)
            assert c.similarity == pytest.approx(1 - c.distance, abs=1e-6)
        assert [c.distance for c in h] == sorted(c.distance for c in h)
    assert hits[-1][0].name == "ann" and hits[-1][0].distance == pytest.approx(0, abs=1e-5)


@pytest.mark.parametrize("refine", ["exact", "gradient"])
def test_refine_keeps_the_owner(filled, refine):
    location, recs, _ = filled
    with open_(location) as g:
        hits = g.search(np.stack([r.embedding for r in recs]), k_people=2, refine=refine, pool=16)
    assert [h[0].name for h in hits] == [r.person for r in recs]


def test_removed_person_is_never_returned(filled):
    location, recs, _ = filled
    queries = np.stack([r.embedding for r in recs[:5]])
    reader = open_(location)  # opened before the removal
    try:
        with open_(location, writable=True) as g:
            assert g.remove_person("ann") == 5
            with pytest.raises(PersonNotFoundError):
                g.remove_person("ann")
            assert all(c.name == "bob" for h in g.search(queries, k_people=5) for c in h)
        assert all(c.name == "bob" for h in reader.search(queries, k_people=5) for c in h)
    finally:
        reader.close()
    with open_(location) as g:
        assert [p.name for p in g.people()] == ["bob"] and g.count_faces() == 7
        assert all(c.name == "bob" for h in g.search(queries, k_people=5) for c in h)


def test_templates_follow_added_and_removed_faces(filled):
    location, recs, _ = filled
    ann = np.stack([r.embedding for r in recs if r.person == "ann"])
    q = (ann.mean(0) / np.linalg.norm(ann.mean(0)))[None]  # ann's template
    with open_(location, writable=True) as g:
        before = g.search(q, k_people=1)[0][0]
        assert before.name == "ann" and before.distance == pytest.approx(0, abs=1e-5)
        g.add(records(np.random.default_rng(7), "ann", 3, tag="more"))
        after = g.search(q, k_people=1)[0][0]
        assert after.name == "ann" and after.distance > 0.05
        g.remove_person("ann")
        assert g.search(q, k_people=2)[0][0].name == "bob"


def test_owner_of_hash(filled):
    location, recs, _ = filled
    with open_(location) as g:
        assert g.owner_of_hash(recs[6].image_sha256) == "bob"
        assert g.owner_of_hash("nope") is None


def test_threshold_default_calibrated_explicit(filled):
    location, _, _ = filled
    with open_(location, writable=True) as g:
        assert g.threshold() == default_threshold(2, faces=12)
        assert g.threshold(0.2) == Threshold(0.2, "given by caller", "user")
        g.set_threshold(0.25, "calibrated on my photos")
    with open_(location) as g:
        assert g.threshold() == Threshold(0.25, "calibrated on my photos", "calibrated")
        assert g.threshold(0.3).value == 0.3
    with open_(location, writable=True) as g:
        g.set_threshold(None, "")
        assert g.threshold() == default_threshold(2, faces=12)
        g.add(records(np.random.default_rng(3), "cy", 1))
        assert g.threshold() == default_threshold(3, faces=13)  # follows the gallery


def test_changed_since_open_is_seen_by_another_reader(filled):
    location, _, _ = filled
    with open_(location) as reader:
        assert not reader.changed_since_open()
        with open_(location, writable=True) as g:
            g.add(records(np.random.default_rng(4), "cy", 2))
        assert reader.changed_since_open()
    with open_(location) as reader:
        assert not reader.changed_since_open()
        with open_(location, writable=True) as g:
            g.remove_person("cy")
        assert reader.changed_since_open()


def _open_writer(location, attempts=400):
    """A directory allows one writer at a time (GalleryError to the others); wait for it."""
    import time

    for _ in range(attempts):
        try:
            return open_(location, writable=True)
        except GalleryError as err:
            if "another facesearch process" not in str(err):
                raise
            time.sleep(0.01)
    raise AssertionError("writer never got the gallery")


def test_concurrent_writers_lose_nothing(location):
    with open_(location, writable=True):
        pass  # created once, so that both writers find a gallery
    errors: list[BaseException] = []
    per_writer, batches = 3, 4

    def writer(w):
        try:
            rng = np.random.default_rng(100 + w)
            for b in range(batches):
                with _open_writer(location) as g:
                    # both writers add to "shared" in every batch, and to their own person
                    g.add(records(rng, "shared", per_writer, tag=f"w{w}b{b}"))
                    g.add(records(rng, f"own{w}", per_writer, tag=f"b{b}"))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with open_(location) as g:
        counts = {p.name: p.faces for p in g.people()}
        assert counts == {"shared": 2 * per_writer * batches, "own0": 12, "own1": 12}
        assert g.count_faces() == 4 * per_writer * batches


def test_failed_batch_leaves_nothing_half_written(filled):
    location, recs, ids = filled
    clash = records(np.random.default_rng(2), "dee", 2) + [recs[0]]  # repeats an enrolled photo
    with open_(location, writable=True) as g:
        with pytest.raises(GalleryError, match="nothing was written"):
            g.add(clash)
        assert g.add(records(np.random.default_rng(3), "eve", 1))  # still usable
    with open_(location) as g:
        assert [p.name for p in g.people()] == ["ann", "bob", "eve"]
        assert g.count_faces() == len(ids) + 1
        assert g.owner_of_hash(clash[0].image_sha256) is None


def test_other_model_is_refused(filled):
    location, _, _ = filled
    with pytest.raises(ModelMismatchError, match="built with test-model"):
        open_(location, model="other-model")
    with pytest.raises(ModelMismatchError):
        open_(location, writable=True, dim=DIM * 2)


def test_reading_a_missing_gallery_says_enroll_first(location):
    with pytest.raises(GalleryError, match="enroll people first"):
        open_(location)


def test_read_only_refuses_writes(filled):
    location, recs, _ = filled
    with open_(location) as g:
        with pytest.raises(GalleryError, match="read-only"):
            g.add(records(np.random.default_rng(9), "zed", 1))
        with pytest.raises(GalleryError, match="read-only"):
            g.remove_person("ann")
        with pytest.raises(GalleryError, match="read-only"):
            g.remove_face(1)
        with pytest.raises(GalleryError, match="read-only"):
            g.assign_faces([1], "bob")
        with pytest.raises(GalleryError, match="read-only"):
            g.rename_person("ann", "bob")
    with open_(location) as g:
        assert g.count_faces() == len(recs)
        assert {p.name: p.faces for p in g.people()} == {"ann": 5, "bob": 7}


def test_export_gives_every_face_as_stored(filled):
    location, recs, _ = filled
    with open_(location) as g:
        out = [r for chunk in g.export_faces(chunk=5) for r in chunk]
    assert [(r.person, r.image_sha256, r.source_path) for r in out] == [
        (r.person, r.image_sha256, r.source_path) for r in recs
    ]
    for a, b in zip(out, recs):
        assert np.array_equal(np.asarray(a.embedding, np.float32), b.embedding)
        assert tuple(a.box) == b.box and a.score == pytest.approx(b.score)


def test_info_and_reindex(filled):
    location, recs, _ = filled
    with open_(location, writable=True) as g:
        assert g.reindex() == len(recs)
        info = g.info()
    assert {"gallery", "people", "faces", "model", "embedding_dim", "index", "threshold"} <= set(
        info
    )
    assert (info["people"], info["faces"], info["model"], info["embedding_dim"]) == (
        2,
        12,
        MODEL,
        DIM,
    )
    assert info["index"]["size"] == 12 and info["index"]["metric"] == "cosine"
    assert info["index"]["ef_in_use"] >= 64
    with open_(location) as g:
        assert g.search(recs[0].embedding[None], 1)[0][0].name == "ann"


def test_both_backends_score_people_the_same(tmp_path, pg_url):
    rng = np.random.default_rng(11)
    recs = [r for i in range(8) for r in records(rng, f"p{i}", 1 + i % 3)]
    queries = np.r_[unit(rng, 30), np.stack([r.embedding for r in recs[:5]])]
    results = []
    for location in (str(tmp_path / "g"), pg_url):
        with open_(location, writable=True) as g:
            g.add(recs)
            results.append(g.search(queries, k_people=4))
    local, pg = results
    for a, b in zip(local, pg):
        assert [c.name for c in a] == [c.name for c in b]
        assert [c.distance for c in a] == pytest.approx([c.distance for c in b], abs=1e-5)


# -- faces: unassigned, thumbnails, per-face operations ----------------------------------------


def embeddings(recs):
    return np.stack([r.embedding for r in recs])


def template(recs):
    total = embeddings(recs).astype(np.float64).sum(0)
    return (total / np.linalg.norm(total)).astype(np.float32)


def names_found(g, queries, k=5):
    return {c.name for h in g.search(queries, k_people=k) for c in h}


@pytest.fixture
def with_unassigned(filled):
    """``filled`` plus 6 unassigned faces: 3 random, 3 copies (new photos) of ann's faces."""
    location, recs, ids = filled
    rng = np.random.default_rng(21)
    loose = records(rng, None, 3, thumbnail=b"jpeg") + [
        replace(r, person=None, image_sha256=f"copy-{i}", thumbnail=None)
        for i, r in enumerate(recs[:3])
    ]
    with open_(location, writable=True) as g:
        loose_ids = g.add(loose)
    return location, recs, ids, loose, loose_ids


def test_unassigned_faces_are_stored_and_counted_but_never_candidates(with_unassigned):
    location, recs, ids, loose, loose_ids = with_unassigned
    with open_(location) as g:
        assert (g.count_people(), g.count_faces(), g.count_unassigned()) == (2, 18, 6)
        assert {p.name: p.faces for p in g.people()} == {"ann": 5, "bob": 7}
        info = g.info()
        assert (info["faces"], info["unassigned"], info["index"]["size"]) == (18, 6, 12)
        assert g.threshold() == default_threshold(2, faces=12)  # only people's faces count
        hits = g.search(embeddings(loose), k_people=5)
        assert all(c.face_id not in loose_ids for h in hits for c in h)
        # an unassigned copy of ann's face is nearer than anything, and still ann is found
        assert [h[0].name for h in hits[3:]] == ["ann"] * 3
        assert [h[0].face_id for h in hits[3:]] == ids[:3]
        assert [f.id for f in g.faces(unassigned=True)] == loose_ids
        assert g.face_of_hash(loose[0].image_sha256).person is None
        assert g.owner_of_hash(loose[0].image_sha256) is None


def test_a_crowd_of_unassigned_faces_does_not_hide_the_people(filled):
    location, recs, ids = filled
    q = recs[0].embedding
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((300, q.size)).astype(np.float32) * 0.02
    crowd = (q + noise) / np.linalg.norm(q + noise, axis=1, keepdims=True)
    loose = [
        replace(recs[0], person=None, image_sha256=f"crowd-{i}", embedding=v)
        for i, v in enumerate(crowd)
    ]
    with open_(location, writable=True) as g:
        g.add(loose)
        hits = g.search(np.r_[q[None], crowd[:5]], k_people=2)
    assert [[c.name for c in h] for h in hits] == [["ann", "bob"]] * 6
    assert hits[0][0].face_id == ids[0]


def test_faces_lists_a_person_the_unassigned_or_all(with_unassigned):
    location, recs, ids, loose, loose_ids = with_unassigned
    with open_(location) as g:
        ann = g.faces("ann")
        assert [f.id for f in ann] == ids[:5] and {f.person for f in ann} == {"ann"}
        assert [f.id for f in g.faces()] == ids + loose_ids
        assert [f.person for f in g.faces(unassigned=True)] == [None] * 6
        with pytest.raises(PersonNotFoundError, match="no person named 'nobody'"):
            g.faces("nobody")
        with pytest.raises(InputError):
            g.faces("ann", unassigned=True)
    f = ann[1]
    assert (f.source_path, f.box, f.score) == (recs[1].source_path, recs[1].box, 0.99)
    assert datetime.fromisoformat(f.added).tzinfo is not None and not f.has_thumbnail
    assert f.to_dict() == {
        "id": f.id,
        "person": "ann",
        "source_path": "ann/1.jpg",
        "box": [0.0, 0.0, 10.0, 10.0],
        "score": 0.99,
        "added": f.added,
        "has_thumbnail": False,
        "kind": "enrolled",
        "suggested": None,
        "cluster": None,
    }


def test_thumbnails_round_trip(location):
    rng = np.random.default_rng(8)
    recs = records(rng, "ann", 3, thumbnail=b"\xff\xd8 jpeg \x00 bytes") + records(rng, "bob", 2)
    recs += records(rng, None, 2, thumbnail=b"\xff\xd8 loose")
    with open_(location, writable=True) as g:
        ids = g.add(recs)
    with open_(location) as g:
        assert [g.thumbnail(i) for i in ids] == [r.thumbnail for r in recs]
        assert [f.has_thumbnail for f in g.faces()] == [r.thumbnail is not None for r in recs]
        exported = [r for chunk in g.export_faces(chunk=2) for r in chunk]
        assert [r.thumbnail for r in exported] == [r.thumbnail for r in recs]
        assert [r.person for r in exported] == [r.person for r in recs]
        with pytest.raises(FaceNotFoundError, match=f"no face with id {max(ids) + 1}"):
            g.thumbnail(max(ids) + 1)


def test_removed_face_never_comes_back(with_unassigned):
    location, recs, ids, loose, loose_ids = with_unassigned
    ann = recs[:5]
    reader = open_(location)  # opened before the removal
    try:
        with open_(location, writable=True) as g:
            gone = g.remove_face(ids[0])
            assert (gone.id, gone.person, gone.source_path) == (ids[0], "ann", "ann/0.jpg")
            with pytest.raises(FaceNotFoundError):
                g.remove_face(ids[0])
            assert g.remove_face(loose_ids[0]).person is None
            hits = g.search(embeddings(recs), k_people=2)
            assert all(c.face_id != ids[0] for h in hits for c in h)
            # ann is now scored by her other four faces and their template
            q = template(ann[1:])
            best = g.search(q[None], k_people=1)[0][0]
            assert best.name == "ann" and best.distance == pytest.approx(0, abs=1e-5)
        assert all(c.face_id != ids[0] for h in reader.search(embeddings(recs)) for c in h)
    finally:
        reader.close()
    with open_(location) as g:
        assert (g.count_faces(), g.count_unassigned()) == (16, 5)
        assert {p.name: p.faces for p in g.people()} == {"ann": 4, "bob": 7}
        assert ids[0] not in [f.id for f in g.faces()]
        assert all(c.face_id != ids[0] for h in g.search(embeddings(recs)) for c in h)


def test_removing_a_persons_last_face_removes_the_person(filled):
    location, recs, ids = filled
    with open_(location, writable=True) as g:
        for face_id in ids[:5]:
            g.remove_face(face_id)
        assert [p.name for p in g.people()] == ["bob"]
        assert names_found(g, embeddings(recs)) == {"bob"}
        with pytest.raises(PersonNotFoundError):
            g.faces("ann")
    with open_(location) as g:
        assert (g.count_people(), g.count_faces()) == (1, 7)


def test_assign_faces_moves_them_and_keeps_templates_current(with_unassigned):
    location, recs, ids, loose, loose_ids = with_unassigned
    with open_(location, writable=True) as g:
        assert g.assign_faces(loose_ids[:3], "cy") == 3  # unassigned -> a new person
        hits = g.search(embeddings(loose[:3]), k_people=1)
        assert [h[0].name for h in hits] == ["cy"] * 3
        assert [h[0].face_id for h in hits] == loose_ids[:3]
        best = g.search(template(loose[:3])[None], k_people=1)[0][0]
        assert best.name == "cy" and best.distance == pytest.approx(0, abs=1e-5)
        # bob's first two faces go to ann: both templates follow
        assert g.assign_faces([ids[5], ids[6], ids[0]], "ann") == 2
        for who, faces in (("ann", recs[:7]), ("bob", recs[7:])):
            best = g.search(template(faces)[None], k_people=1)[0][0]
            assert best.name == who and best.distance == pytest.approx(0, abs=1e-5)
        assert g.assign_faces([ids[0]], "ann") == 0
    with open_(location) as g:
        assert {p.name: p.faces for p in g.people()} == {"ann": 7, "bob": 5, "cy": 3}
        assert g.count_unassigned() == 3
        assert [h[0].name for h in g.search(embeddings(recs[5:7]), k_people=1)] == ["ann"] * 2
        assert [f.id for f in g.faces("cy")] == loose_ids[:3]


def test_assigning_all_of_a_persons_faces_away_removes_them(filled):
    location, recs, ids = filled
    with open_(location, writable=True) as g:
        assert g.assign_faces(ids[:5], "bob") == 5
        assert {p.name: p.faces for p in g.people()} == {"bob": 12}
        assert names_found(g, embeddings(recs)) == {"bob"}


def test_assign_with_an_unknown_face_changes_nothing(with_unassigned):
    location, recs, ids, loose, loose_ids = with_unassigned
    unknown = max(loose_ids) + 100
    with open_(location, writable=True) as g:
        with pytest.raises(FaceNotFoundError, match=f"no face with id {unknown}"):
            g.assign_faces([loose_ids[0], ids[0], unknown], "cy")
        assert g.assign_faces([], "dee") == 0
    with open_(location) as g:
        assert {p.name: p.faces for p in g.people()} == {"ann": 5, "bob": 7}
        assert g.count_unassigned() == 6


def test_rename_person(filled):
    location, recs, ids = filled
    reader = open_(location)
    try:
        with open_(location, writable=True) as g:
            result = g.rename_person("ann", "Ann Lee")
            assert (result.old, result.new, result.merged, result.faces) == (
                "ann",
                "Ann Lee",
                False,
                5,
            )
            with pytest.raises(PersonNotFoundError):
                g.rename_person("ann", "x")
            assert g.rename_person("bob", "bob").faces == 7  # nothing to do
        assert reader.changed_since_open()
    finally:
        reader.close()
    with open_(location) as g:
        assert {p.name: p.faces for p in g.people()} == {"Ann Lee": 5, "bob": 7}
        assert [h[0].name for h in g.search(embeddings(recs[:5]), k_people=1)] == ["Ann Lee"] * 5
        assert [f.id for f in g.faces("Ann Lee")] == ids[:5]


def test_rename_to_an_existing_name_merges(with_unassigned):
    location, recs, ids, _, _ = with_unassigned
    with open_(location, writable=True) as g:
        result = g.rename_person("ann", "bob")
        assert (result.merged, result.faces) == (True, 5)
        assert {p.name: p.faces for p in g.people()} == {"bob": 12}
        hits = g.search(embeddings(recs), k_people=2)
        assert [h[0].name for h in hits] == ["bob"] * 12 and all(len(h) == 1 for h in hits)
        assert [h[0].face_id for h in hits] == ids
        best = g.search(template(recs)[None], k_people=1)[0][0]
        assert best.name == "bob" and best.distance == pytest.approx(0, abs=1e-5)
    with open_(location) as g:
        assert (g.count_people(), g.count_faces(), g.count_unassigned()) == (1, 18, 6)
        assert sorted(f.id for f in g.faces("bob")) == sorted(ids)
        with pytest.raises(PersonNotFoundError):
            g.faces("ann")


def test_writes_are_seen_by_changed_since_open(filled):
    location, _, ids = filled
    for write in (
        lambda g: g.remove_face(ids[0]),
        lambda g: g.assign_faces([ids[1]], "bob"),
        lambda g: g.rename_person("bob", "cy"),
    ):
        with open_(location) as reader:
            with open_(location, writable=True) as g:
                write(g)
            assert reader.changed_since_open()
