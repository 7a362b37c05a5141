"""End to end on the real MTCNN + FaceNet and real photos from ../shared/faces."""

from pathlib import Path

import numpy as np
import pytest

from conftest import FACES
from facesearch import FaceSearch

CELEB = FACES / "celebrity5"
GROUPS = {
    FACES / "bbt" / "group" / "bbt1.jpg": 4,
    FACES / "bbt" / "group" / "bbt2.jpg": 4,
    FACES / "facenet_pytorch_data" / "multiface.jpg": 6,
    FACES / "face_recognition_examples" / "examples" / "two_people.jpg": 2,
    FACES
    / "face_recognition_examples"
    / "examples"
    / "knn_examples"
    / "test"
    / "kit_with_rose.jpg": 2,
}


@pytest.fixture(scope="module")
def fs(enrolled, detector, embedder):
    with FaceSearch(enrolled[0], detector=detector, embedder=embedder) as f:
        yield f


def test_enroll_reports_people_and_skips(enrolled):
    celeb, bbt = enrolled[1]
    assert set(celeb.added) == {
        "ben_afflek",
        "elton_john",
        "jerry_seinfeld",
        "madonna",
        "mindy_kaling",
    }
    assert set(bbt.added) == {
        "amy",
        "bernadette",
        "howard",
        "leonard",
        "penny",
        "raj",
        "sheldon",
        "stuart",
    }
    # tightly cropped grayscale faces, found with the padded retry; in howard5.png MTCNN finds
    # only an eye (score 0.84), which the quality gate refuses as a subject
    assert bbt.enrolled == 39
    assert [(Path(s.path).name, s.reason) for s in bbt.skipped] == [("howard5.png", "low_quality")]
    # celebrity5/train has photos with several faces: each is reported with the face chosen
    assert celeb.chosen and all(c.faces > 1 for c in celeb.chosen)
    assert celeb.enrolled + len(celeb.skipped) == celeb.photos_seen == 93


def test_celebrity5_val_is_named(fs):
    truth, named = [], []
    for person_dir in sorted((CELEB / "val").iterdir()):
        for photo in sorted(person_dir.iterdir()):
            result = fs.identify(photo)
            assert result.faces, photo
            subject = max(result.faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
            truth.append(person_dir.name)
            named.append(subject.name)
    correct = sum(t == n for t, n in zip(truth, named))
    wrong = sum(n is not None and t != n for t, n in zip(truth, named))
    # 25/25 are ranked first. The default threshold for these 13 people (133 faces) is 0.355,
    # 1% stranger false-accepts on lfw_dev: all 25 are named (21 at the old fixed 0.307)
    assert correct >= 24, list(zip(truth, named))
    assert wrong == 0, list(zip(truth, named))


@pytest.mark.parametrize("photo, count", list(GROUPS.items()), ids=lambda v: getattr(v, "name", v))
def test_group_photos_give_every_face(fs, photo, count):
    assert len(fs.identify(photo).faces) == count


def test_bbt_group_names_leonard_and_sheldon(fs):
    faces = fs.identify(FACES / "bbt" / "group" / "bbt2.jpg").faces
    named = {f.name for f in faces if f.name}
    assert named == {"leonard", "sheldon"}
    for f in faces:
        if f.quality == "low":
            continue
        assert f.distance == pytest.approx(1 - f.similarity)
        assert f.runner_up is not None and f.runner_up.name != f.candidates[0].name


def test_the_salt_shaker_in_bbt2_is_reported_as_low_quality_and_not_named(fs, enrolled):
    faces = fs.identify(FACES / "bbt" / "group" / "bbt2.jpg").faces
    low = [f for f in faces if f.quality == "low"]
    assert len(faces) == 4 and len(low) == 1
    (shaker,) = low
    assert shaker.score < 0.8 and shaker.box[1] > 380  # bottom centre of the photo
    assert shaker.name is None and shaker.similarity is None and shaker.candidates == ()
    assert shaker.to_dict()["quality"] == "low"
    assert all(f.to_dict()["quality"] == "ok" for f in faces if f is not shaker)
    with FaceSearch(
        enrolled[0], detector=fs.detector, embedder=fs.embedder, quality_gate=None
    ) as off:
        ungated = off.identify(FACES / "bbt" / "group" / "bbt2.jpg").faces
    assert [f.quality for f in ungated] == ["ok"] * 4
    assert all(f.similarity is not None for f in ungated)


def test_people_not_enrolled_are_unknown(fs):
    strangers = sorted(
        p for p in (FACES / "lfw_dev" / "images").iterdir() if len(list(p.iterdir())) == 1
    )[:40]
    results = [fs.identify(next(p.iterdir())) for p in strangers]
    names = [f.name for r in results for f in r.faces]
    assert len(names) >= 40
    assert sum(n is not None for n in names) <= 1, names


def test_identify_accepts_arrays_and_pil(fs):
    from PIL import Image

    photo = CELEB / "val" / "madonna" / "1.jpg"
    img = Image.open(photo).convert("RGB")
    a = fs.identify(img).faces
    b = fs.identify(np.asarray(img)).faces
    assert [f.name for f in a] == [f.name for f in b]


def test_identify_batch_is_identify_one_by_one(fs, tmp_path):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 90), (200, 200, 200)).save(blank)
    photos = [*GROUPS, blank, CELEB / "val" / "madonna" / "1.jpg"]
    batch = fs.identify_batch(photos)
    for photo, got in zip(photos, batch):
        one = fs.identify(photo)
        assert [f.name for f in got.faces] == [f.name for f in one.faces], photo
        for a, b in zip(got.faces, one.faces):
            assert np.allclose(a.box, b.box) and a.quality == b.quality
            if a.quality == "ok":
                assert abs(a.distance - b.distance) < 0.02
    assert batch[-2].faces == () and batch[-1].faces[0].name == "madonna"


