"""Where FaceNet's forward pass runs on a CPU: torch, or OpenVINO.

``benchmarks/embed_runtime_bench.py`` measured, on the same crops (flip averaging included),
OpenVINO bf16 at 1.7x torch's bf16 autocast on a CPU with AMX, with embeddings at cosine
>= 0.9996 of torch fp32's (docs/performance.md). It is an optional extra
(``pip install 'facesearch[fast]'``) that must be asked for (``runtime="openvino"``):
``"auto"`` is torch. In a process where usearch had built an HNSW index in half precision
before OpenVINO compiled the network, OpenVINO returned different embeddings for the same crops
from one call to the next (the test suite caught it in one test order), so it is not a default
until that is understood. OpenVINO's fp32 was not faster than torch's. ONNX Runtime 1.31 was 1.8x torch fp32 but crashes a process that loaded usearch before
it, so it is not offered. The network is exported to ONNX once from the verified weights and
cached in the user cache (``onnx/facenet-<sha256 of the weights>.onnx``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .config import user_cache_dir
from .errors import InputError, WeightsError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "openvino")
Runner = Callable[[np.ndarray], np.ndarray]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_runtime(runtime: str, precision: str, device: torch.device) -> str:
    """The runtime to use: the one asked for; "auto" is torch (see the module docstring)."""
    if runtime not in RUNTIMES:
        raise InputError(f"unknown runtime {runtime!r}; use {', '.join(RUNTIMES)}")
    ready = _installed("openvino") and _installed("onnx")
    if runtime == "openvino":
        if device.type != "cpu":
            raise InputError("--runtime openvino runs on the CPU; use --device cpu")
        if not ready:
            raise InputError("--runtime openvino is not installed: pip install 'facesearch[fast]'")
        return runtime
    return "torch"


def onnx_file(model: torch.nn.Module, weights: Path) -> Path:
    """The network as ONNX (batch size free), exported once per weights file and cached.
    ``model`` must be in eval mode and in torch's default memory format."""
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    path = user_cache_dir() / "onnx" / f"facenet-{digest}.onnx"
    if path.is_file():
        return path
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        torch.onnx.export(
            model,
            torch.zeros(2, 3, 160, 160),
            str(tmp),
            input_names=["crops"],
            output_names=["embeddings"],
            dynamic_axes={"crops": {0: "n"}, "embeddings": {0: "n"}},
            opset_version=17,
        )
        tmp.replace(path)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        raise WeightsError(f"could not export FaceNet to ONNX ({err})") from err
    log.info("exported FaceNet to %s", path)
    return path


def load_runner(runtime: str, onnx_path: Path, precision: str) -> Runner:
    """A function from crops (N, 3, 160, 160) float32 to raw embeddings (N, 512)."""
    if runtime == "openvino":
        import openvino as ov

        hint = "bf16" if precision == "bf16" else "f32"
        compiled = ov.Core().compile_model(
            str(onnx_path),
            "CPU",
            {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "THROUGHPUT"},
        )
        request = compiled.create_infer_request()
        lock = threading.Lock()  # one infer request: callers from several threads take turns

        def run(x: np.ndarray) -> np.ndarray:
            with lock:
                return np.array(request.infer({0: np.ascontiguousarray(x, np.float32)})[0])

        return run
    raise ValueError(runtime)
