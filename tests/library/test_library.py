"""The photo library on real photos, in both gallery backends: scan a folder built from
../shared/faces (five people with eight photos each, two group photos, three strangers), cluster,
name, eject, re-scan; a killed scan resumes; deleted photos drop their faces, moved ones keep them.
"""

from __future__ import annotations

import shutil

import pytest
from librarygen import CELEBRITIES, STRANGERS, build_library  # noqa: F401

from conftest import FACES
from facesearch import FaceSearch
from facesearch.library import scan as scan_module


@pytest.fixture(params=["directory", "postgres"])
def make_library_fs(request, tmp_path, detector, embedder):
    """A factory of FaceSearch objects on one fresh gallery of each backend."""
    location = (
        tmp_path / "gallery" if request.param == "directory" else request.getfixturevalue("pg_url")
    )
    made: list[FaceSearch] = []

    def make() -> FaceSearch:
        fs = FaceSearch(location, detector=detector, embedder=embedder)
        made.append(fs)
        return fs

    yield make
    for fs in made:
        fs.close()


def test_scan_clusters_name_find_unassign(make_library_fs, tmp_path):
    who = build_library(tmp_path / "photos")
    fs = make_library_fs()
    report = fs.scan(tmp_path / "photos")
    assert (report.photos_seen, report.photos_added, report.skipped) == (len(who), len(who), [])
    assert report.faces_added >= len(who) + 6  # the group photos hold several faces each
    assert report.suggested == {}  # nobody is enrolled
    assert fs.people() == [] and len(fs.faces(unassigned=True)) == report.faces_added

    again = fs.scan(tmp_path / "photos")  # a second scan adds nothing
    assert (again.photos_added, again.faces_added, again.unchanged) == (0, 0, len(who))

    # clusters match people: each is one person's, and each person has one
    result = fs.clusters(min_faces=3)
    assert result.to_dict().keys() >= {"clusters", "unclustered"}
    owners = []
    for cluster in result.clusters:
        people = {who[f.image] for f in cluster.faces}
        assert len(people) == 1 and "" not in people, people
        assert len({f.image for f in cluster.faces}) == cluster.size  # one face per photo
        owners.append(people.pop())
    assert sorted(owners) == CELEBRITIES
    assert [c.size for c in result.clusters] == sorted(
        (c.size for c in result.clusters), reverse=True
    )
    assert fs.clusters(min_faces=3) == result  # stable: nothing new, nothing changes
    ids = {c.id for c in result.clusters}
    assert {c.id for c in fs.clusters(min_faces=3, recluster=True).clusters} == ids

    # name a cluster: identify names that person
    madonna = next(c for c in result.clusters if who[c.faces[0].image] == "madonna")
    named = fs.name_cluster(madonna.id, "Madonna")
    assert sorted(named.faces) == sorted(f.id for f in madonna.faces) and not named.kept_out
    unseen = sorted((FACES / "celebrity5" / "train" / "madonna").iterdir())[-1]
    assert fs.identify(unseen).faces[0].name == "Madonna"
    assert [(p.name, p.faces) for p in fs.people()] == [("Madonna", madonna.size)]
    hits = fs.find("Madonna")
    assert sorted(h.image for h in hits) == sorted(f.image for f in madonna.faces)
    assert all(h.box == f.box for h, f in zip(hits, sorted(madonna.faces, key=lambda f: f.image)))
    assert madonna.id not in {c.id for c in fs.clusters().clusters}

    # eject one face: it stays out after a re-scan (no suggestion) and a re-cluster
    ejected = madonna.faces[0].id
    assert fs.unassign(ejected).person == "Madonna"
    assert ejected not in {f.id for f in fs.faces("Madonna")}
    rescan = fs.scan(tmp_path / "photos")
    assert rescan.photos_added == 0
    suggested = fs.find("Madonna", suggested=True)
    assert ejected not in {h.face for h in suggested}
    assert all(who[h.image] == "madonna" for h in suggested)  # the others are suggested
    assert {h.face for h in suggested if h.suggested}  # at least one
    again = fs.clusters(min_faces=2, recluster=True)
    home = [c for c in again.clusters if ejected in {f.id for f in c.faces}]
    if home:  # wherever it landed, naming that cluster Madonna keeps it out
        assert ejected in fs.name_cluster(home[0].id, "Madonna").kept_out
    assert ejected not in {f.id for f in fs.faces("Madonna")}
    # confirming the suggestions makes them Madonna's
    confirmed = fs.confirm("Madonna")
    assert confirmed >= 1 and fs.faces(suggested="Madonna") == []

    # enrolling a photo the scan found: its face becomes the enrolled one, nothing doubles
    faces_before = len(fs.faces())
    elton = next(p for p, w in sorted(who.items()) if w == "elton_john")
    enrolled = fs.enroll_person("Elton", [elton])
    assert enrolled.enrolled == 1 and len(fs.faces()) == faces_before
    assert [f.kind for f in fs.faces("Elton")] == ["enrolled"]
    assert fs.enroll_person("Elton", [elton]).skipped[0].reason == "duplicate"


