"""Where FaceNet runs: choosing the runtime, and ONNX Runtime / OpenVINO giving torch's embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import FACES, MODELS
from facesearch import FaceEmbedder, FaceSearch, runtimes
from facesearch.errors import InputError

CPU = torch.device("cpu")


@pytest.mark.parametrize("installed", [{"onnx", "openvino"}, set()])
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_auto_is_torch_whatever_is_installed(monkeypatch, installed, precision):
    # OpenVINO is opt-in: it gave unstable embeddings in a process where usearch ran first
    monkeypatch.setattr(runtimes, "_installed", lambda m: m in installed)
    assert runtimes.resolve_runtime("auto", precision, CPU) == "torch"


def test_auto_is_torch_on_cuda(monkeypatch):
    monkeypatch.setattr(runtimes, "_installed", lambda m: True)
    assert runtimes.resolve_runtime("auto", "fp32", torch.device("cuda")) == "torch"


@pytest.mark.parametrize(
    "runtime, precision, installed, message",
    [
        ("tensorrt", "fp32", set(), "unknown runtime"),
        ("onnxruntime", "fp32", {"onnx", "onnxruntime"}, "unknown runtime"),
        ("openvino", "fp32", set(), "not installed"),
        ("openvino", "bf16", {"openvino"}, "not installed"),  # onnx missing
    ],
)
def test_runtime_errors_are_one_line(monkeypatch, runtime, precision, installed, message):
    monkeypatch.setattr(runtimes, "_installed", lambda m: m in installed)
    with pytest.raises(InputError, match=message):
        runtimes.resolve_runtime(runtime, precision, CPU)


@pytest.mark.parametrize(
    "runtime, precision, floor",
    [("openvino", "bf16", 0.9995), ("openvino", "fp32", 0.99999)],
)
def test_runtimes_give_torch_fp32_embeddings(detector, runtime, precision, floor):
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
