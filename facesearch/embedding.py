"""FaceNet embeddings: InceptionResnetV1 (VGGFace2 weights) over batches of face crops."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import CROP_MARGIN, CROP_SIZE, FLIP_TTA
from .device import resolve_device, resolve_precision
from .errors import WeightsError
from .runtimes import Runner, load_runner, onnx_file, resolve_runtime
from .weights import EMBEDDING_DIM, MODEL_ID, load_state_dict, resolve_weights

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# Singular values of the output layer below this share of the largest count as zero, and the
# subspace basis is rounded up to a multiple of SUBSPACE_STEP dimensions.
SUBSPACE_TOL = 0.05
SUBSPACE_STEP = 32


FLIP_TAG = "flip"  # the last part of the model id of flip-averaged embeddings


def flip_of(model_id: str) -> bool:
    """Whether embeddings with this model id (``FaceEmbedder.model_id``) are flip-averaged."""
    return model_id.rsplit("|", 1)[-1] == FLIP_TAG


def unflipped(model_id: str) -> str:
    """The model id without its flip tag: the same for both settings of one model and crop."""
    return model_id[: -len(FLIP_TAG) - 1] if flip_of(model_id) else model_id


class FaceEmbedder:
    """Maps standardised 160x160 crops to unit-norm 512-d vectors; weights load on first use.

    ``precision="auto"`` runs in bfloat16 on CPUs that compute it natively (about 2x faster;
    embeddings agree with fp32 to ~1e-4 in cosine) and in fp32 everywhere else, on ONNX Runtime
    where it is installed (``runtimes.py``). On CUDA ``"bf16"`` and ``"fp16"`` run under torch's
    autocast (docs/gpu.md).
    With ``flip`` (the default) each vector is the normalised sum of the crop's embedding and its
    mirror image's, which is steadier under pose and lighting (README, "Accuracy").
    """

    dim = EMBEDDING_DIM

    def __init__(
        self,
        weights: str | None = None,
        models_dir: str | None = None,
        device: str | None = None,
        precision: str = "auto",
        batch_size: int = 32,
        allow_download: bool = True,
        flip: bool = FLIP_TTA,
        runtime: str = "auto",
    ) -> None:
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        #: where the forward pass runs: "torch", "onnxruntime" or "openvino" (``runtimes.py``)
        self.runtime = resolve_runtime(runtime, self.precision, self.device)
        self._runner: Runner | None = None
        self.batch_size = batch_size
        self.flip = flip
        self._weights = Path(weights) if weights else None
        self._models_dir = models_dir
        self._allow_download = allow_download
        self._model = None
        self._load_lock = threading.Lock()
        self.weights_path: Path | None = None
        self.load_seconds: float | None = None
        self._subspace: tuple[np.ndarray | None] | None = None

    @property
    def model_id(self) -> str:
        """What produced the vectors (weights, crop, flip); galleries refuse any other id."""
        return f"{MODEL_ID}|crop{CROP_SIZE}m{CROP_MARGIN}" + (f"|{FLIP_TAG}" if self.flip else "")

    def load(self) -> FaceEmbedder:
        """Resolve, verify and load the weights now rather than on first use."""
        if self._model is not None:
            return self
        with self._load_lock:  # threads that need it at once load it once
            if self._model is None:
                self._load()
        return self

    def _load(self) -> None:
        import torch
        from facenet_pytorch import InceptionResnetV1

        t0 = time.perf_counter()
        if self._weights is not None:
            from .weights import KNOWN_WEIGHTS, verify

            known = {w.filename: w for w in KNOWN_WEIGHTS}
            if not self._weights.is_file():
                raise WeightsError(f"{self._weights}: no such weights file")
            if self._weights.name not in known:
                raise WeightsError(
                    f"{self._weights}: unknown weights file; expected one of {', '.join(known)}"
                )
            verify(self._weights, known[self._weights.name])
            path = self._weights
        else:
            path = resolve_weights(self._models_dir, allow_download=self._allow_download)
        model = InceptionResnetV1(pretrained=None, classify=False)
        try:
            model.load_state_dict(load_state_dict(path), strict=True)
        except RuntimeError as err:
            raise WeightsError(f"{path}: weights do not fit InceptionResnetV1 ({err})") from err
        model.eval().to(self.device)
        if self.runtime != "torch":
            self._runner = load_runner(self.runtime, onnx_file(model, path), self.precision)
        if self.device.type == "cpu":
            model = model.to(memory_format=torch.channels_last)
        self._model = model
        self.weights_path = path
        self.load_seconds = time.perf_counter() - t0
        log.info(
            "loaded %s from %s in %.2fs (%s)", MODEL_ID, path, self.load_seconds, self.precision
        )

    def subspace(self) -> np.ndarray | None:
        """An orthonormal basis (512, k) of the subspace every embedding of this model lies in,
        from the weights alone; None where that subspace is not under half of the 512 dimensions.

        The output layer is a linear map followed by batch norm, so before normalising every
        embedding is ``A x + c``: it lies in the span of ``A``'s columns and ``c``. For the
        VGGFace2 weights ``A`` has 50 singular values above 5 % of the largest (49 from 3.9 down
        to 3.4, then 0.42; the rest below 0.12), so k = 64 holds every embedding to within a few
        millionths of its squared length (docs/performance.md, "The index at scale"). A
        gallery's index searches on these 64 coordinates instead of 512 (``gallery/index.py``).
        """
        if self._subspace is None:
            import torch

            model = self.load()._model
            assert model is not None
            bn = model.last_bn
            weight = model.last_linear.weight.detach().cpu().double()
            scale = bn.weight.detach().cpu().double() / torch.sqrt(
                bn.running_var.detach().cpu().double() + bn.eps
            )
            offset = (
                bn.bias.detach().cpu().double() - scale * bn.running_mean.detach().cpu().double()
            )
            u, sv, _ = torch.linalg.svd(scale[:, None] * weight, full_matrices=False)
            rank = int((sv > SUBSPACE_TOL * sv[0]).sum()) + 1  # + the offset's direction
            k = -(-rank // SUBSPACE_STEP) * SUBSPACE_STEP
            basis = None
            if k < self.dim // 2:
                q, _ = torch.linalg.qr(torch.cat([offset[:, None], u[:, : k - 1]], dim=1))
                basis = np.ascontiguousarray(q.float().numpy())
            self._subspace = (basis,)
        return self._subspace[0]

    def embed(self, crops: torch.Tensor) -> np.ndarray:
        """Embeddings (N, 512) float32, L2-normalised, for crops (N, 3, 160, 160)."""
        import torch

        self.load()
        n = int(crops.shape[0])
        out = np.zeros((n, self.dim), np.float32)
        if n == 0:
            return out
        if self._runner is not None:
            return self._embed_with(self._runner, crops.numpy(), out)
        autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}
        with (
            torch.inference_mode(),
            torch.autocast(
                self.device.type,
                dtype=autocast.get(self.precision, torch.bfloat16),
                enabled=self.precision in autocast,
            ),
        ):
            for start in range(0, n, self.batch_size):
                batch = crops[start : start + self.batch_size].to(self.device)
                if self.device.type == "cpu":
                    batch = batch.contiguous(memory_format=torch.channels_last)
                if self.flip:  # the crops and their mirror images in one forward pass
                    batch = torch.cat([batch, torch.flip(batch, dims=[3])])
                emb = torch.nn.functional.normalize(self._model(batch).float(), dim=1)  # type: ignore[misc]
                if self.flip:
                    half = len(batch) // 2
                    emb = torch.nn.functional.normalize(emb[:half] + emb[half:], dim=1)
                out[start : start + len(emb)] = emb.cpu().numpy()
        return out

    def _embed_with(self, runner: Runner, crops: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``embed`` through an ONNX runtime: the same batches, flips and normalisation."""
        for start in range(0, len(crops), self.batch_size):
            batch = crops[start : start + self.batch_size]
            if self.flip:
                batch = np.concatenate([batch, batch[..., ::-1]])
            emb = runner(batch).astype(np.float32)
            emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            if self.flip:
                half = len(emb) // 2
                emb = emb[:half] + emb[half:]
                emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            out[start : start + len(emb)] = emb
        return out
