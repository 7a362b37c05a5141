"""Face detection with MTCNN: every face of an image, as a ``Faces`` table."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from .device import resolve_device
from .types import Faces

log = logging.getLogger(__name__)


BACKENDS = ("facesearch", "facenet-pytorch")


class FaceDetector:
    """MTCNN over whole images; the networks load on first use.

    ``backend="facesearch"`` (the default) runs the batched cascade of ``mtcnn.py``: the same
    networks, weights and faces as facenet-pytorch's ``MTCNN``, several times less overhead and
    any number of images of any sizes per call. ``backend="facenet-pytorch"`` runs
    facenet-pytorch's own ``MTCNN.detect`` (for comparison: ``benchmarks/detect_bench.py``).

    Images whose longer side exceeds ``max_side`` are detected on a downscaled copy (MTCNN's cost
    grows with pixels; faces smaller than ``min_face_size`` at that scale are not sought) and the
    boxes are mapped back to full resolution, where crops are taken.

    MTCNN misses faces that fill the whole frame (tightly cropped portraits), so an image with no
    face is tried once more with a 20% border around it.

    ``runtime`` says where the cascade's networks run: "auto" (OpenVINO on the CPU where it is
    installed, else torch), "torch" or "openvino" (``mtcnn_runtime.py``).
    """

    def __init__(
        self,
        device: str | None = None,
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        max_side: int = 2048,
        pad_retry: float = 0.2,
        backend: str = "facesearch",
        runtime: str = "auto",
    ) -> None:
        from .mtcnn_runtime import resolve_detect_runtime

        if backend not in BACKENDS:
            raise ValueError(f"unknown detector backend {backend!r}; use one of {BACKENDS}")
        self.device = resolve_device(device)
        #: where the networks run: "torch" or "openvino" (facenet-pytorch's backend: torch)
        self.runtime = (
            resolve_detect_runtime(runtime, self.device) if backend == "facesearch" else "torch"
        )
        self._runtime_chosen = runtime == "auto"  # a failing OpenVINO falls back to torch
        self.min_face_size = min_face_size
        self.thresholds = list(thresholds)
        self.max_side = max_side
        self.pad_retry = pad_retry
        self.backend = backend
        self._mtcnn: Any = None
        self._load_lock = threading.Lock()

    def settings_key(self) -> str:
        """Everything that changes which faces are found and how they are cropped (cache keys).
        Both backends and both runtimes find the same faces, so neither is part of it."""
        from .config import CROP_MARGIN, CROP_SIZE

        return (
            f"mtcnn|{self.min_face_size}|{self.thresholds}|{self.max_side}|{self.pad_retry}"
            f"|crop{CROP_SIZE}m{CROP_MARGIN}"
        )

    def load(self) -> FaceDetector:
        """Load the networks now rather than on first use."""
        _ = self.mtcnn
        return self

    @property
    def mtcnn(self) -> Any:
        """The loaded detector: an ``MTCNNCascade``, or facenet-pytorch's ``MTCNN``."""
        if self._mtcnn is not None:
            return self._mtcnn
        with self._load_lock:  # threads that need it at once load it once
            if self._mtcnn is None:
                self._mtcnn = self._load()
        return self._mtcnn

    def _load(self) -> Any:
        import torch

        if self.backend == "facesearch":
            from .mtcnn import MTCNNCascade

            def cascade() -> MTCNNCascade:
                return MTCNNCascade(
                    device=self.device,
                    min_face_size=self.min_face_size,
                    thresholds=self.thresholds,
                    runtime=self.runtime,
                )

            try:
                return cascade()
            except Exception as err:
                if self.runtime != "openvino" or not self._runtime_chosen:
                    raise
                log.warning("MTCNN on OpenVINO failed to load (%s); running it on torch", err)
                self.runtime = "torch"
                return cascade()
        from facenet_pytorch import MTCNN

        m = MTCNN(
            keep_all=True,
            select_largest=False,
            min_face_size=self.min_face_size,
            thresholds=self.thresholds,
            device=self.device,
        ).eval()
        if self.device.type == "cpu":
            # oneDNN's NHWC kernels (max-pool above all) run these small nets ~1.4x faster.
            for net in (m.pnet, m.rnet, m.onet):
                net.to(memory_format=torch.channels_last)
        return m

    def _scale_for(self, size: tuple[int, int]) -> float:
        return min(1.0, self.max_side / max(size))

    def detect(self, image: Image.Image) -> Faces:
        """All faces in one RGB image, most confident first."""
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[Image.Image]) -> list[Faces]:
        """Detect faces in several images at once (one cascade call for all of them)."""
        prepared: list[Image.Image] = []
        scales: list[float] = []
        for img in images:
            s = self._scale_for(img.size)
            if s < 1.0:
                w, h = img.size
                img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
            prepared.append(img)
            scales.append(s)
        if self.backend == "facenet-pytorch":
            return self._detect_facenet_pytorch(images, prepared, scales)
        arrays = [np.asarray(img) for img in prepared]
        found = self.mtcnn.detect(arrays)
        results = [
            _to_faces(d.boxes, d.scores, d.landmarks, s, img.size)
            for d, s, img in zip(found, scales, images)
        ]
        retry = [i for i, faces in enumerate(results) if len(faces) == 0]
        if self.pad_retry and retry:
            pads = [max(1, int(round(max(prepared[i].size) * self.pad_retry))) for i in retry]
            padded = [np.pad(arrays[i], ((p, p), (p, p), (0, 0))) for i, p in zip(retry, pads)]
            for i, p, d in zip(retry, pads, self.mtcnn.detect(padded)):
                results[i] = _to_faces(
                    d.boxes - np.float32(p),
                    d.scores,
                    d.landmarks - np.float32(p),
                    scales[i],
                    images[i].size,
                )
        return results

    def _detect_facenet_pytorch(
        self, images: Sequence[Image.Image], prepared: list[Image.Image], scales: list[float]
    ) -> list[Faces]:
        """facenet-pytorch's ``MTCNN.detect``: equal-sized images share one batch."""
        import torch

        results: list[Faces | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(prepared):
            groups.setdefault(img.size, []).append(i)
        with torch.inference_mode():
            for idxs in groups.values():
                batch = [prepared[i] for i in idxs]
                boxes, probs, points = self.mtcnn.detect(batch, landmarks=True)
                for j, i in enumerate(idxs):
                    results[i] = _to_faces(boxes[j], probs[j], points[j], scales[i], images[i].size)
            if self.pad_retry:
                for i, faces in enumerate(results):
                    if faces is not None and len(faces) == 0:
                        results[i] = self._detect_padded(prepared[i], scales[i], images[i].size)
        return results  # type: ignore[return-value]

    def _detect_padded(self, image: Image.Image, scale: float, size: tuple[int, int]) -> Faces:
        pad = max(1, int(round(max(image.size) * self.pad_retry)))
        padded = ImageOps.expand(image, pad, fill=(0, 0, 0))
        boxes, probs, points = self.mtcnn.detect([padded], landmarks=True)
        if boxes[0] is None:
            return Faces.empty()
        shift = np.float32(pad)
        return _to_faces(boxes[0] - shift, probs[0], points[0] - shift, scale, size)


def _to_faces(boxes, probs, points, scale: float, size: tuple[int, int]) -> Faces:
    if boxes is None or len(boxes) == 0:
        return Faces.empty()
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) / scale
    p = np.asarray(probs, dtype=np.float32).reshape(-1)
    lm = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2) / scale
    w, h = size
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
    keep = (b[:, 2] - b[:, 0] >= 1) & (b[:, 3] - b[:, 1] >= 1)
    order = np.argsort(-p[keep], kind="stable")
    return Faces(b[keep][order], p[keep][order], lm[keep][order])


def prominence(faces: Faces, size: tuple[int, int]) -> np.ndarray:
    """How much each face looks like the photo's subject: large and near the centre.

    The face's side length times its detection score, discounted linearly with its centre's
    distance from the image centre (as a fraction of the image size): a face a third of the way
    out needs twice the side length of a centred one to win, a face at an edge four times.
    Portraits and LFW-style photos are centred on their subject, while the largest face is
    sometimes someone else's in the foreground.
    """
    if len(faces) == 0:
        return np.zeros((0,), np.float32)
    w, h = size
    cx = (faces.boxes[:, 0] + faces.boxes[:, 2]) / 2
    cy = (faces.boxes[:, 1] + faces.boxes[:, 3]) / 2
    off = np.hypot((cx - w / 2) / w, (cy - h / 2) / h)
    side = np.sqrt(np.maximum(faces.areas, 0))
    return side * np.maximum(0.05, 1.0 - 1.5 * off) * faces.scores


def most_prominent(faces: Faces, size: tuple[int, int]) -> int:
    """Index of the photo's subject among ``faces`` (which must not be empty)."""
    if len(faces) == 0:
        raise ValueError("no faces to choose from")
    return int(np.argmax(prominence(faces, size)))
