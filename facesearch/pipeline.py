"""``FaceSearch``: the library API that the CLI is a thin layer over.

>>> fs = FaceSearch("~/faces-gallery")
>>> report = fs.enroll("people/")           # people/<name>/*.jpg
>>> for face in fs.identify("group.jpg").faces:
...     print(face.name or "unknown", face.similarity, face.box)
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np
from PIL import Image

from .config import FLIP_TTA, display_location, resolve_gallery_location
from .crops import crop_faces, face_thumbnail
from .detection import FaceDetector, most_prominent
from .embedding import FaceEmbedder, flip_of, unflipped
from .errors import (
    GalleryError,
    InputError,
    ModelMismatchError,
    NoFaceError,
    PersonNotFoundError,
)
from .gallery import GalleryBackend, open_gallery, recorded_model
from .gallery.index import IndexParams
from .images import (
    LoadedImage,
    image_from_bytes,
    iter_files,
    load_image,
    prefetch_images,
    to_rgb,
)
from .names import validate_name
from .quality import DEFAULT_GATE, QualityGate, passes_gate
from .subjects import Subject, SubjectBatcher
from .threshold import Threshold, given, is_match, name_for, verification_threshold
from .types import (
    Box,
    Candidate,
    ChosenFace,
    ClusterReport,
    EnrollReport,
    FaceInfo,
    FaceMatch,
    FaceRecord,
    Faces,
    ImageResult,
    NamedCluster,
    Person,
    PhotoHit,
    RenameResult,
    ScanReport,
    Skip,
    Verification,
    VerifiedFace,
    as_box,
)

log = logging.getLogger(__name__)

ImageInput = Union[str, "os.PathLike[str]", Image.Image, np.ndarray, LoadedImage]


class FaceSearch:
    """Enroll people and identify faces against one gallery: a directory or a PostgreSQL URL.

    Models load on first use and can be injected (``detector=``, ``embedder=``), so several
    ``FaceSearch`` objects can share them. One object may be shared by many threads (a server):
    models load once, searches share one open gallery that is reopened when any process has
    written to it, and writes from this process queue for the gallery one at a time.

    ``quality_gate`` (``quality.QualityGate``; None turns it off) decides which detections are
    faces worth naming: identify reports the others with ``quality="low"`` and no name, enroll
    and evaluate never take them as a photo's subject, live does not embed them.

    ``flip`` (None: as the gallery was made, or on for a new one) chooses whether each face is
    embedded with its mirror image averaged in: off, FaceNet runs once per face instead of twice
    (enroll about 1.5x faster on a CPU without native bf16) for fewer known people named (docs/
    accuracy.md). A gallery keeps the setting its first faces were embedded with.
    """

    def __init__(
        self,
        gallery: str | os.PathLike[str] | None = None,
        *,
        models_dir: str | None = None,
        device: str | None = None,
        precision: str = "auto",
        runtime: str = "auto",
        detect_runtime: str = "auto",
        detector: FaceDetector | None = None,
        embedder: FaceEmbedder | None = None,
        allow_download: bool = True,
        write_wait: float = 30.0,
        quality_gate: QualityGate | None = DEFAULT_GATE,
        flip: bool | None = None,
    ) -> None:
        location = resolve_gallery_location(gallery)
        #: where the gallery is: a directory (``Path``) or a ``postgresql://`` URL (``str``)
        self.gallery_location: Path | str = location
        #: the gallery directory, or None when the gallery is a PostgreSQL database
        self.gallery_dir: Path | None = location if isinstance(location, Path) else None
        #: how long a write waits for another process's write to the same directory gallery
        self.write_wait = write_wait
        #: the rule for which detections are named, enrolled and evaluated (None: all of them)
        self.quality_gate = quality_gate
        self._device = device
        self._detector = detector
        self._detectors: dict[tuple[int, bool], FaceDetector] = {}
        self._embedder = embedder
        self._models_dir = models_dir
        self._precision = precision
        self._runtime = runtime
        self._detect_runtime = detect_runtime
        self._flip = flip
        self._allow_download = allow_download
        self._reader: GalleryBackend | None = None
        self._parts_lock = threading.Lock()  # lazy construction of detectors and the embedder
        self._reader_lock = threading.RLock()  # one thread at a time uses the open reader
        self._write_lock = threading.Lock()  # this process's writers, one at a time

    @property
    def gallery_name(self) -> str:
        """The gallery's location fit to print (a URL without its password)."""
        return display_location(self.gallery_location)

    # -- components ----------------------------------------------------------------------------

    @property
    def detector(self) -> FaceDetector:
        """The detector enroll and identify use (MTCNN, loaded on first use)."""
        if self._detector is None:
            with self._parts_lock:
                if self._detector is None:
                    self._detector = FaceDetector(device=self._device, runtime=self._detect_runtime)
        return self._detector

    @property
    def embedder(self) -> FaceEmbedder:
        """The FaceNet embedder (weights resolved and loaded on first use). It flip-averages
        as the gallery's faces were, unless ``flip`` says otherwise (``_flip``)."""
        if self._embedder is None:
            with self._parts_lock:
                if self._embedder is None:
                    self._embedder = FaceEmbedder(
                        models_dir=self._models_dir,
                        device=self._device,
                        precision=self._precision,
                        runtime=self._runtime,
                        allow_download=self._allow_download,
                        flip=self._flip_setting(),
                    )
        return self._embedder

    def _flip_setting(self) -> bool:
        """``flip`` as given; else as recorded in an existing gallery; else ``FLIP_TTA``. A new
        gallery records the setting its first faces were embedded with (``FaceEmbedder.model_id``)
        and is never mixed: faces embedded otherwise are refused (``ModelMismatchError``)."""
        if self._flip is not None:
            return self._flip
        try:
            recorded = recorded_model(self.gallery_location)
        except GalleryError:  # unreadable or unreachable: opening it will say why
            recorded = None
        return FLIP_TTA if recorded is None else flip_of(recorded)

    def load_models(self) -> None:
        """Load the detector and the embedder now (a server does this before it says ready)."""
        self.embedder.load()
        self.detector.load()

    # -- the gallery ---------------------------------------------------------------------------

    def _open(self, writable: bool) -> GalleryBackend:
        emb = self.embedder
        try:
            return open_gallery(
                self.gallery_location,
                emb.model_id,
                emb.dim,
                writable=writable,
                wait=self.write_wait if writable else 0.0,
                subspace=emb.subspace,
            )
        except ModelMismatchError as err:
            recorded = recorded_model(self.gallery_location) or ""
            if self._flip is None or unflipped(recorded) != unflipped(emb.model_id):
                raise  # not --flip against the gallery's setting: another model or crop
            made = "with" if flip_of(recorded) else "without"
            raise ModelMismatchError(
                f"{self.gallery_name}: its faces were embedded {made} flip averaging, and a "
                f"gallery keeps one kind: leave out --flip, or use another --gallery"
            ) from err

    @contextmanager
    def _reading(self) -> Iterator[GalleryBackend]:
        """The open read-only gallery, reopened first if anyone has written to it since."""
        with self._reader_lock:
            if self._reader is not None and self._reader.changed_since_open():
                self._drop_reader()
            if self._reader is None:
                self._reader = self._open(writable=False)
            yield self._reader

    @contextmanager
    def _writing(self) -> Iterator[GalleryBackend]:
        """The gallery open for writing, for one operation; readers reopen afterwards."""
        with self._write_lock, self._open(writable=True) as gallery:
            yield gallery
        with self._reader_lock:
            self._drop_reader()

    def _drop_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def refresh(self) -> bool:
        """Reopen the gallery if another process changed it; returns True when it did."""
        with self._reader_lock:
            if self._reader is not None and self._reader.changed_since_open():
                self._drop_reader()
                return True
        return False

    def ensure_gallery(self) -> None:
        """Create the gallery, empty, if there is none at its location yet (a server starts on
        an empty gallery and shows no one instead of an error); an existing one is only opened."""
        try:
            with self._reading():
                return
        except GalleryError:
            pass  # none yet (or unreadable: the writable open below says why)
        with self._writing():
            pass

    def close(self) -> None:
        with self._reader_lock:
            self._drop_reader()

    def __enter__(self) -> FaceSearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- stages: detect, embed, match ----------------------------------------------------------

    def detect(
        self, image: ImageInput, *, min_face: int | None = None, padded_retry: bool = True
    ) -> Faces:
        """Every face in ``image``, most confident first.

        ``min_face`` (pixels) and ``padded_retry=False`` (no second try with a border when no
        face is found: right for video, where empty frames are normal) select a detector with
        those settings; the default is the one enroll and identify use.
        """
        _, pil = _as_image(image)
        return self._detector_for(min_face, padded_retry).detect(pil)

    def detect_many(
        self,
        images: Sequence[ImageInput],
        *,
        min_face: int | None = None,
        padded_retry: bool = True,
    ) -> list[Faces]:
        """``detect`` for several images in one cascade call (the server's cameras batch their
        frames this way)."""
        pils = [_as_image(image)[1] for image in images]
        return self._detector_for(min_face, padded_retry).detect_many(pils) if pils else []

    def _detector_for(self, min_face: int | None, padded_retry: bool) -> FaceDetector:
        default = self.detector
        if (min_face is None or min_face == default.min_face_size) and (
            padded_retry == bool(default.pad_retry)
        ):
            return default
        key = (min_face or default.min_face_size, padded_retry)
        with self._parts_lock:
            if key not in self._detectors:
                self._detectors[key] = FaceDetector(
                    device=str(default.device),
                    min_face_size=key[0],
                    thresholds=default.thresholds,
                    max_side=default.max_side,
                    pad_retry=default.pad_retry if padded_retry else 0.0,
                    runtime=default.runtime,
                )
            return self._detectors[key]

    def embed_faces(self, image: ImageInput, faces: Faces) -> np.ndarray:
        """The embedding (N, 512), unit norm, of each face of ``faces`` in ``image``."""
        _, pil = _as_image(image)
        return self.embedder.embed(crop_faces(pil, faces))

    def embed_faces_many(self, items: Sequence[tuple[ImageInput, Faces]]) -> list[np.ndarray]:
        """``embed_faces`` for the faces of several images in one FaceNet batch."""
        import torch

        crops = [crop_faces(_as_image(image)[1], faces) for image, faces in items]
        if not crops:
            return []
        vectors = self.embedder.embed(torch.cat(crops))
        bounds = np.cumsum([0] + [len(c) for c in crops])
        return [vectors[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def match_embeddings(
        self,
        vectors: np.ndarray,
        faces: Faces,
        *,
        threshold: float | Threshold | None = None,
        top_k: int = 3,
        refine: str = "none",
        ef: int | None = None,
    ) -> list[FaceMatch]:
        """Who each face is (``faces[i]`` embedded as ``vectors[i]``), or None: the one rule
        identify, live and the server all use (``gallery.scoring`` ranks people,
        ``threshold.name_for`` decides)."""
        with self._reading() as gallery:
            rule = gallery.threshold(threshold)
            # at least two candidates per face, so that the runner-up is always reported
            candidates = gallery.search(
                vectors, k_people=max(top_k, 2), refine=refine, device=self._device, ef=ef
            )
        return _matches(faces, candidates, rule)

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

    def enroll_uploads(self, name: str, photos: Iterable[tuple[str, bytes]]) -> EnrollReport:
        """Enroll photos of one person held in memory, as ``(label, file bytes)`` (uploads);
        ``label`` (e.g. the uploaded file's name) names each photo in the report."""
        name = validate_name(name)

        def decoded() -> Iterator[tuple[str, str, LoadedImage | Exception]]:
            for label, data in photos:
                try:
                    yield name, label, image_from_bytes(data, label)
                except InputError as err:
                    yield name, label, err

        return self._enroll_loaded(decoded(), EnrollReport())

    def _enroll_tasks(
        self,
        tasks: list[tuple[str, Path]],
        report: EnrollReport,
        progress: Callable[[int], None] | None,
        on_total: Callable[[int], None] | None,
    ) -> EnrollReport:
        if on_total:
            on_total(len(tasks))
        loaded = prefetch_images(p for _, p in tasks)
        return self._enroll_loaded(
            ((person, str(p), img) for (person, p), img in zip(tasks, loaded)), report, progress
        )

    def _enroll_loaded(
        self,
        photos: Iterable[tuple[str, str, LoadedImage | Exception]],
        report: EnrollReport,
        progress: Callable[[int], None] | None = None,
    ) -> EnrollReport:
        """Dedupe, detect, pick each photo's subject, embed, and commit batch by batch."""
        self.embedder.load()
        with self._writing() as gallery:
            seen: dict[str, str] = {}  # content hash -> person, for duplicates within this run

            def commit(people: list[str], subjects: list[Subject], vectors: np.ndarray) -> None:
                records = [
                    FaceRecord(
                        person,
                        s.image.path,
                        s.image.sha256,
                        s.box,
                        s.score,
                        v,
                        face_thumbnail(s.image.image, s.box),
                    )
                    for person, s, v in zip(people, subjects, vectors)
                ]
                gallery.add(records)
                for person, s in zip(people, subjects):
                    report.added[person] = report.added.get(person, 0) + 1
                    if s.faces_found > 1:
                        report.chosen.append(ChosenFace(s.image.path, s.faces_found, s.box))

            def no_face(_: str, image: LoadedImage) -> None:
                report.skipped.append(Skip(image.path, "no_face", "no face detected"))

            def low_quality(_: str, image: LoadedImage) -> None:
                detail = "every face found is below the quality gate"
                report.skipped.append(Skip(image.path, "low_quality", detail))

            batcher = SubjectBatcher(
                self.detector,
                self.embedder,
                commit,
                no_face,
                gate=self.quality_gate,
                on_low_quality=low_quality,
            )
            for person, label, image in photos:
                report.photos_seen += 1
                if isinstance(image, Exception):
                    report.skipped.append(Skip(label, "unreadable", _reason(image, label)))
                else:
                    owner = seen.get(image.sha256) or gallery.owner_of_hash(image.sha256)
                    if owner is not None:
                        detail = f"same photo already enrolled as {owner!r}"
                        report.skipped.append(Skip(image.path, "duplicate", detail))
                    else:
                        seen[image.sha256] = person
                        batcher.add(person, image)
                if progress:
                    progress(1)
            batcher.flush()
        return report

    def enroll_face(
        self,
        name: str,
        image: ImageInput,
        *,
        box: Box | None = None,
        source: str | None = None,
        min_score: float | None = None,
    ) -> int:
        """Enroll one face of an in-memory image (a video frame): the one at ``box``, else the
        most prominent (of those detected with at least ``min_score``, when given: a client's
        own detection threshold). Returns its label. The same face of the same pixels cannot be
        enrolled twice; other faces of one image (a group photo) can, one call each."""
        name = validate_name(name)
        label, pil = _as_image(image)
        if box is None:
            faces = self.detector.detect(pil)
            if min_score is not None:
                faces = faces[faces.scores >= min_score]
            if len(faces) == 0:
                at = f" with a score of at least {min_score:g}" if min_score is not None else ""
                raise NoFaceError(f"{label}: no face detected{at}")
            faces = faces[passes_gate(faces, self.quality_gate)]
            if len(faces) == 0:
                raise NoFaceError(f"{label}: every face found is below the quality gate")
            faces = faces[most_prominent(faces, pil.size)]
        else:
            faces = Faces.from_boxes(np.array([_checked_box(box, pil.size)]))
        vector = self.embed_faces(pil, faces)[0]
        digest = hashlib.sha256(pil.tobytes()).hexdigest()
        if box is not None:  # one image, several faces: each is its own "photo" for duplicates
            digest = hashlib.sha256(f"{digest}:{_box_key(faces.boxes[0])}".encode()).hexdigest()
        with self._writing() as gallery:
            owner = gallery.owner_of_hash(digest)
            if owner is not None:
                what = "face of this image" if box is not None else "image"
                raise InputError(f"this {what} is already enrolled as {owner!r}")
            record = FaceRecord(
                name,
                source or label,
                digest,
                as_box(faces.boxes[0]),
                float(faces.scores[0]),
                vector,
                face_thumbnail(pil, faces.boxes[0]),
            )
            return gallery.add([record])[0]

    def _detect_passing(self, images: Sequence[Image.Image]) -> list[Faces]:
        """Every face of each image that passes the quality gate (what ``scan`` stores)."""
        return [f[passes_gate(f, self.quality_gate)] for f in self.detector.detect_many(images)]

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
        (``threshold.py``); the result says which (``threshold``, ``threshold_source``).
        ``refine`` ("exact", "gradient") re-examines a wider pool of index candidates
        (``refine.py``). ``ef`` sets the HNSW search breadth for this call (default: the
        gallery's, which grows with its size unless set).
        """
        return self.identify_batch([image], threshold=threshold, top_k=top_k, refine=refine, ef=ef)[
            0
        ]

    def identify_batch(
        self,
        images: Sequence[ImageInput],
        *,
        threshold: float | Threshold | None = None,
        top_k: int = 3,
        refine: str = "none",
        ef: int | None = None,
    ) -> list[ImageResult]:
        """identify() of several images at once: the faces of all of them are embedded in one
        batch and searched in one call, which is faster than one by one (a server batches its
        concurrent requests this way). A bad image raises; see ``identify_many``."""
        decoded = [_as_image(image) for image in images]
        pils = [pil for _, pil in decoded]
        found = self.detector.detect_many(pils)
        good = [passes_gate(faces, self.quality_gate) for faces in found]
        crops = [crop_faces(pil, faces[ok]) for pil, faces, ok in zip(pils, found, good)]
        counts = [int(ok.sum()) for ok in good]
        import torch

        vectors = (
            self.embedder.embed(torch.cat(crops))
            if sum(counts)
            else np.zeros((0, self.embedder.dim), np.float32)
        )
        with self._reading() as gallery:
            rule = gallery.threshold(threshold)
            candidates = gallery.search(
                vectors, k_people=max(top_k, 2), refine=refine, device=self._device, ef=ef
            )
        results = []
        start = 0
        for (label, pil), faces, ok, n in zip(decoded, found, good, counts):
            matches = _matches(faces, candidates[start : start + n], rule, ok)
            start += n
            results.append(
                ImageResult(label, pil.width, pil.height, tuple(matches), rule.value, rule.source)
            )
        return results

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
        """Nearest enrolled people for already computed embeddings, nearest first, undecided
        (``match_embeddings`` also decides who each one is)."""
        with self._reading() as gallery:
            return gallery.search(
                vectors, k_people=top_k, refine=refine, device=self._device, ef=ef
            )

    def embed_photos(
        self, paths: Sequence[str | os.PathLike[str]], progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each photo's subject embedded as enroll would embed it: ``(vectors (N, 512), found)``,
        with a zero row and ``found[i]`` False where a photo has no face or cannot be read."""
        self.embedder.load()
        vectors = np.zeros((len(paths), self.embedder.dim), np.float32)
        found = np.zeros(len(paths), bool)

        def store(rows: list[int], _: list[Subject], batch: np.ndarray) -> None:
            vectors[rows] = batch
            found[rows] = True

        batcher: SubjectBatcher[int] = SubjectBatcher(
            self.detector, self.embedder, store, gate=self.quality_gate
        )
        for i, loaded in enumerate(prefetch_images(Path(p) for p in paths)):
            if isinstance(loaded, Exception):
                log.warning("%s", loaded)
            else:
                batcher.add(i, loaded)
            if progress:
                progress(1)
        batcher.flush()
        return vectors, found

    def verify(
        self,
        first: ImageInput,
        second: ImageInput,
        *,
        threshold: float | Threshold | None = None,
    ) -> Verification:
        """Whether two photos show the same person (1:1): the most prominent face of each,
        compared. The threshold is ``threshold`` if given, else the 1:1 default
        (``threshold.verification_threshold``), not the gallery's, which is for naming one of
        everyone enrolled. InputError when a photo has no face."""
        if threshold is None:
            rule = verification_threshold()
        elif isinstance(threshold, Threshold):
            rule = threshold
        else:
            rule = given(threshold)
        decoded = [_as_image(first), _as_image(second)]
        found = self.detector.detect_many([pil for _, pil in decoded])
        sides: list[VerifiedFace] = []
        chosen: list[Faces] = []
        for (label, pil), faces in zip(decoded, found):
            if len(faces) == 0:
                raise NoFaceError(f"{label}: no face detected")
            face = faces[most_prominent(faces, pil.size)]
            sides.append(
                VerifiedFace(label, as_box(face.boxes[0]), float(face.scores[0]), len(faces))
            )
            chosen.append(face)
        import torch

        crops = [crop_faces(pil, face) for (_, pil), face in zip(decoded, chosen)]
        a, b = self.embedder.embed(torch.cat(crops))  # both faces in one batch
        similarity = float(np.dot(a, b))
        distance = 1.0 - similarity
        return Verification(
            is_match(distance, rule),
            similarity,
            distance,
            rule.value,
            rule.source,
            (sides[0], sides[1]),
        )

    # -- the threshold -------------------------------------------------------------------------

    def threshold(self, explicit: float | Threshold | None = None) -> float:
        """The match threshold in force for this gallery (``explicit`` wins when given)."""
        return self.threshold_in_force(explicit).value

    def threshold_in_force(self, explicit: float | Threshold | None = None) -> Threshold:
        """The match threshold in force and why: ``explicit`` (the caller's), else the gallery's
        calibrated value, else the default for the people enrolled (``threshold.py``).
        Decide with ``threshold.name_for(candidate, this)``."""
        with self._reading() as gallery:
            return gallery.threshold(explicit)

    def set_threshold(self, value: float | None, source: str = "set by user") -> None:
        """Store (or with None, clear) the gallery's match threshold."""
        with self._writing() as gallery:
            gallery.set_threshold(value, source)

    # -- gallery management --------------------------------------------------------------------

    def people(self) -> list[Person]:
        with self._reading() as gallery:
            return gallery.people()

    def remove(self, name: str) -> int:
        """Remove a person and all their faces; returns the number of faces removed."""
        with self._writing() as gallery:
            return gallery.remove_person(name)

    def faces(
        self,
        name: str | None = None,
        *,
        unassigned: bool = False,
        cluster: int | None = None,
        suggested: str | None = None,
    ) -> list[FaceInfo]:
        """The stored faces of ``name``, the unassigned ones, those of no one in ``cluster``,
        those ``suggested`` for a person, or (none given) all, by id."""
        with self._reading() as gallery:
            return gallery.faces(name, unassigned=unassigned, cluster=cluster, suggested=suggested)

    def thumbnail(self, face_id: int) -> bytes | None:
        """The JPEG thumbnail stored with a face; None if it has none (enrolled before 0.3)."""
        with self._reading() as gallery:
            return gallery.thumbnail(face_id)

    def remove_face(self, face_id: int) -> FaceInfo:
        """Remove one face (a person's last one removes the person); returns what it was."""
        with self._writing() as gallery:
            return gallery.remove_face(face_id)

    def rename(self, old: str, new: str) -> RenameResult:
        """Rename a person; to the name of someone enrolled, merge the two (``merged``)."""
        new = validate_name(new)
        with self._writing() as gallery:
            return gallery.rename_person(old, new)

    def assign(self, face_ids: Sequence[int], name: str) -> int:
        """Give faces (unassigned, or someone else's) to ``name``, enrolling them if new;
        returns how many changed owner."""
        name = validate_name(name)
        with self._writing() as gallery:
            return gallery.assign_faces(face_ids, name)

    # -- the photo library ---------------------------------------------------------------------

    def scan(
        self,
        folder: str | os.PathLike[str],
        progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> ScanReport:
        """Store every face of every photo in ``folder`` (recursive) as a face of no one yet.

        Incremental by content hash: photos scanned before are not read again, moved ones are
        followed, deleted ones take their faces with them; a photo and its faces are committed
        together, a window at a time, so an interrupted scan goes on where it stopped. Faces
        close enough to an enrolled person (the rule ``identify`` uses) become suggestions for
        them, not their faces (``confirm``, ``assign``; ``unassign`` rejects). See
        ``library/scan.py``.
        """
        from .library.scan import FolderScan

        # the models load when the first new photo needs them: a re-scan of an unchanged
        # folder only lists it
        with self._writing() as gallery:
            rule = gallery.threshold()

            def match(vectors: np.ndarray, faces: Faces) -> list[str | None]:
                candidates = gallery.search(vectors, k_people=2, device=self._device)
                return [m.name for m in _matches(faces, candidates, rule)]

            report = FolderScan(
                gallery,
                folder,
                self._detect_passing,
                self.embedder,
                match,
                progress=progress,
                on_total=on_total,
            ).run()
            for name, n in self._suggest(gallery).items():
                report.suggested[name] = report.suggested.get(name, 0) + n
        return report

    def suggest(self) -> dict[str, int]:
        """Suggest faces of no one for the enrolled people they are close enough to (never for
        someone a face was taken from); returns how many per person. ``scan`` does this."""
        with self._writing() as gallery:
            return self._suggest(gallery)

    def _suggest(self, gallery: GalleryBackend, chunk: int = 1024) -> dict[str, int]:
        loose = gallery.loose_faces()
        todo = loose[loose.suggested == 0]
        if not len(todo) or gallery.count_people() == 0:
            return {}
        rule = gallery.threshold()
        rejected = gallery.rejections(todo.ids.tolist())
        chosen: dict[int, str] = {}
        for s in range(0, len(todo), chunk):
            ids = todo.ids[s : s + chunk].tolist()
            found = gallery.search(todo.vectors[s : s + chunk], k_people=3, device=self._device)
            for fid, candidates in zip(ids, found):
                for c in candidates:
                    if c.name in rejected.get(fid, ()):
                        continue
                    name = name_for(c, rule)
                    if name is not None:
                        chosen[fid] = name
                    break
        gallery.set_suggestions(chosen)
        counts: dict[str, int] = {}
        for name in chosen.values():
            counts[name] = counts.get(name, 0) + 1
        return counts

    def clusters(self, min_faces: int = 3, *, recluster: bool = False) -> ClusterReport:
        """Group the faces of no one (not suggested for anyone) into clusters of one unknown
        person each and list those of at least ``min_faces``, largest first. New faces join
        the stored clusters or form new ones; ``recluster`` redoes everything. Cluster ids stay
        the same from call to call where their faces do (``library/clusters.py``)."""
        from .library.clusters import cluster_report, update_clusters

        if min_faces < 1:
            raise InputError("--min-faces must be at least 1")
        with self._writing() as gallery:
            loose = update_clusters(gallery, recluster=recluster)
            faces = gallery.faces(unassigned=True)
        return cluster_report(loose, faces, min_faces)

    def name_cluster(self, cluster: int, name: str) -> NamedCluster:
        """A cluster's faces become ``name``'s (enrolled if new, else joining them), except
        faces once taken from ``name``, which stay out."""
        name = validate_name(name)
        with self._writing() as gallery:
            given, kept = gallery.assign_cluster(int(cluster), name)
        return NamedCluster(int(cluster), name, tuple(given), tuple(kept))

    def unassign(self, face_id: int) -> FaceInfo:
        """Eject one face: from its person (remembered: never suggested to them again), from
        its suggestion (rejected likewise), or from its cluster (kept out of clustering).
        Returns the face as it was."""
        with self._writing() as gallery:
            return gallery.unassign_face(int(face_id))

    def confirm(self, name: str, face_ids: Sequence[int] | None = None) -> int:
        """Suggestions for ``name`` (all, or those of ``face_ids``) become their faces;
        returns how many."""
        with self._writing() as gallery:
            ids = [f.id for f in gallery.faces(suggested=name)]
            if face_ids is not None:
                wanted = {int(i) for i in face_ids}
                missing = wanted - set(ids)
                if missing:
                    raise InputError(
                        f"face {min(missing)} is not suggested for {name!r}; nothing was changed"
                    )
                ids = [i for i in ids if i in wanted]
            return gallery.assign_faces(ids, name) if ids else 0

    def merge(self, source: str, target: str) -> RenameResult:
        """``source``'s faces become ``target``'s (both must be enrolled); ``source`` goes."""
        with self._writing() as gallery:
            names = {p.name for p in gallery.people()}
            for who in (source, target):
                if who not in names:
                    raise PersonNotFoundError(f"no person named {who!r} in the gallery")
            if source == target:
                raise InputError(f"{source!r} and {target!r} are the same person")
            return gallery.rename_person(source, target)

    def split_cluster(self, cluster: int, average_distance: float | None = None) -> list[int]:
        """Cluster one cluster again more strictly (``average_distance``, default a little
        below the clusterer's); returns the resulting ids, largest first (the largest keeps
        the id; one id: it did not split). Faces in no part are kept out of clustering."""
        from .library.clusters import split_cluster

        with self._writing() as gallery:
            return split_cluster(gallery, int(cluster), average_distance)

    def find(self, name: str, *, suggested: bool = False) -> list[PhotoHit]:
        """Every photo ``name`` is in, with the box of their face, by path: their faces and,
        with ``suggested``, the faces suggested for them."""
        with self._reading() as gallery:
            faces = [(f, False) for f in gallery.faces(name)]
            if suggested:
                faces += [(f, True) for f in gallery.faces(suggested=name)]
        hits = [PhotoHit(f.source_path, f.id, f.box, s) for f, s in faces]
        return sorted(hits, key=lambda h: (h.image, h.face))

    def copy_photos(
        self,
        name: str,
        folder: str | os.PathLike[str],
        *,
        link: bool = False,
        suggested: bool = False,
    ) -> tuple[list[Path], list[str]]:
        """Copy (or with ``link`` symlink) every photo ``name`` is in into ``folder``; returns
        (files made, photos that could not be found). Existing files are not overwritten."""
        import shutil

        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        made: list[Path] = []
        missing: list[str] = []
        taken: set[str] = {p.name for p in target.iterdir()}
        for image in dict.fromkeys(h.image for h in self.find(name, suggested=suggested)):
            src = Path(image)
            if not src.is_file():
                missing.append(image)
                continue
            dst_name, k = src.name, 1
            while dst_name in taken:
                dst_name, k = f"{src.stem}-{k}{src.suffix}", k + 1
            taken.add(dst_name)
            dst = target / dst_name
            if link:
                dst.symlink_to(src.resolve())
            else:
                shutil.copy2(src, dst)
            made.append(dst)
        return made, missing

    def reindex(self, params: IndexParams | None = None) -> int:
        """Rebuild the HNSW index from the database (with ``params``: as the gallery's new ones)."""
        with self._writing() as gallery:
            return gallery.reindex(params)

    def reindex_changed(self, project: bool | None = None, **changes: Any) -> int:
        """``reindex`` with ``changes`` (``IndexParams`` fields) made to the gallery's parameters.
        A directory gallery whose storage type and re-rank depth are not among them gets those
        chosen for this CPU (``params_for_cpu``); set by hand, they are the gallery's own.
        ``project`` turns the graph on the model's subspace (``FaceEmbedder.subspace``) on or
        off; a directory gallery that gets the CPU's choice gets it on where the model has one."""
        from .gallery.index import params_for_cpu

        by_cpu = self.gallery_dir is not None and "dtype" not in changes and "rerank" not in changes
        if project is None and by_cpu:
            project = True
        if project is not None:
            # any width turns it on: the gallery puts its basis's (``Gallery.reindex``)
            changes["project"] = 1 if project else 0
        current = self.index_params()
        params = dataclasses.replace(current, **changes) if changes else None
        if by_cpu:
            params = params_for_cpu(base=params or current)
        elif params is not None:
            params = dataclasses.replace(params, chosen_for="")
        return self.reindex(params)

    def index_params(self) -> IndexParams:
        """The HNSW parameters of this gallery's index as it is now."""
        with self._reading() as gallery:
            return gallery.index_params

    def info(self) -> dict[str, object]:
        with self._reading() as gallery:
            data = gallery.info()
        emb = self.embedder.load()
        data["weights"] = str(emb.weights_path) if emb.weights_path else None
        data["device"] = str(emb.device)
        data["precision"] = emb.precision
        data["runtime"] = emb.runtime
        data["detect_runtime"] = self.detector.load().runtime
        return data


def _matches(
    faces: Faces,
    candidates: Sequence[Sequence[Candidate]],
    rule: Threshold,
    searched: np.ndarray | None = None,
) -> list[FaceMatch]:
    """FaceMatch per face: its nearest people and, by ``rule``, who it is (None: unknown).
    ``candidates`` holds one entry per ``searched`` face; the others are below the quality
    gate and are reported as such, unnamed."""
    out = []
    found = iter(candidates)
    for j in range(len(faces)):
        if searched is not None and not searched[j]:
            box, score = as_box(faces.boxes[j]), float(faces.scores[j])
            out.append(FaceMatch(box, score, None, None, None, quality="low"))
            continue
        cands = tuple(next(found))
        best = cands[0] if cands else None
        out.append(
            FaceMatch(
                box=as_box(faces.boxes[j]),
                score=float(faces.scores[j]),
                name=name_for(best, rule),
                similarity=best.similarity if best else None,
                distance=best.distance if best else None,
                candidates=cands,
            )
        )
    return out


def _checked_box(box: Box, size: tuple[int, int]) -> Box:
    """``box`` if it is a face box inside an image of ``size``, else InputError saying why."""
    try:
        x1, y1, x2, y2 = as_box(box)
    except (TypeError, ValueError):
        raise InputError(f"a box is four numbers [x1, y1, x2, y2], got {box!r}") from None
    w, h = size
    finite = all(np.isfinite([x1, y1, x2, y2]))
    if not (finite and x1 < x2 and y1 < y2 and x2 > 0 and y2 > 0 and x1 < w and y1 < h):
        raise InputError(f"box {[x1, y1, x2, y2]} is not a face box inside the {w}x{h} image")
    return (x1, y1, x2, y2)


def _box_key(box: np.ndarray) -> str:
    """A box as text for hashing: whole pixels, so a box sent back by a client still matches."""
    return ",".join(str(round(float(v))) for v in box)


def _reason(err: Exception, label: str) -> str:
    """An error's message without the photo's name in front (the report names it already)."""
    msg = str(err)
    prefix = f"{label}: "
    return msg[len(prefix) :] if msg.startswith(prefix) else msg


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
