"""The photo library's storage in both gallery backends (a directory and PostgreSQL): scanned
photos with many faces each, suggestions, rejections, clusters, deleted and moved photos.

Synthetic unit vectors, no model: fast. PostgreSQL comes from ``pg_url`` (conftest.py).
"""

from dataclasses import replace

import numpy as np
import pytest

from facesearch.errors import GalleryError, InputError
from facesearch.gallery import open_gallery
from facesearch.threshold import default_threshold
from facesearch.types import ScannedPhoto
from fakes import DIM, MODEL, records


@pytest.fixture(params=["directory", "postgres"])
def location(request, tmp_path):
    if request.param == "directory":
        return str(tmp_path / "gallery")
    return request.getfixturevalue("pg_url")


def open_(location, writable=False):
    return open_gallery(location, MODEL, DIM, writable=writable)


def photo(rng, name, n_faces, suggested=None, size=100):
    """A scanned photo ``name`` with ``n_faces`` faces side by side (boxes do not overlap)."""
    faces = tuple(
        replace(r, source_path=f"/photos/{name}", image_sha256=f"sha-{name}", box=box)
        for r, box in zip(
            records(rng, None, n_faces, thumbnail=b"\xff\xd8"),
            [(100.0 * k, 0.0, 100.0 * k + 80, 90.0) for k in range(n_faces)],
        )
    )
    if suggested:
        faces = tuple(replace(f, suggested=suggested) for f in faces)
    return ScannedPhoto(f"/photos/{name}", f"sha-{name}", size, 1.5, faces)


@pytest.fixture
def library(location):
    """ann and bob enrolled (3 faces each); photos a (3 faces), b (none), c (2, suggested ann)."""
    rng = np.random.default_rng(0)
    people = records(rng, "ann", 3) + records(rng, "bob", 3)
    photos = [photo(rng, "a.jpg", 3), photo(rng, "b.jpg", 0), photo(rng, "c.jpg", 2, "ann")]
    with open_(location, writable=True) as g:
        enrolled = g.add(people)
        scanned = g.add_photos(photos)
    return location, people, enrolled, photos, scanned


def test_scanned_faces_are_no_ones_and_not_candidates(library):
    location, people, enrolled, photos, scanned = library
    with open_(location) as g:
        assert len(scanned) == 5 and len(set(scanned) & set(enrolled)) == 0
        assert [(p.path, p.sha256, p.size, p.mtime) for p in g.photos()] == [
            (p.path, p.sha256, p.size, p.mtime) for p in photos
        ]
        assert (g.count_photos(), g.count_faces(), g.count_unassigned()) == (3, 11, 5)
        assert {p.name: p.faces for p in g.people()} == {"ann": 3, "bob": 3}
        assert g.threshold() == default_threshold(2, faces=6)  # suggestions do not count
        loose = g.faces(unassigned=True)
        assert [f.id for f in loose] == scanned and {f.kind for f in loose} == {"scanned"}
        assert [f.suggested for f in loose] == [None] * 3 + ["ann"] * 2
        assert [f.id for f in g.faces(suggested="ann")] == scanned[3:]
        assert g.faces(suggested="bob") == []
        assert loose[0].source_path == "/photos/a.jpg" and loose[0].has_thumbnail
        queries = np.stack([f.embedding for p in photos for f in p.faces])
        assert all(c.face_id in enrolled for h in g.search(queries, k_people=2) for c in h)
        assert g.owner_of_hash("sha-a.jpg") is None  # scanned, not enrolled
        arrays = g.loose_faces()
        assert arrays.ids.tolist() == scanned
        assert np.allclose(arrays.vectors, queries, atol=1e-6)
        assert len(set(arrays.photos.tolist())) == 2 and (arrays.clusters == 0).all()
        ann_id = {p.name: p.id for p in g.people()}["ann"]
        assert arrays.suggested.tolist() == [0, 0, 0, ann_id, ann_id]


