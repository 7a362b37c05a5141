"""The contract every gallery backend keeps, run against a directory and a PostgreSQL database.

Synthetic unit vectors, no model: fast. PostgreSQL comes from ``pg_url`` (conftest.py).
"""

import sqlite3
import threading

import numpy as np
import pytest

from facesearch.errors import GalleryError, ModelMismatchError, PersonNotFoundError
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
        with pytest.raises((GalleryError, sqlite3.IntegrityError)):
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
    with open_(location) as g:
        assert g.count_faces() == len(recs)


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
