"""``FaceSearch``: the library API that the CLI is a thin layer over.

>>> fs = FaceSearch("~/faces-gallery")
>>> report = fs.enroll("people/")           # people/<name>/*.jpg
>>> for face in fs.identify("group.jpg").faces:
...     print(face.name or "unknown", face.similarity, face.box)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Union

import numpy as np
from PIL import Image

from .config import display_location, resolve_gallery_location
from .crops import crop_faces
from .detection import FaceDetector, most_prominent
from .embedding import FaceEmbedder
from .errors import ImageError, InputError
from .gallery import GalleryBackend, open_gallery
from .gallery.index import IndexParams
from .images import LoadedImage, iter_files, load_image, to_rgb
from .names import validate_name
from .threshold import Threshold, name_for
from .types import (
    Box,
    Candidate,
    ChosenFace,
    EnrollReport,
    FaceMatch,
    FaceRecord,
    Faces,
    ImageResult,
    Person,
    Skip,
    as_box,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

ImageInput = Union[str, "os.PathLike[str]", Image.Image, np.ndarray, LoadedImage]


class FaceSearch:
    """Enroll people and identify faces against one gallery: a directory or a PostgreSQL URL.

    Models load on first use and can be injected (``detector=``, ``embedder=``), so several
    ``FaceSearch`` objects can share them.
    """

    def __init__(
        self,
        gallery: str | os.PathLike[str] | None = None,
        *,
        models_dir: str | None = None,
        device: str | None = None,
        precision: str = "auto",
        detector: FaceDetector | None = None,
        embedder: FaceEmbedder | None = None,
        allow_download: bool = True,
    ) -> None:
        location = resolve_gallery_location(gallery)
        #: where the gallery is: a directory (``Path``) or a ``postgresql://`` URL (``str``)
        self.gallery_location: Path | str = location
        #: the gallery directory, or None when the gallery is a PostgreSQL database
        self.gallery_dir: Path | None = location if isinstance(location, Path) else None
        self._device = device
        self._detector = detector
        self._embedder = embedder
        self._models_dir = models_dir
        self._precision = precision
        self._allow_download = allow_download
        self._reader: GalleryBackend | None = None

    @property
    def gallery_name(self) -> str:
        """The gallery's location fit to print (a URL without its password)."""
        return display_location(self.gallery_location)

    # -- components ----------------------------------------------------------------------------

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector(device=self._device)
        return self._detector

    @property
    def embedder(self) -> FaceEmbedder:
        if self._embedder is None:
            self._embedder = FaceEmbedder(
                models_dir=self._models_dir,
                device=self._device,
                precision=self._precision,
                allow_download=self._allow_download,
            )
        return self._embedder

    def _open(self, writable: bool) -> GalleryBackend:
        return open_gallery(
            self.gallery_location, self.embedder.model_id, self.embedder.dim, writable=writable
        )

    def _read_gallery(self) -> GalleryBackend:
        if self._reader is None:
            self._reader = self._open(writable=False)
        return self._reader

    def _invalidate_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def close(self) -> None:
        self._invalidate_reader()

    def __enter__(self) -> FaceSearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- enroll --------------------------------------------------------------------------------

    def enroll(
        self,
        folder: str | os.PathLike[str],
        progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> EnrollReport:
        """Enroll ``folder/<person>/...`` (recursive inside each person's folder).

        Photos already in the gallery (same content hash) are skipped, so re-running adds only
        what is new. ``progress(n)`` is called as photos are processed.
        """
        root = Path(folder)
        if not root.exists():
            raise InputError(f"{root}: no such folder")
        if not root.is_dir():
            raise InputError(f"{root}: not a folder (use enroll --name NAME FILE for one photo)")
        report = EnrollReport()
        tasks: list[tuple[str, Path]] = []
        entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
        if not entries:
            raise InputError(f"{root}: folder is empty; expected one sub-folder per person")
        subdirs = [p for p in entries if p.is_dir()]
        if not subdirs:
            raise InputError(
                f"{root}: no person sub-folders (expected {root}/<name>/*.jpg); "
                "for one person use: enroll --name NAME FILES..."
            )
        for p in entries:
            if not p.is_dir():
                report.skipped.append(Skip(str(p), "no_person", "not inside a person sub-folder"))
                continue
            try:
                name = validate_name(p.name)
            except InputError as err:
                report.skipped.append(Skip(str(p), "bad_name", str(err)))
                continue
            files = list(iter_files(p))
            if not files:
                report.skipped.append(Skip(str(p), "empty", "person folder has no files"))
            tasks.extend((name, f) for f in files)
        return self._enroll_tasks(tasks, report, progress, on_total)

    def enroll_person(
        self,
        name: str,
        paths: Sequence[str | os.PathLike[str]],
        progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> EnrollReport:
        """Enroll photos (files, or folders searched recursively) of one person."""
        name = validate_name(name)
        if not paths:
            raise InputError("no photos given")
        tasks: list[tuple[str, Path]] = []
        for raw in paths:
            p = Path(raw)
            if not p.exists():
                raise InputError(f"{p}: no such file or folder")
            if p.is_dir():
                files = list(iter_files(p))
                if not files:
                    raise InputError(f"{p}: folder is empty")
                tasks.extend((name, f) for f in files)
            else:
                tasks.append((name, p))
        return self._enroll_tasks(tasks, EnrollReport(), progress, on_total)

    def _enroll_tasks(
        self,
        tasks: list[tuple[str, Path]],
        report: EnrollReport,
        progress: Callable[[int], None] | None,
        on_total: Callable[[int], None] | None,
    ) -> EnrollReport:
        self._invalidate_reader()
        if on_total:
            on_total(len(tasks))
        self.embedder.load()
        with self._open(writable=True) as gallery:
            batch = _EnrollBatch(self.detector, self.embedder, gallery, report)
            for (person, path), loaded in zip(tasks, _prefetch(p for _, p in tasks)):
                report.photos_seen += 1
                if isinstance(loaded, Exception):
                    report.skipped.append(Skip(str(path), "unreadable", _reason(loaded, path)))
                else:
                    batch.add(person, loaded)
                if progress:
                    progress(1)
            batch.finish()
        return report

    # -- identify ------------------------------------------------------------------------------

    def identify(
        self,
        image: ImageInput,
        *,
        threshold: float | Threshold | None = None,
        top_k: int = 3,
        refine: str = "none",
        ef: int | None = None,
    ) -> ImageResult:
        """Every face in ``image`` (a path, PIL image or RGB array) with who it is, or None.

        ``threshold`` is the largest cosine distance accepted as a match; by default the
        gallery's calibrated value, else the measured default for the number of people enrolled
        (``threshold.py``); the result says which (``threshold``, ``threshold_source``). ``refine`` ("exact", "gradient")
        re-examines a wider pool of index candidates (``refine.py``). ``ef`` sets the HNSW search
        breadth for this call (default: the gallery's, which grows with its size unless set).
        """
        label, pil = _as_image(image)
        gallery = self._read_gallery()
        rule = gallery.threshold(threshold)
        faces = self.detector.detect(pil)
        vectors = self.embedder.embed(crop_faces(pil, faces))
        # at least two candidates per face, so that the runner-up is always reported
        candidates = gallery.search(
            vectors, k_people=max(top_k, 2), refine=refine, device=self._device, ef=ef
        )
        matches = []
        for j in range(len(faces)):
            cands = tuple(candidates[j])
            best = cands[0] if cands else None
            matches.append(
                FaceMatch(
                    box=as_box(faces.boxes[j]),
                    score=float(faces.scores[j]),
                    name=name_for(best, rule),
                    similarity=best.similarity if best else None,
                    distance=best.distance if best else None,
                    candidates=cands,
                )
            )
        return ImageResult(label, pil.width, pil.height, tuple(matches), rule.value, rule.source)

    def identify_many(
        self,
        images: Iterable[ImageInput],
        *,
        threshold: float | Threshold | None = None,
        top_k: int = 3,
        refine: str = "none",
        ef: int | None = None,
    ) -> Iterator[ImageResult | Exception]:
        """identify() over several images; a bad image yields its error instead of stopping."""
        for image in images:
            try:
                yield self.identify(image, threshold=threshold, top_k=top_k, refine=refine, ef=ef)
            except InputError as err:
                yield err

    def search_embeddings(
        self, vectors: np.ndarray, top_k: int = 3, refine: str = "none", ef: int | None = None
    ) -> list[list[Candidate]]:
        """Nearest enrolled people for already computed embeddings (e.g. from a video loop)."""
        return self._read_gallery().search(
            vectors, k_people=top_k, refine=refine, device=self._device, ef=ef
        )

    def threshold(self, explicit: float | Threshold | None = None) -> float:
        """The match threshold in force for this gallery (``explicit`` wins when given)."""
        return self.threshold_in_force(explicit).value

    def threshold_in_force(self, explicit: float | Threshold | None = None) -> Threshold:
        """The match threshold in force and why: ``explicit`` (the caller's), else the gallery's
        calibrated value, else the default for the people enrolled (``threshold.py``).
        Decide with ``threshold.name_for(candidate, this)``."""
        return self._read_gallery().threshold(explicit)

    def refresh(self) -> bool:
        """Reopen the gallery if another process changed it; returns True when it did."""
        if self._reader is not None and self._reader.changed_since_open():
            self._invalidate_reader()
            return True
        return False

    def enroll_face(
        self,
        name: str,
        image: ImageInput,
        *,
        box: Box | None = None,
        source: str | None = None,
    ) -> int:
        """Enroll one face of an in-memory image (a video frame): the one at ``box``, else the
        most prominent. Returns its label. The same pixels cannot be enrolled twice."""
        import hashlib

        name = validate_name(name)
        label, pil = _as_image(image)
        if box is None:
            faces = self.detector.detect(pil)
            if len(faces) == 0:
                raise InputError(f"{label}: no face detected")
            faces = faces[most_prominent(faces, pil.size)]
        else:
            faces = Faces.from_boxes(np.array([box]))
        vector = self.embedder.embed(crop_faces(pil, faces))[0]
        digest = hashlib.sha256(pil.tobytes()).hexdigest()
        self._invalidate_reader()
        with self._open(writable=True) as gallery:
            owner = gallery.owner_of_hash(digest)
            if owner is not None:
                raise InputError(f"this image is already enrolled as {owner!r}")
            record = FaceRecord(
                name,
                source or label,
                digest,
                as_box(faces.boxes[0]),
                float(faces.scores[0]),
                vector,
            )
            return gallery.add([record])[0]

    # -- gallery management --------------------------------------------------------------------

    def people(self) -> list[Person]:
        return self._read_gallery().people()

    def remove(self, name: str) -> int:
        """Remove a person and all their faces; returns the number of faces removed."""
        self._invalidate_reader()
        with self._open(writable=True) as gallery:
            return gallery.remove_person(name)

    def reindex(self, params: IndexParams | None = None) -> int:
        """Rebuild the HNSW index from the database (with ``params``: as the gallery's new ones)."""
        self._invalidate_reader()
        with self._open(writable=True) as gallery:
            return gallery.reindex(params)

    def index_params(self) -> IndexParams:
        """The HNSW parameters of this gallery's index as it is now."""
        return self._read_gallery().index_params

    def set_threshold(self, value: float | None, source: str = "set by user") -> None:
        """Store (or with None, clear) the gallery's match threshold."""
        self._invalidate_reader()
        with self._open(writable=True) as gallery:
            gallery.set_threshold(value, source)

    def info(self) -> dict[str, object]:
        data = self._read_gallery().info()
        emb = self.embedder.load()
        data["weights"] = str(emb.weights_path) if emb.weights_path else None
        data["device"] = str(emb.device)
        data["precision"] = emb.precision
        return data


class _EnrollBatch:
    """Turns decoded photos into committed faces: dedupe, detect, pick the subject, embed, store.

    Detection runs on small windows of photos; embeddings and the database commit happen per
    ``embedder.batch_size`` faces, so an interruption loses at most one uncommitted batch.
    """

    detect_window = 8

    def __init__(
        self,
        detector: FaceDetector,
        embedder: FaceEmbedder,
        gallery: GalleryBackend,
        report: EnrollReport,
    ) -> None:
        self.detector, self.embedder, self.gallery, self.report = (
            detector,
            embedder,
            gallery,
            report,
        )
        self.seen: dict[str, str] = {}  # content hash -> person, for duplicates within this run
        self.to_detect: list[tuple[str, LoadedImage]] = []
        self.crops: list[torch.Tensor] = []
        self.faces: list[tuple[str, LoadedImage, Box, float]] = []

    def add(self, person: str, image: LoadedImage) -> None:
        owner = self.seen.get(image.sha256) or self.gallery.owner_of_hash(image.sha256)
        if owner is not None:
            detail = f"same photo already enrolled as {owner!r}"
            self.report.skipped.append(Skip(image.path, "duplicate", detail))
            return
        self.seen[image.sha256] = person
        self.to_detect.append((person, image))
        if len(self.to_detect) >= self.detect_window:
            self._detect()
        if len(self.faces) >= self.embedder.batch_size:
            self._commit()

    def finish(self) -> None:
        self._detect()
        self._commit()

    def _detect(self) -> None:
        found = self.detector.detect_many([img.image for _, img in self.to_detect])
        for (person, img), faces in zip(self.to_detect, found):
            if len(faces) == 0:
                self.report.skipped.append(Skip(img.path, "no_face", "no face detected"))
                continue
            i = most_prominent(faces, img.size)
            box = as_box(faces.boxes[i])
            if len(faces) > 1:
                self.report.chosen.append(ChosenFace(img.path, len(faces), box))
            self.crops.append(crop_faces(img.image, faces[i]))
            self.faces.append((person, img, box, float(faces.scores[i])))
        self.to_detect.clear()

    def _commit(self) -> None:
        if not self.faces:
            return
        import torch

        vectors = self.embedder.embed(torch.cat(self.crops))
        records = [
            FaceRecord(person, img.path, img.sha256, box, score, vec)
            for (person, img, box, score), vec in zip(self.faces, vectors)
        ]
        self.gallery.add(records)
        for r in records:
            self.report.added[r.person] = self.report.added.get(r.person, 0) + 1
        self.crops.clear()
        self.faces.clear()


def _as_image(image: ImageInput) -> tuple[str, Image.Image]:
    if isinstance(image, LoadedImage):
        return image.path, image.image
    if isinstance(image, Image.Image):
        return "<image>", to_rgb(image)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(
                f"expected an RGB uint8 array (H, W, 3), got {image.dtype} {image.shape}"
            )
        return "<array>", Image.fromarray(image, "RGB")
    loaded = load_image(image)
    return loaded.path, loaded.image


def _reason(err: Exception, path: Path) -> str:
    msg = str(err)
    prefix = f"{path}: "
    return msg[len(prefix) :] if msg.startswith(prefix) else msg


def _load_or_error(path: Path) -> LoadedImage | Exception:
    try:
        return load_image(path)
    except (ImageError, InputError) as err:
        return err


def _prefetch(
    paths: Iterable[Path], workers: int = 2, ahead: int = 16
) -> Iterator[LoadedImage | Exception]:
    """Read, hash and decode photos in background threads, in order, a bounded window ahead."""
    from collections import deque

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="facesearch-decode") as pool:
        window: deque = deque()
        it = iter(paths)
        for p in it:
            window.append(pool.submit(_load_or_error, p))
            if len(window) >= ahead:
                break
        while window:
            result = window.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                window.append(pool.submit(_load_or_error, nxt))
            yield result
