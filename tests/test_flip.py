"""Flip averaging per gallery: a new gallery records whether its faces were flip-averaged and
every later search embeds the same way (``FaceSearch(flip=...)``, ``--flip on|off``)."""

from __future__ import annotations

import json

import pytest

from conftest import FACES, MODELS
from facesearch import FaceEmbedder, FaceSearch
from facesearch.embedding import flip_of, unflipped
from facesearch.errors import ModelMismatchError
from facesearch.gallery import open_gallery, recorded_model
from fakes import run

TRAIN = FACES / "celebrity5" / "train"


def make_gallery(location, flip: bool) -> str:
    """An empty gallery at ``location`` whose recorded model is flip-averaged or not."""
    model_id = FaceEmbedder(flip=flip).model_id
    with open_gallery(location, model_id, 512, writable=True):
        pass
    return model_id


def test_the_model_id_says_whether_faces_are_flip_averaged():
    assert flip_of(FaceEmbedder(flip=True).model_id)
    assert not flip_of(FaceEmbedder(flip=False).model_id)
    assert unflipped(FaceEmbedder(flip=True).model_id) == FaceEmbedder(flip=False).model_id
    assert FaceEmbedder().flip  # the default: on


@pytest.mark.parametrize("flip", [True, False])
def test_a_gallery_is_searched_as_it_was_made(tmp_path, flip):
    model_id = make_gallery(tmp_path / "g", flip)
    assert recorded_model(tmp_path / "g") == model_id
    fs = FaceSearch(tmp_path / "g")
    assert fs.embedder.flip is flip and fs.embedder.model_id == model_id


def test_no_gallery_yet_flips_by_default_or_as_asked(tmp_path):
    assert recorded_model(tmp_path / "none") is None
    assert FaceSearch(tmp_path / "none").embedder.flip is True
    assert FaceSearch(tmp_path / "none", flip=False).embedder.flip is False


@pytest.mark.parametrize("made_with, made", [(True, "with"), (False, "without")])
def test_asking_for_the_other_setting_is_refused_not_mixed(tmp_path, made_with, made):
    make_gallery(tmp_path / "g", flip=made_with)
    with (
        FaceSearch(tmp_path / "g", flip=not made_with) as fs,
        pytest.raises(
            ModelMismatchError, match=f"embedded {made} flip averaging.*leave out --flip"
        ),
    ):
        fs.people()


def test_another_model_is_still_refused_as_such(tmp_path):
    with open_gallery(tmp_path / "g", "some-other-model|crop160m32|flip", 512, writable=True):
        pass
    with (
        FaceSearch(tmp_path / "g", flip=False) as fs,
        pytest.raises(ModelMismatchError, match="cannot be compared"),
    ):
        fs.people()


def test_recorded_model_of_a_postgres_gallery(pg_url):
    assert recorded_model(pg_url) is None
    model_id = make_gallery(pg_url, flip=False)
    assert recorded_model(pg_url) == model_id
    assert FaceSearch(pg_url).embedder.flip is False


def test_cli_enrolls_without_flip_and_later_commands_follow(capsys, tmp_path):
    gallery = tmp_path / "g"
    people = tmp_path / "people"
    for name in ("ben_afflek", "madonna"):
        (people / name).mkdir(parents=True)
        for photo in sorted((TRAIN / name).iterdir())[:2]:
            (people / name / photo.name).symlink_to(photo)
    base = ["--gallery", gallery, "--models", MODELS]
    code, _, err = run(capsys, *base, "--flip", "off", "enroll", people, "--no-progress")
    assert code == 0, err
    assert not flip_of(recorded_model(gallery) or "")
    photo = sorted((FACES / "celebrity5" / "val" / "madonna").iterdir())[0]
    code, out, err = run(capsys, *base, "identify", photo, "--json")  # no --flip: the gallery's
    assert code == 0, err
    assert [f["name"] for f in json.loads(out)["results"][0]["faces"]] == ["madonna"]
    code, _, err = run(capsys, *base, "--flip", "on", "identify", photo)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facesearch: error:"), err
    assert "embedded without flip averaging" in lines[0] and "leave out --flip" in lines[0]
