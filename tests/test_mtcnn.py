"""The batched cascade (``facesearch.mtcnn``) finds the same faces as facenet-pytorch's MTCNN.

Both backends of ``FaceDetector`` run on the same photos of ../shared/faces; every face must
have a counterpart (same count, box IoU >= 0.95, each landmark within 2 px). A representative
handful runs by default, eight photos of mixed sizes per cascade call; every photo (about 3,500)
runs under ``-m slow``, one per call. The ``detector`` fixture is the default one: MTCNN's
networks on OpenVINO where the test extra installed it (``tests/test_mtcnn_runtime.py`` holds
the torch cascade to the same photos).

One per call, the two agree to float rounding on every photo. Batched, one of the 3,517 differs:
a different batch size makes oneDNN round the convolutions differently, which here moves a
crop window of an 18-px, 0.74-score detection by a pixel (IoU 0.947). facenet-pytorch itself
does the same between its channels-last and its default layout (docs/detection.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import FACES
from facesearch.images import load_image
from facesearch.mtcnn import MTCNNCascade, pyramid_scales

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}

# group photos, odd sizes, grayscale crops that need the padded retry, a large photo
REPRESENTATIVE = [
    "bbt/group/bbt1.jpg",
    "bbt/group/bbt2.jpg",
    "bbt/people/sheldon/sheldon1.png",
    "facenet_pytorch_data/multiface.jpg",
    "facenet_pytorch_data/test_images/kate_siegel/1.jpg",
    "face_recognition_examples/examples/two_people.jpg",
    "face_recognition_examples/examples/knn_examples/test/obama_and_biden.jpg",
    "celebrity5/val/madonna",
    "lfw_dev/images/Tony_Blair",
]


def photos(entries: list[str] | None = None) -> list[Path]:
    roots = [FACES / e for e in entries] if entries else [FACES]
    out: list[Path] = []
    for root in roots:
        if root.is_file():
            out.append(root)
        else:
            out.extend(sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
    return out


@pytest.fixture(scope="module")
def reference():
    from facesearch import FaceDetector

    return FaceDetector(backend="facenet-pytorch")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def disagreements(detector, reference, paths: list[Path], batch: int = 8) -> tuple[list[str], int]:
    """Photos where the two detectors disagree (one line each), and the faces compared."""
    problems, faces = [], 0
    for start in range(0, len(paths), batch):
        chunk = paths[start : start + batch]
        images = [load_image(p).image for p in chunk]
        ours = detector.detect_many(images)  # several images of mixed sizes per call
        for path, image, got in zip(chunk, images, ours):
            want = reference.detect(image)
            name = str(path.relative_to(FACES))
            faces += len(want)
            if len(got) != len(want):
                problems.append(f"{name}: {len(got)} faces, facenet-pytorch {len(want)}")
                continue
            if len(want) == 0:
                continue
            iou = box_iou(want.boxes, got.boxes)
            match = iou.argmax(axis=1)
            if len(set(match.tolist())) != len(want) or iou.max(axis=1).min() < 0.95:
                problems.append(f"{name}: box IoU {iou.max(axis=1).min():.3f}")
                continue
            lm = np.abs(got.landmarks[match] - want.landmarks).max()
            if lm > 2.0:
                problems.append(f"{name}: landmarks {lm:.2f} px apart")
    return problems, faces


def test_same_faces_as_facenet_pytorch_on_representative_photos(detector, reference):
    paths = photos(REPRESENTATIVE)
    assert len(paths) > 150
    problems, faces = disagreements(detector, reference, paths)
    assert faces > 150
    assert problems == []


@pytest.mark.slow
def test_same_faces_as_facenet_pytorch_on_every_shared_photo(detector, reference):
    paths = photos()
    assert len(paths) > 3000
    problems, faces = disagreements(detector, reference, paths, batch=1)
    assert problems == [], f"{len(problems)} of {len(paths)} photos ({faces} faces) differ"


def test_pyramid_scales_follow_facenet_pytorch():
    scales = pyramid_scales(480, 640, 20, 0.709)
    assert scales[0] == pytest.approx(0.6)
    assert len(scales) == 10  # 480 * 0.6 * 0.709**9 = 12.2 px, the last level PNet can read
    assert pyramid_scales(10, 10, 20, 0.709) == []


def test_the_cascade_takes_images_of_any_sizes_in_one_call():
    cascade = MTCNNCascade()
    blank = np.zeros((40, 60, 3), np.uint8)
    noise = np.random.default_rng(0).integers(0, 255, (97, 131, 3), dtype=np.uint8)
    out = cascade.detect([blank, noise, blank])
    assert len(out) == 3 and all(d.boxes.shape[1:] == (4,) for d in out)
    assert cascade.detect([]) == []
    with pytest.raises(ValueError, match=r"RGB uint8 arrays \(H, W, 3\)"):
        cascade.detect([np.zeros((10, 10), np.uint8)])
