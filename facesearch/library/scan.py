"""Scanning a photo folder: every face of every photo into the gallery, as faces of no one yet.

A scan walks the folder and, per file, decides by the stored photos (``GalleryBackend.photos``):

- same path, same size and modification time: **unchanged**, not even read;
- content hash already stored: the same photo, **moved** here (its old path is gone: the photo and
  its faces follow, nothing is re-embedded) or a **duplicate** (the old path is still there:
  skipped, with the reason);
- otherwise **new**: every face is detected (``detect_many``, a window of photos at a time),
  embedded in one batch, given a thumbnail and, when it is close enough to an enrolled person
  (``match``: the gallery's one scoring rule and threshold), marked as a suggestion for them.

Each window of new photos is committed in one transaction together with all of its faces
(``add_photos``), so a photo is recorded as scanned only with its faces, and an interrupted scan
(crash, Ctrl-C) loses at most one window: the next scan skips what was committed and goes on.
Photos stored under the folder that the walk did not find are **deleted**: they and their scanned
faces go, once the whole folder has been walked (never after an interrupted walk).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from ..crops import crop_faces, face_thumbnail
from ..embedding import FaceEmbedder
from ..errors import ImageError, InputError
from ..gallery.base import GalleryBackend
from ..images import decode_image, iter_files, read_ahead
from ..types import FaceRecord, Faces, ScannedPhoto, ScanReport, Skip, StoredPhoto

log = logging.getLogger(__name__)

WINDOW = 8  # new photos per detection call and per committed transaction

DetectMany = Callable[[Sequence[Image.Image]], list[Faces]]
# who each face is (a name or None), given its embeddings and detections
Match = Callable[[np.ndarray, Faces], list[str | None]]


@dataclass(eq=False)
class _File:
    """One file of the walk: its stat, and once read its hash and (if new) its decoded image."""

    path: str
    size: int
    mtime: float
    sha256: str = ""
    image: Image.Image | None = None
    error: Exception | None = None


def _read(item: _File, known: frozenset[str]) -> _File:
    """Hash the file and, unless its content is stored already, decode it (a worker thread)."""
    try:
        with open(item.path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        item.error = ImageError(f"{item.path}: cannot read file ({err.strerror or err})")
        return item
    item.sha256 = hashlib.sha256(data).hexdigest()
    if item.sha256 not in known:
        try:
            item.image = decode_image(data, item.path)
        except (ImageError, InputError) as err:
            item.error = err
    return item


def _under(path: str, root: Path) -> bool:
    return path == str(root) or path.startswith(str(root) + os.sep)


class FolderScan:
    """One scan of ``folder`` into ``gallery`` (open for writing); ``run()`` does it.

    ``detect_many`` and ``embedder`` are FaceSearch's stages; ``match`` names a face if it is
    close enough to an enrolled person (the suggestion). ``progress(n)`` is called per file.
    """

    def __init__(
        self,
        gallery: GalleryBackend,
        folder: str | os.PathLike[str],
        detect_many: DetectMany,
        embedder: FaceEmbedder,
        match: Match,
        progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
        window: int = WINDOW,
    ) -> None:
        root = Path(folder).expanduser()
        if not root.exists():
            raise InputError(f"{root}: no such folder")
        if not root.is_dir():
            raise InputError(f"{root}: not a folder")
        self.root = root.resolve()
        self.gallery = gallery
        self.detect_many = detect_many
        self.embedder = embedder
        self.match = match
        self.progress = progress
        self.on_total = on_total
        self.window = window
        self.report = ScanReport(folder=str(self.root))
        self._pending: list[_File] = []

    def _tick(self) -> None:
        if self.progress:
            self.progress(1)

    def run(self) -> ScanReport:
        report = self.report
        stored = self.gallery.photos()
        by_path = {p.path: p for p in stored}
        by_sha = {p.sha256: p for p in stored}
        seen: set[int] = set()  # stored photos found in this walk
        new_shas: set[str] = set()  # photos added by this scan, for duplicates within it
        files = list(iter_files(self.root))
        if self.on_total:
            self.on_total(len(files))
        to_read: list[_File] = []
        for f in files:
            report.photos_seen += 1
            try:
                st = f.stat()
            except OSError as err:
                report.skipped.append(Skip(str(f), "unreadable", err.strerror or str(err)))
                self._tick()
                continue
            path = str(f)
            old = by_path.get(path)
            if old is not None and old.size == st.st_size and old.mtime == st.st_mtime:
                seen.add(old.id)
                report.unchanged += 1
                self._tick()
                continue
            to_read.append(_File(path, int(st.st_size), float(st.st_mtime)))
        moves: list[tuple[int, str, int, float]] = []
        read = partial(_read, known=frozenset(by_sha))
        for item in read_ahead(read, to_read, name="scan"):
            if item.error is not None and not item.sha256:
                report.skipped.append(Skip(item.path, "unreadable", _reason(item.error, item.path)))
            elif item.sha256 in by_sha:
                self._known(item, by_sha[item.sha256], seen, moves)
            elif item.sha256 in new_shas:
                report.skipped.append(Skip(item.path, "duplicate", "same photo as another file"))
            elif item.error is not None:
                report.skipped.append(Skip(item.path, "unreadable", _reason(item.error, item.path)))
            else:
                new_shas.add(item.sha256)
                self._pending.append(item)
                if len(self._pending) >= self.window:
                    self._commit()
            self._tick()
        self._commit()
        if moves:
            self.gallery.move_photos(moves)
        gone = [p.id for p in stored if p.id not in seen and _under(p.path, self.root)]
        if gone:
            report.deleted = len(gone)
            report.faces_removed = self.gallery.remove_photos(gone)
        return report

    def _known(
        self,
        item: _File,
        photo: StoredPhoto,
        seen: set[int],
        moves: list[tuple[int, str, int, float]],
    ) -> None:
        """A file whose content is stored: touched in place, moved here, or a duplicate."""
        if photo.id in seen:
            self.report.skipped.append(Skip(item.path, "duplicate", f"same photo as {photo.path}"))
            return
        if photo.path == item.path:
            self.report.unchanged += 1  # touched, same content
        elif os.path.exists(photo.path):
            # the stored path is still there: this is a copy (the walk sees the original, or it
            # is outside this folder)
            self.report.skipped.append(Skip(item.path, "duplicate", f"same photo as {photo.path}"))
            return
        else:
            self.report.moved += 1
        seen.add(photo.id)
        moves.append((photo.id, item.path, item.size, item.mtime))

    def _commit(self) -> None:
        """Detect, embed and match the pending photos; store them with their faces at once."""
        items, self._pending = self._pending, []
        if not items:
            return
        images = [it.image for it in items]
        found = self.detect_many(images)  # type: ignore[arg-type]
        crops = [crop_faces(img, faces) for img, faces in zip(images, found)]  # type: ignore[arg-type]
        counts = [len(faces) for faces in found]
        if sum(counts):
            import torch

            vectors = self.embedder.embed(torch.cat(crops))
        else:
            vectors = np.zeros((0, self.embedder.dim), np.float32)
        all_faces = Faces(
            np.concatenate([f.boxes for f in found]),
            np.concatenate([f.scores for f in found]),
            np.concatenate([f.landmarks for f in found]),
        )
        names = self.match(vectors, all_faces) if len(vectors) else []
        photos: list[ScannedPhoto] = []
        start = 0
        for it, img, faces, n in zip(items, images, found, counts):
            records = tuple(
                FaceRecord(
                    None,
                    it.path,
                    it.sha256,
                    tuple(float(v) for v in faces.boxes[j]),  # type: ignore[arg-type]
                    float(faces.scores[j]),
                    vectors[start + j],
                    face_thumbnail(img, faces.boxes[j]),  # type: ignore[arg-type]
                    suggested=names[start + j],
                )
                for j in range(n)
            )
            start += n
            photos.append(ScannedPhoto(it.path, it.sha256, it.size, it.mtime, records))
            for r in records:
                if r.suggested:
                    self.report.suggested[r.suggested] = (
                        self.report.suggested.get(r.suggested, 0) + 1
                    )
        self.gallery.add_photos(photos)
        self.report.photos_added += len(photos)
        self.report.faces_added += sum(counts)
        self.report.no_face += counts.count(0)
        for it in items:
            it.image = None  # free the pixels


def _reason(err: Exception, label: str) -> str:
    msg = str(err)
    prefix = f"{label}: "
    return msg[len(prefix) :] if msg.startswith(prefix) else msg
