"""Where MTCNN's three networks run on a CPU: torch, or OpenVINO.

``benchmarks/detect_bench.py --nets`` on a 2-core AVX2-only AMD EPYC, fp32, one thread: OpenVINO
runs the P-, R- and O-Nets 1.3-2.8x as fast as torch (it fuses each convolution with its PReLU
and pooling; torch spends a quarter of PNet's and RNet's time in PReLU and a fifth in
max-pooling), and on two threads no faster than torch, these networks being too small to share
out. So on OpenVINO the cascade splits its work between one-thread workers instead
(``MTCNNCascade``). The faces found are torch's (``tests/test_mtcnn_runtime.py``) and
facenet-pytorch's (``tests/test_mtcnn.py``).

``"auto"`` picks OpenVINO on the CPU where it is installed (``pip install 'facesearch[fast]'``),
torch everywhere else."""

from __future__ import annotations

import importlib.util
import io
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError
from .runtimes import OpenVINORequests, export_onnx

if TYPE_CHECKING:
    import torch

DETECT_RUNTIMES = ("auto", "torch", "openvino")

_here = threading.local()  # a thread's own OpenVINO thread count (``use_threads``)


def _installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def resolve_detect_runtime(runtime: str, device: torch.device) -> str:
    """The runtime to use: the one asked for; "auto" is OpenVINO on the CPU where it is
    installed, torch everywhere else."""
    if runtime not in DETECT_RUNTIMES:
        raise InputError(f"unknown detection runtime {runtime!r}; use {', '.join(DETECT_RUNTIMES)}")
    installed = _installed()
    if runtime == "auto":
        return "openvino" if device.type == "cpu" and installed else "torch"
    if runtime == "openvino":
        if device.type != "cpu":
            raise InputError("--detect-runtime openvino runs on the CPU; use --device cpu")
        if not installed:
            raise InputError(
                "--detect-runtime openvino is not installed: pip install 'facesearch[fast]'"
            )
    return runtime


def use_threads(threads: int | None) -> None:
    """Run this thread's OpenVINO networks on ``threads`` threads (None: torch's setting)."""
    _here.threads = threads


def threads_here() -> int:
    """The threads this thread's OpenVINO networks run on (``use_threads``, else torch's)."""
    import torch

    return getattr(_here, "threads", None) or max(1, torch.get_num_threads())


def _channels_last(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` taking (N, H, W, 3) input: the cascade's crops and pyramid levels are laid out
    that way in memory, so they reach OpenVINO without a copy."""
    import torch

    class ChannelsLast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> Any:
            return self.net(x.permute(0, 3, 1, 2))

    return ChannelsLast()


class OpenVINONet:
    """One of MTCNN's networks compiled by OpenVINO, called as the torch module is: a
    (N, 3, H, W) float32 tensor (channels-last in memory) in, its outputs as tensors out.

    OpenVINO runs one inference at a time per compiled network, so each calling thread compiles
    its own (once per thread count; about 40 ms), with the threads it is given (``use_threads``)
    or else torch's setting, and without pinning them to cores: detection threads running side
    by side would otherwise share one core.

    Each input shape OpenVINO has not seen costs 1.5-3 ms more the first time, as it makes its
    kernels per shape: repeated sizes (a camera's frames, a phone's photos) run at full speed,
    a set of photos of all different sizes about a third slower than torch (docs/detection.md).
    Padding RNet's and ONet's batches to a few sizes was measured and did not pay.
    """

    def __init__(self, net: torch.nn.Module, example: tuple[int, int, int, int]) -> None:
        import openvino as ov
        import torch

        buf = io.BytesIO()
        n, c, h, w = example
        export_onnx(
            _channels_last(net.eval()),
            (torch.zeros(n, h, w, c),),
            buf,
            input_names=["x"],
            dynamic_axes={"x": {0: "n", 1: "h", 2: "w"}},
        )
        core = ov.Core()
        self._requests = OpenVINORequests(
            core, core.read_model(buf.getvalue()), "f32", shared=False
        )

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        import torch

        request = self._requests.get(threads_here())
        nhwc = np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy(), dtype=np.float32)
        result = request.infer({0: nhwc}, share_inputs=True)
        return tuple(torch.from_numpy(np.array(result[i])) for i in range(len(result)))