def test_a_photo_is_scanned_once(library):
    location, _, _, photos, _ = library
    rng = np.random.default_rng(1)
    with open_(location, writable=True) as g:
        with pytest.raises(GalleryError, match="nothing was written"):
            g.add_photos([photo(rng, "d.jpg", 2), photos[0]])
    with open_(location) as g:
        assert (g.count_photos(), g.count_faces()) == (3, 11)


def test_enrolling_a_scanned_photo_takes_over_its_face(library):
    location, people, enrolled, photos, scanned = library
    face = photos[0].faces[1]
    record = replace(face, person="cy", source_path="people/cy/a.jpg", box=(102, 1, 181, 92))
    with open_(location, writable=True) as g:
        (label,) = g.add([record])
        assert label == scanned[1]  # the scanned face, now enrolled
        info = {f.id: f for f in g.faces()}[label]
        assert (info.person, info.kind) == ("cy", "enrolled")
        assert g.owner_of_hash("sha-a.jpg") == "cy"
        assert g.search(face.embedding[None], k_people=1)[0][0].face_id == label
        with pytest.raises(GalleryError, match="nothing was written"):
            g.add([replace(record, box=(0, 0, 80, 90))])  # enroll's one subject per photo
    with open_(location) as g:
        assert (g.count_faces(), g.count_unassigned()) == (11, 4)
        assert {p.name: p.faces for p in g.people()} == {"ann": 3, "bob": 3, "cy": 1}


def test_scanning_an_enrolled_photo_links_the_enrolled_face(library):
    location, people, enrolled, _, _ = library
    rng = np.random.default_rng(2)
    shot = photo(rng, "ann0.jpg", 2)
    ann0 = replace(people[0], image_sha256=shot.sha256, box=(3, 0, 80, 90))
    with open_(location, writable=True) as g:
        (first,) = g.add([ann0])
        ids = g.add_photos([shot])
        assert ids[0] == first and ids[1] != first
        faces = {f.id: f for f in g.faces()}
        assert (faces[first].person, faces[first].source_path) == ("ann", shot.path)
        assert faces[ids[1]].person is None and faces[ids[1]].kind == "scanned"
        assert g.count_faces() == 13


def test_suggestions_rejections_and_assign(library):
    location, people, enrolled, photos, scanned = library
    with open_(location, writable=True) as g:
        suggested = scanned[3]
        before = g.unassign_face(suggested)  # reject the suggestion
        assert (before.person, before.suggested) == (None, "ann")
        assert g.rejections([suggested]) == {suggested: {"ann"}}
        assert g.set_suggestions({suggested: "ann"}) == 0  # never again
        assert g.set_suggestions({suggested: "bob", scanned[0]: "ann"}) == 2
        assert [f.id for f in g.faces(suggested="bob")] == [suggested]
        # the user says so: assign wins over the rejection, and clears the suggestion
        assert g.assign_faces([suggested], "ann") == 1
        assert g.rejections([suggested]) == {}
        assert [f.id for f in g.faces(suggested="bob")] == []
        assert {p.name: p.faces for p in g.people()}["ann"] == 4
        taken = g.unassign_face(suggested)  # eject from ann: remembered
        assert taken.person == "ann" and g.rejections([suggested]) == {suggested: {"ann"}}
        assert {p.name: p.faces for p in g.people()}["ann"] == 3
        queries = photos[2].faces[0].embedding[None]
        assert all(c.face_id != suggested for h in g.search(queries, k_people=2) for c in h)
        assert g.set_suggestions({suggested: "ann"}) == 0
        with pytest.raises(InputError, match="nothing to unassign"):
            g.unassign_face(scanned[2])


