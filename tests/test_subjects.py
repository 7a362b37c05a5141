"""SubjectBatcher: photos in, each photo's subject embedded in bounded batches (fake models)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from facesearch.images import LoadedImage
from facesearch.subjects import SubjectBatcher
from facesearch.types import Faces


class FakeDetector:
    """Faces drawn in a photo's name: "a" -> one face, "ab" -> two (the second larger), "" -> none."""

    def __init__(self):
        self.calls: list[int] = []

    def detect_many(self, images):
        self.calls.append(len(images))
        out = []
        for img in images:
            n = img.info["faces"]
            boxes = np.array([[10, 10, 30 + 20 * i, 30 + 20 * i] for i in range(n)], np.float32)
            out.append(Faces.from_boxes(boxes) if n else Faces.empty())
        return out


class FakeEmbedder:
    dim = 4
    batch_size = 3

    def __init__(self):
        self.batches: list[int] = []

    def embed(self, crops):
        self.batches.append(len(crops))
        v = np.zeros((len(crops), self.dim), np.float32)
        v[:, 0] = 1.0
        return v


def photo(name: str, faces: int) -> LoadedImage:
    img = Image.new("RGB", (100, 100), (120, 100, 90))
    img.info["faces"] = faces
    return LoadedImage(name, img, name)


def test_batches_are_bounded_and_every_photo_is_accounted_for():
    det, emb = FakeDetector(), FakeEmbedder()
    got: list[tuple[int, str, int]] = []
    none: list[int] = []

    def embedded(keys, subjects, vectors):
        # a batch closes once a detection window brings it to batch_size or more
        assert len(keys) == len(subjects) == len(vectors) < emb.batch_size + 4
        got.extend((k, s.image.path, s.faces_found) for k, s in zip(keys, subjects))

    batcher = SubjectBatcher(det, emb, embedded, lambda k, _: none.append(k), detect_window=4)
    photos = [photo(f"p{i}", i % 3) for i in range(10)]  # 0, 1 or 2 faces
    for i, p in enumerate(photos):
        batcher.add(i, p)
    batcher.flush()
    assert sorted(none) == [i for i in range(10) if i % 3 == 0]
    assert [k for k, _, _ in got] == [i for i in range(10) if i % 3]  # in the order added
    assert all(path == f"p{k}" and n == k % 3 for k, path, n in got)
    assert det.calls == [4, 4, 2]
    assert emb.batches == [5, 1]  # 2 subjects, then 5 (>= 3: embedded), then the last at flush


def test_the_subject_is_the_most_prominent_face():
    det, emb = FakeDetector(), FakeEmbedder()
    chosen = []
    batcher = SubjectBatcher(det, emb, lambda k, s, v: chosen.extend(s))
    batcher.add("x", photo("two", 2))
    batcher.flush()
    assert chosen[0].box == (10.0, 10.0, 50.0, 50.0)  # the larger of the two


def test_faces_below_the_quality_gate_are_never_a_subject():
    from facesearch.quality import QualityGate

    det, emb = FakeDetector(), FakeEmbedder()
    chosen, low = [], []
    gate = QualityGate(min_side=30)  # the fake faces are 20, 40, 60... px
    batcher = SubjectBatcher(
        det,
        emb,
        lambda k, s, v: chosen.extend(s),
        gate=gate,
        on_low_quality=lambda k, _: low.append(k),
    )
    batcher.add("one small face", photo("a", 1))
    batcher.add("small and large", photo("ab", 2))
    batcher.flush()
    assert low == ["one small face"]
    assert [(s.box, s.faces_found) for s in chosen] == [((10.0, 10.0, 50.0, 50.0), 1)]


def test_flush_with_nothing_added_embeds_nothing():
    det, emb = FakeDetector(), FakeEmbedder()
    SubjectBatcher(det, emb, lambda *a: None).flush()
    assert det.calls == [] and emb.batches == []
