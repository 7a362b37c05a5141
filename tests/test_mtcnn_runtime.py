"""Where MTCNN runs: choosing the runtime, and OpenVINO finding torch's faces, side by side or not.

``tests/test_mtcnn.py`` holds the default detector (OpenVINO where the test extra installed it)
to facenet-pytorch on the representative photos, and on every shared photo under ``-m slow``;
here the torch cascade is held to the same, and OpenVINO's cascade to torch's.
"""

from __future__ import annotations

import importlib.util
import threading

import numpy as np
import pytest
import torch
from test_mtcnn import REPRESENTATIVE, disagreements, photos

from conftest import FACES
from facesearch import FaceDetector, mtcnn_runtime, native
from facesearch.errors import InputError
from facesearch.images import load_image
from facesearch.mtcnn import MTCNNCascade

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed")

# photos of several sizes and face counts: one call holds several equal-sized images
MIXED = [
    "bbt/group/bbt1.jpg",
    "bbt/group/bbt2.jpg",
    "facenet_pytorch_data/multiface.jpg",
    "face_recognition_examples/examples/two_people.jpg",
    "lfw_dev/images/Tony_Blair",
]


@pytest.mark.parametrize(
    "installed, device, expected",
    [(True, "cpu", "openvino"), (False, "cpu", "torch"), (True, "cuda", "torch")],
)
def test_auto_runtime(monkeypatch, installed, device, expected):
    monkeypatch.setattr(mtcnn_runtime, "_installed", lambda: installed)
    assert mtcnn_runtime.resolve_detect_runtime("auto", torch.device(device)) == expected


@pytest.mark.parametrize(
    "runtime, installed, device, message",
    [
        ("tensorrt", True, "cpu", "unknown detection runtime 'tensorrt'"),
        ("openvino", False, "cpu", "not installed: pip install 'facesearch\\[fast\\]'"),
        ("openvino", True, "cuda", "runs on the CPU"),
    ],
)
def test_runtime_errors_are_one_line(monkeypatch, runtime, installed, device, message):
    monkeypatch.setattr(mtcnn_runtime, "_installed", lambda: installed)
    with pytest.raises(InputError, match=message):
        mtcnn_runtime.resolve_detect_runtime(runtime, torch.device(device))


def test_facenet_pytorch_backend_runs_on_torch():
    assert FaceDetector(backend="facenet-pytorch", runtime="auto").runtime == "torch"


def test_torch_cascade_finds_facenet_pytorchs_faces():
    reference = FaceDetector(backend="facenet-pytorch")
    problems, faces = disagreements(
        FaceDetector(runtime="torch"), reference, photos(REPRESENTATIVE)
    )
    assert faces > 150
    assert problems == []


def _images() -> list[np.ndarray]:
    return [np.asarray(load_image(p).image) for p in photos(MIXED)[:14]]


def _same(a, b, tol: float = 0.01) -> None:
    assert [len(d.boxes) for d in a] == [len(d.boxes) for d in b]
    for x, y in zip(a, b):
        assert np.abs(x.boxes - y.boxes).max(initial=0) < tol
        assert np.abs(x.landmarks - y.landmarks).max(initial=0) < tol
        assert np.abs(x.scores - y.scores).max(initial=0) < 1e-4


@pytest.fixture(scope="module")
def cascades():
    if not HAS_OPENVINO:
        pytest.skip("openvino is not installed")
    return MTCNNCascade(runtime="torch"), MTCNNCascade(runtime="openvino")


@needs_openvino
def test_openvino_finds_torchs_faces_side_by_side_and_alone(cascades):
    torch_cascade, ov = cascades
    images = _images()
    assert len(images) == 14 and sum(len(d.boxes) for d in torch_cascade.detect(images)) > 20
    want = [torch_cascade.detect([im])[0] for im in images]
    assert torch.get_num_threads() >= 2  # calls, levels and crops split between two threads
    _same(ov.detect(images), want)
    _same([ov.detect([im])[0] for im in images], want)
    mtcnn_runtime.use_threads(1)  # one thread: everything in this thread, in one call
    try:
        _same(ov.detect(images), want)
    finally:
        mtcnn_runtime.use_threads(None)


@needs_openvino
def test_openvino_from_several_threads_at_once(cascades):
    _, ov = cascades
    images = _images()
    want = ov.detect(images)
    got: dict[int, list] = {}

    def run(i: int) -> None:
        got[i] = ov.detect(images[i:] + images[:i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(3):
        _same(got[i], want[i:] + want[:i])


@needs_openvino
def test_openvino_unchanged_after_a_half_precision_usearch_index(cascades):
    """OpenVINO once returned other embeddings after usearch built an f16 index in the same
    process (bf16 FaceNet, docs/performance.md): the detector's fp32 networks do not."""
    _, ov = cascades
    image = np.asarray(load_image(FACES / "bbt/group/bbt1.jpg").image)
    before = ov.detect([image, image])
    index = native.usearch_index()(ndim=512, metric="cos", dtype="f16")
    vectors = np.random.default_rng(0).standard_normal((2000, 512)).astype(np.float32)
    index.add(np.arange(2000), vectors)
    index.search(vectors[:50], 10)
    _same(ov.detect([image, image]), before, tol=1e-4)


def test_auto_falls_back_to_torch_when_openvino_fails_to_load(monkeypatch, caplog):
    from facesearch import mtcnn

    def broken(*args, **kwargs):
        raise RuntimeError("no CPU plugin")

    monkeypatch.setattr(mtcnn_runtime, "_installed", lambda: True)
    monkeypatch.setattr(mtcnn_runtime, "OpenVINONet", broken)
    auto = FaceDetector(device="cpu")
    assert auto.runtime == "openvino"
    assert isinstance(auto.mtcnn, mtcnn.MTCNNCascade) and auto.runtime == "torch"
    assert "running it on torch" in caplog.text
    with pytest.raises(RuntimeError, match="no CPU plugin"):  # asked for: the error stands
        FaceDetector(device="cpu", runtime="openvino").load()
