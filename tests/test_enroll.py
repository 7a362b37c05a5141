"""Enrolling with the real models: bad inputs, re-runs, interruptions, removal, reindex."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FACES, REPO
from facesearch.errors import InputError
from facesearch.gallery import DB_NAME
from imagegen import huge, rotated_exif, truncated, variants

BBT = FACES / "bbt" / "people"
CELEB_TRAIN = FACES / "celebrity5" / "train"


def people_folder(root: Path, people: dict[str, list[Path]]) -> Path:
    for name, photos in people.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for p in photos:
            shutil.copy(p, root / name / p.name)
    return root


def test_bad_and_unusual_files_in_an_enroll_folder(make_fs, tmp_path):
    face = CELEB_TRAIN / "madonna" / "1.jpg"
    folder = tmp_path / "people"
    good = variants(face, folder / "madonna")  # grayscale, 16-bit, CMYK, palette, RGBA
    rotated_exif(CELEB_TRAIN / "ben_afflek" / "1.jpg", folder / "ben" / "sideways.jpg")
    truncated(CELEB_TRAIN / "ben_afflek" / "2.jpg", folder / "ben" / "cut.jpg")
    truncated(BBT / "amy" / "amy1.png", folder / "ben" / "cut.png")
    huge(folder / "ben" / "bomb.png")
    (folder / "ben" / "notes.txt").write_text("not a photo")
    from PIL import Image

    Image.new("RGB", (300, 200), (90, 120, 200)).save(folder / "ben" / "sky.jpg")
    (folder / "empty_person").mkdir()
    (folder / "stray.jpg").write_bytes(face.read_bytes())

    fs = make_fs()
    report = fs.enroll(folder)
    assert report.added == {"madonna": len(good), "ben": 1}
    by_path = {Path(s.path).name: s.reason for s in report.skipped}
    assert by_path == {
        "cut.jpg": "unreadable",
        "cut.png": "unreadable",
        "bomb.png": "unreadable",
        "notes.txt": "unreadable",
        "sky.jpg": "no_face",
        "empty_person": "empty",
        "stray.jpg": "no_person",
    }
    # every colour mode of the same face lands on the same person
    result = fs.identify(face)
    assert result.faces[0].name == "madonna" and result.faces[0].distance < 0.1


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: d / "missing", "no such folder"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "folder is empty"),
        (
            lambda d: (
                (d / "flat").mkdir()
                or shutil.copy(BBT / "amy" / "amy1.png", d / "flat")
                and d / "flat"
            ),
            "no person sub-folders",
        ),
    ],
    ids=["missing", "empty", "no-subfolders"],
)
def test_enroll_folder_errors(make_fs, tmp_path, setup, message):
    with pytest.raises(InputError, match=message):
        make_fs().enroll(setup(tmp_path))
    assert not (tmp_path / "gallery" / DB_NAME).exists() or make_fs().people() == []


def test_bad_person_folder_name_is_skipped(make_fs, tmp_path):
    folder = people_folder(
        tmp_path / "p", {"amy": [BBT / "amy" / "amy1.png"], "bob\u200b": [BBT / "raj" / "raj1.png"]}
    )
    report = make_fs().enroll(folder)
    assert report.added == {"amy": 1}
    assert [s.reason for s in report.skipped] == ["bad_name"]


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "x\u202e"])
def test_enroll_person_refuses_bad_names(make_fs, name):
    with pytest.raises(InputError):
        make_fs().enroll_person(name, [BBT / "amy" / "amy1.png"])


def test_reenroll_adds_nothing_and_new_photos_are_incremental(make_fs, tmp_path):
    amy = sorted((BBT / "amy").iterdir())
    folder = people_folder(tmp_path / "p", {"amy": amy[:3]})
    fs = make_fs()
    assert fs.enroll(folder).added == {"amy": 3}
    again = fs.enroll(folder)
    assert again.enrolled == 0 and again.skipped_by_reason() == {"duplicate": 3}
    people_folder(folder, {"amy": amy[3:]})
    assert fs.enroll(folder).added == {"amy": len(amy) - 3}
    # the same photo under another name is a duplicate, not a second identity
    dup = fs.enroll_person("not_amy", [amy[0]])
    assert dup.enrolled == 0 and "already enrolled as 'amy'" in dup.skipped[0].detail
    assert [(p.name, p.faces) for p in fs.people()] == [("amy", len(amy))]


def test_enroll_person_from_files_and_folders(make_fs):
    fs = make_fs()
    report = fs.enroll_person("Zoë", [BBT / "penny" / "penny1.png", BBT / "penny"])
    assert report.added == {"Zoë": 5}  # penny1 given twice counts once
    with pytest.raises(InputError, match="no such file"):
        fs.enroll_person("Zoë", [BBT / "penny" / "nope.png"])


def test_enrollment_photo_with_several_faces_uses_the_subject(make_fs):
    photo = FACES / "face_recognition_examples" / "examples" / "two_people.jpg"
    fs = make_fs()
    report = fs.enroll_person("someone", [photo])
    assert report.enrolled == 1 and len(report.chosen) == 1 and report.chosen[0].faces == 2


def test_interrupted_enroll_keeps_committed_batches_and_rerun_finishes(
    make_fs, tmp_path, monkeypatch
):
    folder = people_folder(
        tmp_path / "p", {d.name: sorted(d.iterdir()) for d in sorted(BBT.iterdir())}
    )
    fs = make_fs()
    fs.embedder.batch_size = 8
    real_embed = type(fs.embedder).embed
    calls = {"n": 0}

    def flaky(self, crops):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_embed(self, crops)

    monkeypatch.setattr(type(fs.embedder), "embed", flaky)
    with pytest.raises(KeyboardInterrupt):
        fs.enroll(folder)
    monkeypatch.setattr(type(fs.embedder), "embed", real_embed)
    info = fs.info()
    committed = info["faces"]  # the batches embedded before the third call was interrupted
    assert 16 <= committed < 39 and info["index"]["size"] == committed
    report = fs.enroll(folder)
    fs.embedder.batch_size = 32
    assert report.enrolled == 39 - committed  # howard5.png's only "face" is an eye: low quality
    assert report.skipped_by_reason() == {"duplicate": committed, "low_quality": 1}
    info = fs.info()
    assert info["faces"] == info["index"]["size"] == 39


def test_killed_enroll_process_leaves_a_consistent_gallery(tmp_path):
    """SIGKILL mid-enroll (no cleanup at all), then the same command finishes the job."""
    lfw = FACES / "lfw_dev" / "images"
    people = [d for d in sorted(lfw.iterdir()) if len(list(d.iterdir())) >= 4][:40]
    folder = people_folder(tmp_path / "p", {d.name: sorted(d.iterdir())[:4] for d in people})
    total = 4 * len(people)
    gallery = tmp_path / "g"
    cmd = [
        sys.executable,
        "-m",
        "facesearch",
        "--gallery",
        str(gallery),
        "enroll",
        str(folder),
        "--no-progress",
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import sqlite3

    deadline = time.time() + 120
    committed = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            con = sqlite3.connect(f"file:{gallery / DB_NAME}?mode=ro", uri=True)
            committed = con.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
            con.close()
        except sqlite3.Error:
            continue
        if committed >= 32:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < committed < total, "the enroll should have been killed mid-way"
    done = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    info = subprocess.run(
        [sys.executable, "-m", "facesearch", "--gallery", str(gallery), "info", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    import json

    data = json.loads(info.stdout)
    assert (
        data["faces"]
        == data["index"]["size"]
        == total
        - len([s for s in json.loads(done.stdout)["skipped"] if s["reason"] != "duplicate"])
    )


def test_remove_and_reindex(enrolled_copy, make_fs):
    fs = make_fs(enrolled_copy)
    before = {p.name: p.faces for p in fs.people()}
    assert fs.remove("sheldon") == before["sheldon"]
    faces = fs.identify(FACES / "bbt" / "group" / "bbt2.jpg").faces
    assert "sheldon" not in {c.name for f in faces for c in f.candidates}
    assert fs.reindex() == sum(before.values()) - before["sheldon"]
    assert {f.name for f in fs.identify(FACES / "bbt" / "group" / "bbt2.jpg").faces} >= {"leonard"}


def test_enrolled_faces_keep_a_thumbnail(make_fs):
    import io

    import numpy as np
    from PIL import Image

    fs = make_fs()
    fs.enroll_person("amy", sorted((BBT / "amy").iterdir())[:2])
    frame = np.asarray(Image.open(BBT / "penny" / "penny1.png").convert("RGB"))
    label = fs.enroll_face("penny", frame)
    faces = fs.faces()
    assert [f.person for f in faces] == ["amy", "amy", "penny"] and faces[-1].id == label
    for f in faces:
        assert f.has_thumbnail
        thumb = Image.open(io.BytesIO(fs.thumbnail(f.id)))
        assert thumb.format == "JPEG" and thumb.size == (112, 112)
        # the thumbnail is the enrolled face: it is found as that person again
        assert fs.identify(thumb.convert("RGB")).faces[0].name == f.person


def test_rename_merge_and_remove_faces_with_real_photos(enrolled_copy, make_fs):
    fs = make_fs(enrolled_copy)
    group = FACES / "bbt" / "group" / "bbt2.jpg"
    before = {p.name: p.faces for p in fs.people()}
    assert {f.name for f in fs.identify(group).faces} == {"leonard", "sheldon", None}
    result = fs.rename("sheldon", "leonard")  # two people are one: merge
    assert result.merged and result.faces == before["sheldon"]
    assert {f.name for f in fs.identify(group).faces} == {"leonard", None}
    people = {p.name: p.faces for p in fs.people()}
    assert people["leonard"] == before["leonard"] + before["sheldon"] and "sheldon" not in people
    for face in fs.faces("leonard"):
        fs.remove_face(face.id)
    assert "leonard" not in {p.name for p in fs.people()}
    assert {f.name for f in fs.identify(group).faces} == {None}