def test_the_stages_compose_into_identify(fs):
    """detect -> embed_faces -> match_embeddings is identify (what live and the server use)."""
    photo = FACES / "bbt" / "group" / "bbt1.jpg"
    faces = fs.detect(photo)
    matches = fs.match_embeddings(fs.embed_faces(photo, faces), faces)
    assert [m.name for m in matches] == [f.name for f in fs.identify(photo).faces]
    assert len(fs.detect(photo, min_face=200)) < len(faces)  # a detector with other settings


def test_no_face_image_gives_no_faces(fs, tmp_path):
    from PIL import Image

    p = tmp_path / "wall.png"
    Image.new("RGB", (320, 240), (200, 180, 150)).save(p)
    assert fs.identify(p).faces == ()


def test_threshold_zero_names_nobody(fs):
    faces = fs.identify(FACES / "bbt" / "group" / "bbt2.jpg", threshold=0.0).faces
    assert all(f.name is None for f in faces)
    assert all(f.similarity is not None for f in faces if f.quality == "ok")


def test_flip_tta_embedding_is_mirror_invariant_and_matches_its_definition(detector, embedder):
    import torch

    from facesearch import FaceEmbedder
    from facesearch.crops import crop_faces
    from facesearch.images import load_image

    img = load_image(CELEB / "val" / "madonna" / "3.jpg").image
    crops = crop_faces(img, detector.detect(img))
    mirrored = torch.flip(crops, dims=[3])
    assert embedder.flip
    both = embedder.embed(torch.cat([crops, mirrored]))
    n = len(crops)
    # the average of a crop and its mirror image does not change when the crop is mirrored
    assert np.allclose(both[:n], both[n:], atol=2e-3)
    plain = FaceEmbedder(precision=embedder.precision, flip=False, runtime=embedder.runtime)
    # share the loaded network, in whichever runtime it runs
    plain._model, plain._runner = embedder._model, embedder._runner
    plain.weights_path = embedder.weights_path
    a, b = plain.embed(crops), plain.embed(mirrored)
    expected = (a + b) / np.linalg.norm(a + b, axis=1, keepdims=True)
    assert np.allclose(both[:n], expected, atol=2e-3)
    assert plain.model_id != embedder.model_id  # a gallery never mixes the two


def test_identify_reports_a_threshold_that_follows_the_gallery(make_fs):
    from facesearch.threshold import default_threshold

    fs = make_fs()
    query = CELEB / "val" / "madonna" / "1.jpg"
    for name in ("madonna", "elton_john"):
        fs.enroll_person(name, [CELEB / "train" / name / "1.jpg"])
    two = fs.identify(query)
    assert (two.threshold, two.threshold_source) == (
        default_threshold(2, faces=2).value,
        default_threshold(2, faces=2).source,
    )
    for name in ("ben_afflek", "jerry_seinfeld", "mindy_kaling"):
        fs.enroll_person(name, [CELEB / "train" / name / "1.jpg"])
    five = fs.identify(query)
    assert five.threshold == default_threshold(5, faces=5).value < two.threshold
    assert five.to_dict()["threshold_source"].startswith("default for 5 people")
    assert fs.info()["threshold"] == five.threshold  # info says the same
    subject = max(five.faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    assert subject.name == "madonna"
    fs.set_threshold(0.05, "calibrated on my photos")  # a calibrated value beats the default
    strict = fs.identify(query)
    assert (strict.threshold, strict.threshold_source) == (0.05, "calibrated on my photos")
    assert all(f.name is None for f in strict.faces)
