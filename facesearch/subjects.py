"""Photos in, each photo's subject out, embedded in batches: how enroll and evaluate read photos.

A photo's subject is its most prominent face (``detection.most_prominent``) among those that pass
the quality gate (``quality.QualityGate``); a photo whose faces all fall below it has no subject.
Photos are detected
a small window at a time (equal-sized photos share one MTCNN batch) and the subjects' crops are
embedded ``embedder.batch_size`` at a time, so memory stays bounded on any number of photos and
an interrupted enroll loses at most one uncommitted batch. ``enroll`` and ``evaluate`` both go
through ``SubjectBatcher``, so a calibration measures exactly the embeddings enroll stores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

from .crops import crop_faces
from .detection import FaceDetector, most_prominent
from .embedding import FaceEmbedder
from .images import LoadedImage
from .quality import DEFAULT_GATE, QualityGate, passes_gate
from .types import Box, as_box

if TYPE_CHECKING:
    import torch

K = TypeVar("K")

DETECT_WINDOW = 16  # photos per detection call


@dataclass(frozen=True, eq=False)
class Subject:
    """The face chosen in one photo: where it is, how sure the detector was, and how many faces
    it saw that pass the quality gate."""

    image: LoadedImage
    box: Box
    score: float
    faces_found: int


class SubjectBatcher(Generic[K]):
    """Feed ``add(key, photo)``; get ``on_embedded(keys, subjects, vectors)`` per batch.

    ``key`` is the caller's tag for a photo (a person's name, a row number) and comes back with
    its subject. A photo with no face goes to ``on_no_face(key, photo)``, one whose faces are
    all below ``gate`` (None: no gate) to ``on_low_quality(key, photo)``. Call ``flush()`` at
    the end (and whenever everything added so far must be embedded).
    """

    def __init__(
        self,
        detector: FaceDetector,
        embedder: FaceEmbedder,
        on_embedded: Callable[[list[K], list[Subject], np.ndarray], None],
        on_no_face: Callable[[K, LoadedImage], None] | None = None,
        detect_window: int = DETECT_WINDOW,
        gate: QualityGate | None = DEFAULT_GATE,
        on_low_quality: Callable[[K, LoadedImage], None] | None = None,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.on_embedded = on_embedded
        self.on_no_face = on_no_face
        self.detect_window = detect_window
        self.gate = gate
        self.on_low_quality = on_low_quality
        self._to_detect: list[tuple[K, LoadedImage]] = []
        self._keys: list[K] = []
        self._subjects: list[Subject] = []
        self._crops: list[torch.Tensor] = []

    def add(self, key: K, image: LoadedImage) -> None:
        self._to_detect.append((key, image))
        if len(self._to_detect) >= self.detect_window:
            self._detect()
        if len(self._subjects) >= self.embedder.batch_size:
            self._embed()

    def flush(self) -> None:
        self._detect()
        self._embed()

    def _detect(self) -> None:
        if not self._to_detect:
            return
        found = self.detector.detect_many([img.image for _, img in self._to_detect])
        for (key, img), faces in zip(self._to_detect, found):
            if len(faces) == 0:
                if self.on_no_face is not None:
                    self.on_no_face(key, img)
                continue
            faces = faces[passes_gate(faces, self.gate)]
            if len(faces) == 0:
                if self.on_low_quality is not None:
                    self.on_low_quality(key, img)
                continue
            i = most_prominent(faces, img.size)
            self._crops.append(crop_faces(img.image, faces[i]))
            self._keys.append(key)
            self._subjects.append(
                Subject(img, as_box(faces.boxes[i]), float(faces.scores[i]), len(faces))
            )
        self._to_detect.clear()

    def _embed(self) -> None:
        if not self._subjects:
            return
        import torch

        vectors = self.embedder.embed(torch.cat(self._crops))
        keys, subjects = list(self._keys), list(self._subjects)
        self._keys.clear()
        self._subjects.clear()
        self._crops.clear()
        self.on_embedded(keys, subjects, vectors)