def test_clusters_are_stored_named_and_ejected(library):
    location, people, enrolled, photos, scanned = library
    with open_(location, writable=True) as g:
        assert g.next_cluster_id() == 1
        g.set_clusters({scanned[0]: 7, scanned[1]: 7, scanned[2]: 8})
        assert g.next_cluster_id() == 9
        assert [f.id for f in g.faces(cluster=7)] == scanned[:2]
        assert g.loose_faces().clusters.tolist()[:3] == [7, 7, 8]
        g.unassign_face(scanned[1])  # ejected from its cluster: kept out
        assert g.loose_faces().clusters.tolist()[:3] == [7, -1, 8]
        g.set_clusters({scanned[1]: 7})
        g.unassign_face(scanned[0])
        g.assign_faces([scanned[0]], "ann")
        g.unassign_face(scanned[0])  # taken from ann: remembered
        g.set_clusters({scanned[0]: 7})
        given, kept = g.assign_cluster(7, "ann")
        assert (given, kept) == ([scanned[1]], [scanned[0]])
        assert g.faces(cluster=7) == [g.faces(unassigned=True)[0]]  # the rejected face stays
        given, kept = g.assign_cluster(8, "dee")
        assert given == [scanned[2]] and kept == []
        with pytest.raises(InputError, match="no cluster with id 8"):
            g.assign_cluster(8, "dee")
        g.set_clusters({scanned[0]: None})
        assert g.next_cluster_id() == 9  # ids are never reused
    with open_(location) as g:
        assert {p.name: p.faces for p in g.people()} == {"ann": 4, "bob": 3, "dee": 1}
        assert g.search(photos[0].faces[2].embedding[None], 1)[0][0].name == "dee"


def test_deleted_photos_take_their_scanned_faces(library):
    location, people, enrolled, photos, scanned = library
    with open_(location, writable=True) as g:
        g.assign_faces([scanned[0]], "eve")  # eve's only face is in photo a
        g.assign_faces([scanned[1]], "ann")
        g.add([replace(people[4], person="bob", image_sha256="sha-c.jpg", box=(0, 0, 5, 5))])
        by_path = {p.path: p.id for p in g.photos()}
        assert g.remove_photos([by_path["/photos/a.jpg"], by_path["/photos/c.jpg"]]) == 5
        assert [p.path for p in g.photos()] == ["/photos/b.jpg"]
        assert {p.name: p.faces for p in g.people()} == {"ann": 3, "bob": 4}
        hits = g.search(np.stack([f.embedding for f in photos[0].faces]), k_people=3)
        assert all(c.face_id not in scanned for h in hits for c in h)
    with open_(location) as g:
        assert (g.count_faces(), g.count_unassigned(), g.count_photos()) == (7, 0, 1)


def test_moved_photos_keep_their_faces(library):
    location, people, enrolled, photos, scanned = library
    with open_(location, writable=True) as g:
        photo_id = {p.path: p.id for p in g.photos()}["/photos/a.jpg"]
        g.move_photos([(photo_id, "/elsewhere/a.jpg", 100, 9.5)])
        moved = [p for p in g.photos() if p.id == photo_id][0]
        assert (moved.path, moved.mtime, moved.sha256) == ("/elsewhere/a.jpg", 9.5, "sha-a.jpg")
        assert [f.source_path for f in g.faces(unassigned=True)][:3] == ["/elsewhere/a.jpg"] * 3
        assert g.loose_faces().ids.tolist() == scanned


def test_merge_carries_suggestions_and_rejections(library):
    location, people, enrolled, photos, scanned = library
    with open_(location, writable=True) as g:
        g.assign_faces([scanned[0]], "ann")
        g.unassign_face(scanned[0])
        assert g.rename_person("ann", "bob").merged
        assert [f.id for f in g.faces(suggested="bob")] == scanned[3:]
        assert g.rejections([scanned[0]]) == {scanned[0]: {"bob"}}


def test_loose_faces_of_an_empty_gallery(location):
    with open_(location, writable=True) as g:
        loose = g.loose_faces()
        assert len(loose) == 0 and loose.vectors.shape[0] == 0
        assert g.photos() == [] and g.add_photos([]) == [] and g.remove_photos([]) == 0
        assert g.set_suggestions({}) == 0


def test_faces_filters_are_one_at_a_time(library):
    location = library[0]
    with open_(location) as g:
        with pytest.raises(InputError, match="one at a time"):
            g.faces("ann", cluster=1)
        assert g.faces(cluster=12345) == []