def test_a_killed_scan_resumes(make_library_fs, tmp_path, monkeypatch):
    who = build_library(tmp_path / "photos", per_person=3, strangers=False)
    fs = make_library_fs()
    real = scan_module.FolderScan._commit
    commits = []

    def crash_after_one_window(self):
        if commits:
            raise KeyboardInterrupt  # Ctrl-C during the second window
        commits.append(len(self._pending))
        real(self)

    monkeypatch.setattr(scan_module.FolderScan, "_commit", crash_after_one_window)
    with pytest.raises(KeyboardInterrupt):
        fs.scan(tmp_path / "photos")
    monkeypatch.undo()
    assert commits == [scan_module.WINDOW]
    first = fs.faces(unassigned=True)
    assert len({f.source_path for f in first}) == scan_module.WINDOW
    report = fs.scan(tmp_path / "photos")
    assert report.unchanged == scan_module.WINDOW
    assert report.photos_added == len(who) - scan_module.WINDOW
    faces = fs.faces(unassigned=True)
    assert faces[: len(first)] == first  # nothing committed was redone
    assert len({f.source_path for f in faces}) == len(who)


def test_deleted_photos_drop_their_faces_moved_ones_keep_them(make_library_fs, tmp_path):
    root = tmp_path / "photos"
    build_library(root, per_person=2, strangers=False)
    fs = make_library_fs()
    fs.scan(root)
    faces = fs.faces(unassigned=True)
    gone = root / "people" / "madonna" / "00.jpg"
    moved_from = root / "people" / "elton_john" / "01.jpg"
    moved_to = root / "archive" / "elton.jpg"
    gone_ids = {f.id for f in faces if f.source_path == str(gone.resolve())}
    moved_ids = {f.id for f in faces if f.source_path == str(moved_from.resolve())}
    assert gone_ids and moved_ids
    # a person's faces in a photo that goes are removed too
    fs.assign(sorted(gone_ids), "Madonna")
    gone.unlink()
    moved_to.parent.mkdir()
    moved_from.rename(moved_to)
    (root / "zz-copies").mkdir()  # walked after archive/: a copy, not where it moved
    shutil.copy(moved_to, root / "zz-copies" / "elton.jpg")
    report = fs.scan(root)
    assert (report.deleted, report.faces_removed, report.moved) == (1, len(gone_ids), 1)
    assert (report.photos_added, report.faces_added) == (0, 0)  # nothing re-embedded
    assert [s.reason for s in report.skipped] == ["duplicate"]
    after = {f.id: f for f in fs.faces()}
    assert not gone_ids & set(after) and fs.people() == []
    assert {after[i].source_path for i in moved_ids} == {str(moved_to.resolve())}
    assert len(after) == len(faces) - len(gone_ids)
    assert sorted(p.path for p in _photos(fs)) == sorted(
        str(p.resolve()) for p in root.rglob("*.jpg") if p.parent.name != "zz-copies"
    )


def _photos(fs):
    with fs._reading() as gallery:
        return gallery.photos()
