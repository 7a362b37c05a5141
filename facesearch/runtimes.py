"""Where FaceNet's forward pass runs on a CPU: torch, ONNX Runtime, or OpenVINO.

``benchmarks/embed_runtime_bench.py`` measured, on the same crops (flip averaging included):

* CPUs without native bf16 (fp32, most laptops): ONNX Runtime fp32 at 1.6x torch fp32 on an
  AVX2-only AMD EPYC and 1.8x on a Sapphire Rapids Xeon, with the same embeddings (cosine
  1.00000). ``"auto"`` picks it for fp32 on the CPU when ``onnxruntime`` is installed
  (``pip install 'facesearch[fast]'``); it must load before usearch (``native.py``).
* CPUs with native bf16: OpenVINO bf16 at 1.7x torch's bf16 autocast with AMX (measured when
  this runner used one core of two), embeddings at cosine >= 0.9996 of torch fp32's. It must be
  asked for (``runtime="openvino"``): in a process where usearch had built an HNSW index in half
  precision before OpenVINO compiled the network, OpenVINO returned different embeddings for the
  same crops from one call to the next (the test suite caught it in one test order). OpenVINO's
  f32 runs as fast as ONNX Runtime's on the AVX2 EPYC: both compute at about the two cores' fp32
  peak (docs/performance.md).

The network is exported to ONNX once from the verified weights and cached in the user cache
(``onnx/facenet-<sha256 of the weights>.onnx``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import native
from .config import user_cache_dir
from .errors import InputError, WeightsError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# torch.onnx.export keeps its settings in process-wide globals: one export at a time (FaceNet's
# here, MTCNN's in ``mtcnn_runtime``), as the server may load both models from two requests
_EXPORT_LOCK = threading.Lock()

RUNTIMES = ("auto", "torch", "onnxruntime", "openvino")
Runner = Callable[[np.ndarray], np.ndarray]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_runtime(runtime: str, precision: str, device: torch.device) -> str:
    """The runtime to use: the one asked for; "auto" is ONNX Runtime for fp32 on the CPU where
    it is installed, torch everywhere else (see the module docstring)."""
    if runtime not in RUNTIMES:
        raise InputError(f"unknown runtime {runtime!r}; use {', '.join(RUNTIMES)}")
    if runtime == "auto":
        fp32_cpu = device.type == "cpu" and precision == "fp32"
        return "onnxruntime" if fp32_cpu and _installed("onnxruntime") else "torch"
    if runtime != "torch" and device.type != "cpu":
        raise InputError(f"--runtime {runtime} runs on the CPU; use --device cpu")
    if runtime == "onnxruntime":
        if precision != "fp32":
            raise InputError("--runtime onnxruntime runs in fp32; use --precision fp32")
        if not _installed("onnxruntime"):
            raise InputError(
                "--runtime onnxruntime is not installed: pip install 'facesearch[fast]'"
            )
    if runtime == "openvino" and not (_installed("openvino") and _installed("onnx")):
        raise InputError("--runtime openvino is not installed: pip install 'facesearch[fast]'")
    return runtime


def export_onnx(
    model: torch.nn.Module, example: tuple[Any, ...], target: Any, **options: Any
) -> None:
    """``torch.onnx.export`` at opset 17, one export at a time, with the TorchScript exporter
    the runners were measured with: torch 2.9 and later default to the dynamo exporter, which
    needs ``onnxscript`` and builds a different graph."""
    import inspect

    import torch

    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False
    with _EXPORT_LOCK, torch.no_grad():
        torch.onnx.export(model, example, target, opset_version=17, **options)


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
        export_onnx(
            model,
            (torch.zeros(2, 3, 160, 160),),
            str(tmp),
            input_names=["crops"],
            output_names=["embeddings"],
            dynamic_axes={"crops": {0: "n"}, "embeddings": {0: "n"}},
        )
        tmp.replace(path)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        raise WeightsError(f"could not export FaceNet to ONNX ({err})") from err
    log.info("exported FaceNet to %s", path)
    return path


def load_runner(runtime: str, onnx_path: Path, precision: str) -> Runner:
    """A function from crops (N, 3, 160, 160) float32 to raw embeddings (N, 512)."""
    if runtime == "onnxruntime":
        ort = native.onnxruntime()
        if ort is None:
            raise InputError(
                "--runtime onnxruntime is not installed: pip install 'facesearch[fast]'"
            )
        return _onnxruntime_runner(ort, onnx_path)
    if runtime == "openvino":
        return _openvino_runner(onnx_path, "bf16" if precision == "bf16" else "f32")
    raise ValueError(runtime)


_OPENVINO_COMPILE_LOCK = threading.Lock()  # threads meeting a network first compile in turn


class OpenVINORequests:
    """The calling thread's infer request on an OpenVINO network on the CPU, for the number of
    threads it is given, made on first use. No thread is pinned to a core: pinned, detection and
    embedding threads running side by side ended up sharing one core.

    ``shared``: per thread count one compiled network, with as many streams (inferences at once)
    as the cores hold, that the calling threads share (FaceNet: about 180 MB a compile). Else
    each calling thread compiles its own with one stream (MTCNN's small networks: about 40 ms).
    """

    def __init__(self, core: Any, model: Any, hint: str, shared: bool) -> None:
        self._core, self._model, self._hint, self._shared = core, model, hint, shared
        self._compiled: dict[int, Any] = {}
        self._local = threading.local()

    def _compile(self, threads: int) -> Any:
        if threads in self._compiled:
            return self._compiled[threads]
        streams = max(1, (os.cpu_count() or 1) // threads) if self._shared else 1
        config = {
            "INFERENCE_NUM_THREADS": threads * streams,
            "NUM_STREAMS": streams,
            "INFERENCE_PRECISION_HINT": self._hint,
            "ENABLE_CPU_PINNING": False,
        }
        compiled = self._core.compile_model(self._model, "CPU", config)
        if self._shared:
            self._compiled[threads] = compiled
        return compiled

    def get(self, threads: int) -> Any:
        requests: dict[int, Any] = self._local.__dict__.setdefault("requests", {})
        if threads not in requests:
            with _OPENVINO_COMPILE_LOCK:
                requests[threads] = self._compile(threads).create_infer_request()
        return requests[threads]


def _openvino_runner(onnx_path: Path, hint: str) -> Runner:
    """OpenVINO on as many threads as torch is given at the time of the call, like ONNX
    Runtime's runner; callers given fewer threads (the cameras' per-core workers) run side by
    side (``OpenVINORequests``, shared)."""
    import openvino as ov
    import torch

    core = ov.Core()
    requests = OpenVINORequests(core, core.read_model(str(onnx_path)), hint, shared=True)
    requests.get(max(1, torch.get_num_threads()))  # the usual one now, not inside the first call

    def run(x: np.ndarray) -> np.ndarray:
        request = requests.get(max(1, torch.get_num_threads()))
        return np.array(request.infer({0: np.ascontiguousarray(x, np.float32)})[0])

    return run


def _onnxruntime_runner(ort: Any, onnx_path: Path) -> Runner:
    """ONNX Runtime on as many threads as torch is given at the time of the call (the cameras
    give each worker its share), one session per thread count; sessions run concurrently."""
    import torch

    sessions: dict[int, Any] = {}
    lock = threading.Lock()

    def session(threads: int) -> Any:
        with lock:
            if threads not in sessions:
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = threads
                opts.inter_op_num_threads = 1
                # idle threads sleep rather than spin: the detector's torch threads share the cores
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                sessions[threads] = ort.InferenceSession(
                    str(onnx_path), opts, providers=["CPUExecutionProvider"]
                )
            return sessions[threads]

    session(max(1, torch.get_num_threads()))  # the usual one now, not inside the first call

    def run(x: np.ndarray) -> np.ndarray:
        sess = session(max(1, torch.get_num_threads()))
        return np.asarray(sess.run(None, {"crops": np.ascontiguousarray(x, np.float32)})[0])

    return run
