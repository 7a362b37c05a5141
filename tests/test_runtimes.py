"""Where FaceNet runs: choosing the runtime, and ONNX Runtime / OpenVINO giving torch's embeddings."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from conftest import FACES, MODELS
from facesearch import FaceEmbedder, FaceSearch, native, runtimes
from facesearch.errors import InputError

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "precision, installed, expected",
    [
        ("fp32", {"onnxruntime", "onnx", "openvino"}, "onnxruntime"),
        ("fp32", {"onnx", "openvino"}, "torch"),
        ("fp32", set(), "torch"),
        # native bf16: torch's autocast; OpenVINO is opt-in (unstable after usearch's f16 index)
        ("bf16", {"onnxruntime", "onnx", "openvino"}, "torch"),
        ("bf16", set(), "torch"),
    ],
)
def test_auto_runtime(monkeypatch, precision, installed, expected):
    monkeypatch.setattr(runtimes, "_installed", lambda m: m in installed)
    assert runtimes.resolve_runtime("auto", precision, CPU) == expected


def test_auto_is_torch_on_cuda(monkeypatch):
    monkeypatch.setattr(runtimes, "_installed", lambda m: True)
    assert runtimes.resolve_runtime("auto", "fp32", torch.device("cuda")) == "torch"


@pytest.mark.parametrize(
    "runtime, precision, installed, device, message",
    [
        ("tensorrt", "fp32", set(), "cpu", "unknown runtime"),
        ("onnxruntime", "fp32", set(), "cpu", "not installed"),
        ("onnxruntime", "bf16", {"onnxruntime"}, "cpu", "runs in fp32"),
        ("onnxruntime", "fp32", {"onnxruntime"}, "cuda", "runs on the CPU"),
        ("openvino", "fp32", set(), "cpu", "not installed"),
        ("openvino", "bf16", {"openvino"}, "cpu", "not installed"),  # onnx missing
        ("openvino", "bf16", {"openvino", "onnx"}, "cuda", "runs on the CPU"),
    ],
)
def test_runtime_errors_are_one_line(monkeypatch, runtime, precision, installed, device, message):
    monkeypatch.setattr(runtimes, "_installed", lambda m: m in installed)
    with pytest.raises(InputError, match=message):
        runtimes.resolve_runtime(runtime, precision, torch.device(device))


@pytest.mark.parametrize(
    "runtime, precision, floor",
    [("onnxruntime", "fp32", 0.99999), ("openvino", "bf16", 0.9995), ("openvino", "fp32", 0.99999)],
)
def test_runtimes_give_torch_fp32_embeddings(detector, runtime, precision, floor):
    if runtime == "onnxruntime":
        if native.onnxruntime() is None:
            pytest.skip("onnxruntime is not installed: pip install 'facesearch[fast]'")
    else:
        pytest.importorskip(runtime, reason="pip install 'facesearch[fast]'")
        pytest.importorskip("onnx", reason="pip install 'facesearch[fast]'")
    photos = sorted((FACES / "celebrity5" / "val").rglob("*.jpg"))[:6]

    def embed(rt: str, prec: str) -> np.ndarray:
        emb = FaceEmbedder(models_dir=str(MODELS), allow_download=False, precision=prec, runtime=rt)
        fs = FaceSearch("/nonexistent-unused", detector=detector, embedder=emb)
        vectors, found = fs.embed_photos(photos)
        assert found.all() and emb.runtime == rt
        return vectors

    ref = embed("torch", "fp32")
    got = embed(runtime, precision)
    assert np.min(np.sum(ref * got, axis=1)) >= floor


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {"FACESEARCH_MODELS": str(MODELS), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )


def test_onnxruntime_loads_before_usearch_through_facesearch(tmp_path):
    """usearch loaded through facesearch, then ONNX Runtime (and torchvision, which imports it
    through torch.onnx): loaded the other way round the process dies (native.py)."""
    pytest.importorskip("onnxruntime", reason="pip install 'facesearch[fast]'")
    out = _python(
        "import numpy as np\n"
        "from facesearch.gallery.index import FaceIndex\n"
        "index = FaceIndex(8)\n"
        "import onnxruntime, torchvision\n"
        "from facesearch import FaceEmbedder\n"
        "emb = FaceEmbedder(precision='fp32', allow_download=False).load()\n"
        "import torch\n"
        "print(emb.runtime, emb.embed(torch.zeros(2, 3, 160, 160)).shape)\n"
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["onnxruntime", "(2,", "512)"]


def test_openvino_serves_threads_side_by_side_on_the_threads_each_is_given(detector):
    """Each calling thread gets its own infer request on the network compiled for its thread
    count (the cameras' per-core workers run one thread each): the same embeddings as one call
    at a time."""
    pytest.importorskip("openvino", reason="pip install 'facesearch[fast]'")
    pytest.importorskip("onnx", reason="pip install 'facesearch[fast]'")
    from facesearch.crops import crop_faces
    from facesearch.images import load_image

    photo = load_image(FACES / "bbt/group/bbt1.jpg")
    crops = crop_faces(photo.image, detector.detect(photo.image))
    assert len(crops) >= 4
    emb = FaceEmbedder(
        models_dir=str(MODELS), allow_download=False, precision="fp32", runtime="openvino"
    ).load()
    want = emb.embed(crops)
    got: dict[int, np.ndarray] = {}

    def work(i: int, threads: int) -> None:
        torch.set_num_threads(threads)  # this thread's own setting, as a camera worker's
        got[i] = np.concatenate([emb.embed(crops[j : j + 1]) for j in range(len(crops))])

    workers = [threading.Thread(target=work, args=(i, 1 + i % 2)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(got) == [0, 1, 2, 3]
    for vectors in got.values():
        assert np.min(np.sum(vectors * want, axis=1)) >= 0.99999
