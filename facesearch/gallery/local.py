"""A gallery directory: the SQLite database (truth) plus the HNSW index (a rebuildable cache).

Layout of ``DIR``: ``gallery.sqlite3``, ``faces.usearch`` and ``faces.usearch.json`` (which
database generation the index reflects), and ``.lock`` while a writer has it open.

The index holds the faces of people; unassigned faces are only in the database until they are
assigned. Writes go to the database first, in one transaction per batch; the index is updated in
memory and saved atomically on ``flush``. A crash in between leaves the index behind the database, which
the next open notices (generation or count differ) and repairs by adding/removing the missing
labels, or rebuilding outright if the index file is unreadable.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GalleryError, InputError
from ..threshold import Threshold, default_threshold, given
from ..types import (
    Candidate,
    FaceInfo,
    FaceRecord,
    LooseFaces,
    Person,
    RenameResult,
    ScannedPhoto,
    StoredPhoto,
)
from .index import (
    SUBSPACE_KEY,
    FaceIndex,
    IndexParams,
    basis_to_text,
    exact_path,
    params_for_cpu,
    recorded_basis,
)
from .scoring import candidate_faces, refine_candidates, score_people
from .store import GalleryStore

log = logging.getLogger(__name__)

DB_NAME = "gallery.sqlite3"
INDEX_NAME = "faces.usearch"
INDEX_META_NAME = "faces.usearch.json"
PARAMS_KEY = "index_params"
LOCK_NAME = ".lock"


def _is_writable_dir(path: Path) -> bool:
    # Honour a read-only mode bit even for root, for whom os.access always says yes.
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK) and bool(
        mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    )


def recorded_model(directory: Path) -> str | None:
    """The embedding model id recorded in the gallery directory; None if it has none yet."""
    db_path = Path(directory) / DB_NAME
    if not db_path.is_file():
        return None
    store = GalleryStore(db_path, readonly=True)
    try:
        return store.get_meta("model_id")
    finally:
        store.close()


class Gallery:
    """Open a gallery for reading (``writable=False``) or for enrolling and removing."""

    def __init__(
        self,
        directory: Path,
        model_id: str,
        dim: int,
        writable: bool = False,
        params: IndexParams | None = None,
        wait: float = 0.0,
        subspace: Callable[[], np.ndarray | None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._subspace_source = subspace
        self.basis: np.ndarray | None = None
        self.model_id = model_id
        self.dim = dim
        self.writable = writable
        self._explicit_params = params
        self.params = params or IndexParams()
        self._lock_fd: int | None = None
        self._template_cache: dict[int, np.ndarray] = {}
        self._threshold: Threshold | None = None  # cached until this object writes
        self._dirty = False
        db_path = self.directory / DB_NAME
        new_gallery = not db_path.is_file()
        if writable:
            self._prepare_writable_dir()
            self._acquire_lock(wait)
        elif not db_path.is_file():
            raise GalleryError(
                f"no gallery at {self.directory}: enroll people first (facesearch enroll FOLDER)"
            )
        try:
            self.store = GalleryStore(db_path, readonly=not writable)
            self.store.ensure_model(model_id, dim)
            self.basis = self._stored_basis()
            self.params = (
                self._explicit_params or self._stored_params() or self._new_params(new_gallery)
            )
            self.index = self._open_index()
            self.generation = self.store.generation
        except BaseException:
            self._release_lock()
            raise

    # -- lifecycle -----------------------------------------------------------------------------

    def _prepare_writable_dir(self) -> None:
        d = self.directory
        if d.exists() and not d.is_dir():
            raise GalleryError(f"gallery path {d} exists and is not a directory")
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise GalleryError(f"cannot create gallery directory {d} ({err.strerror})") from err
        if not _is_writable_dir(d) or (
            (d / DB_NAME).exists() and not os.access(d / DB_NAME, os.W_OK)
        ):
            raise GalleryError(f"gallery directory {d} is read-only; nothing was changed")

    def _try_lock(self) -> bool:
        """Take the write lock without waiting; False if another process holds it."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return True
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _acquire_lock(self, wait: float) -> None:
        """Take the write lock, waiting up to ``wait`` seconds for another writer to finish."""
        deadline = time.monotonic() + wait
        delay = 0.005
        while not self._try_lock():
            if time.monotonic() >= deadline:
                waited = f" (waited {wait:g} s)" if wait > 0 else ""
                raise GalleryError(
                    f"gallery {self.directory} is being written by another facesearch process"
                    f"{waited}; try again when it has finished"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def close(self) -> None:
        """Save the index if it changed, release the write lock, close the database."""
        try:
            self.flush()
        finally:
            self._release_lock()
            self.store.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- index consistency ---------------------------------------------------------------------

    @property
    def index_path(self) -> Path:
        return self.directory / INDEX_NAME

    @property
    def _index_meta_path(self) -> Path:
        return self.directory / INDEX_META_NAME

    def _read_index_meta(self) -> dict[str, Any] | None:
        try:
            return json.loads(self._index_meta_path.read_text())
        except (OSError, ValueError):
            return None

    def _stored_params(self) -> IndexParams | None:
        """The index parameters chosen for this gallery (``reindex`` with options sets them)."""
        raw = self.store.get_meta(PARAMS_KEY)
        if raw is None:
            return None
        try:
            return IndexParams.from_dict(json.loads(raw))
        except (ValueError, TypeError, InputError) as err:
            log.warning("ignoring unreadable index parameters in the gallery (%s)", err)
            return None

    def _new_params(self, new_gallery: bool) -> IndexParams:
        """A gallery without parameters of its own: when it is created, those chosen for this
        CPU (``params_for_cpu``), stored so that it keeps them wherever it is opened; a gallery
        from before that choice keeps the defaults it was built with."""
        if not (new_gallery and self.writable):
            return IndexParams()
        basis = self._adopt_basis()
        params = params_for_cpu(project=0 if basis is None else basis.shape[1])
        self.store.set_meta({PARAMS_KEY: json.dumps(params.to_dict())})
        return params

    def _stored_basis(self) -> np.ndarray | None:
        """The subspace basis recorded in the gallery (``SUBSPACE_KEY``), if any."""
        return recorded_basis(self.store.get_meta(SUBSPACE_KEY), self.dim)

    def _adopt_basis(self) -> np.ndarray | None:
        """The recorded basis; else the one ``subspace`` gives (the embedding model's), recorded
        now; None where there is neither or the gallery is read-only."""
        if self.basis is not None or not self.writable or self._subspace_source is None:
            return self.basis
        basis = self._subspace_source()
        if basis is not None:
            # basis_to_text checks its shape and that it is orthonormal
            self.store.set_meta({SUBSPACE_KEY: basis_to_text(basis, self.dim)})
            self.basis = np.array(basis, np.float32)
        return self.basis

    def _open_index(self) -> FaceIndex:
        count = self.store.count_indexed()
        meta = self._read_index_meta()
        in_step = (
            meta is not None
            and meta.get("generation") == self.store.generation
            and meta.get("count") == count
            and meta.get("dim") == self.dim
        )
        index: FaceIndex | None = None
        if self.index_path.is_file():
            try:
                index = FaceIndex.load(
                    self.index_path,
                    self.dim,
                    self.params,
                    view=in_step and not self.writable,
                    basis=self.basis,
                )
            except GalleryError as err:
                log.warning("%s; rebuilding it from the database", err)
        elif count:
            log.warning(
                "index file %s is missing; rebuilding it from the database", self.index_path
            )
        if index is not None and in_step and len(index) == count:
            return index
        if index is not None and index.view:
            index = None  # a memory-mapped index cannot be repaired in place: rebuild
        if index is None:
            index = self._build_index()
        else:
            self._repair(index)
        self._dirty = True
        if self.writable:
            self._save_index(index)
        elif _is_writable_dir(self.directory) and self._try_lock():
            # A reader saves the repaired index too, unless a writer is busy (it will save its own).
            try:
                self._save_index(index)
            finally:
                self._release_lock()
        return index

    def _build_index(self) -> FaceIndex:
        index = FaceIndex(self.dim, self.params, self.basis)
        for labels, vectors in self.store.embeddings():
            index.add(labels, vectors)
        return index

    def _repair(self, index: FaceIndex) -> None:
        db_ids = self.store.face_ids()
        idx_ids = index.labels()
        extra = np.setdiff1d(idx_ids, db_ids)
        missing = np.setdiff1d(db_ids, idx_ids)
        log.warning(
            "index is behind the database (%d to add, %d to remove); repairing",
            len(missing),
            len(extra),
        )
        index.remove(extra)
        for labels, vectors in self.store.embeddings(missing.tolist()):
            index.add(labels, vectors)

    def _save_index(self, index: FaceIndex) -> None:
        index.save(self.index_path)
        meta = {
            "generation": self.store.generation,
            "count": len(index),
            "dim": self.dim,
            "metric": index.metric,
            "params": index.params.to_dict(),
        }
        tmp = self._index_meta_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, self._index_meta_path)
        self._dirty = False

    def flush(self) -> None:
        """Persist the index if it has changed since the last save."""
        if self._dirty and self.writable:
            self._save_index(self.index)

    def reindex(self, params: IndexParams | None = None) -> int:
        """Rebuild the index from the database and save it; returns the number of faces.

        With ``params`` the index is rebuilt with them and they become the gallery's own; their
        ``project`` is the width of the gallery's subspace basis (recorded now if it has none
        yet and the gallery was opened with a ``subspace``) or 0 where it has none.
        """
        self._require_writable()
        if params is not None:
            basis = self._adopt_basis() if params.project else None
            params = replace(params, project=0 if basis is None else basis.shape[1])
            self.params = params
        self.index = self._build_index()
        self._save_index(self.index)
        if params is not None:
            self.store.set_meta({PARAMS_KEY: json.dumps(params.to_dict())})
        return len(self.index)

    def changed_since_open(self) -> bool:
        """Whether another process has written to the database since this one opened it."""
        return self.store.generation != self.generation

    def _require_writable(self) -> None:
        if not self.writable:
            raise GalleryError(f"gallery {self.directory} is open read-only")

    # -- reads and writes ----------------------------------------------------------------------

    def add(self, records: Sequence[FaceRecord]) -> list[int]:
        """Store faces (one transaction), then add them to the in-memory index."""
        self._require_writable()
        if not records:
            return []
        ids = self.store.add_faces(records, self.model_id)
        self._template_cache.clear()
        self._threshold = None
        indexed = [i for i, r in enumerate(records) if r.person is not None]
        if indexed:
            # a scanned face that enrolling took over may have been someone's already
            self.index.remove(
                np.asarray([ids[i] for i in indexed if ids[i] in self.index], np.int64)
            )
            self.index.add(
                np.asarray([ids[i] for i in indexed], np.int64),
                np.stack([records[i].embedding for i in indexed]),
            )
        self._dirty = True
        return ids

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Adding many faces (``migrate``): the in-memory index takes them as they come."""
        yield

    def remove_person(self, name: str) -> int:
        """Delete a person and their faces; returns how many faces went."""
        self._require_writable()
        ids = self.store.remove_person(name)
        self._template_cache.clear()
        self._threshold = None
        self.index.remove(np.asarray(ids, np.int64))
        self._dirty = True
        self.flush()
        return len(ids)

    def _changed(self) -> None:
        """After a write: templates and the default threshold may differ; save the index."""
        self._template_cache.clear()
        self._threshold = None
        self._dirty = True
        self.flush()

    def remove_face(self, face_id: int) -> FaceInfo:
        """Delete one face, and its person if it was their last; returns what the face was."""
        self._require_writable()
        info, person_id = self.store.remove_face(face_id)
        if person_id is not None:
            self.index.remove(np.asarray([info.id], np.int64))
        self._changed()
        return info

    def assign_faces(self, face_ids: Sequence[int], name: str) -> int:
        """Give faces to ``name`` (created if new); returns how many changed owner."""
        self._require_writable()
        moved, newly = self.store.assign_faces(face_ids, name)
        for labels, vectors in self.store.embeddings(newly):
            self.index.add(labels, vectors)
        self._changed()
        return len(moved)

    def rename_person(self, old: str, new: str) -> RenameResult:
        """Rename a person, or merge them into ``new`` if that is someone already."""
        self._require_writable()
        result = self.store.rename_person(old, new)
        self._changed()  # the labels stay; who they belong to is read from the database
        return result

    def owner_of_hash(self, sha256: str) -> str | None:
        """Name of the person a photo with this content hash is enrolled under, if any."""
        return self.store.owner_of_hash(sha256)

    def face_of_hash(self, sha256: str) -> FaceInfo | None:
        """The stored face of the photo with this content hash (assigned or not), if any."""
        return self.store.face_of_hash(sha256)

    def faces(
        self,
        person: str | None = None,
        *,
        unassigned: bool = False,
        cluster: int | None = None,
        suggested: str | None = None,
    ) -> list[FaceInfo]:
        """Stored faces by id: ``person``'s, the unassigned ones, a cluster's, those suggested
        for a person, or all."""
        return self.store.faces(person, unassigned, cluster, suggested)

    # -- the photo library ---------------------------------------------------------------------

    def photos(self) -> list[StoredPhoto]:
        """Every scanned photo, by id."""
        return self.store.photos()

    def count_photos(self) -> int:
        return self.store.count_photos()

    def add_photos(self, photos: Sequence[ScannedPhoto]) -> list[int]:
        """Record photos as scanned with their faces (no person yet), one transaction."""
        self._require_writable()
        if not photos:
            return []
        ids = self.store.add_photos(photos, self.model_id)
        self._dirty = True
        return ids

    def remove_photos(self, photo_ids: Sequence[int]) -> int:
        """Forget photos that are gone, and their scanned faces; returns how many faces went."""
        self._require_writable()
        if not photo_ids:
            return 0
        removed, indexed = self.store.remove_photos(photo_ids)
        self.index.remove(np.asarray(indexed, np.int64))
        self._changed()
        return len(removed)

    def move_photos(self, moves: Sequence[tuple[int, str, int, float]]) -> None:
        """Photos found at a new path: they and their faces follow."""
        self._require_writable()
        self.store.move_photos(moves)

    def loose_faces(self) -> LooseFaces:
        """The faces of no person, as arrays (``types.LooseFaces``)."""
        return self.store.loose_faces()

    def set_suggestions(self, suggestions: dict[int, str]) -> int:
        """Suggest faces for people (not for those they were taken from); returns how many."""
        self._require_writable()
        return self.store.set_suggestions(suggestions)

    def rejections(self, face_ids: Sequence[int]) -> dict[int, set[str]]:
        """Per face, the people it was taken from (never suggested to them again)."""
        return self.store.rejections(face_ids)

    def next_cluster_id(self) -> int:
        return self.store.next_cluster_id()

    def set_clusters(self, clusters: dict[int, int | None]) -> None:
        """Store cluster ids of faces of no one (None: none; -1: kept out of clustering)."""
        self._require_writable()
        self.store.set_clusters(clusters)

    def assign_cluster(self, cluster: int, name: str) -> tuple[list[int], list[int]]:
        """A cluster's faces become ``name``'s, but those once taken from them; returns
        (labels given, labels kept out)."""
        self._require_writable()
        given, kept = self.store.assign_cluster(cluster, name)
        for labels, vectors in self.store.embeddings(given):
            self.index.add(labels, vectors)
        self._changed()
        return given, kept

    def unassign_face(self, face_id: int) -> FaceInfo:
        """Take a face from its person (remembered), reject its suggestion, or keep it out of
        its cluster; returns the face as it was."""
        self._require_writable()
        info = self.store.unassign_face(face_id)
        if info.person is not None:
            self.index.remove(np.asarray([info.id], np.int64))
        self._changed()
        return info

    def thumbnail(self, face_id: int) -> bytes | None:
        """The face's JPEG thumbnail, None if it has none."""
        return self.store.thumbnail(face_id)

    def count_unassigned(self) -> int:
        return self.store.count_unassigned()

    def people(self) -> list[Person]:
        """Everyone enrolled, by name, with their number of faces."""
        return self.store.people()

    def count_people(self) -> int:
        return self.store.count_people()

    def count_faces(self) -> int:
        return self.store.count_faces()

    def export_faces(self, chunk: int = 1000) -> Iterator[list[FaceRecord]]:
        """Every stored face (unassigned ones too) with its embedding and thumbnail as stored,
        in chunks (``facesearch migrate``)."""
        return self.store.face_records(chunk)

    @property
    def location(self) -> str:
        return str(self.directory)

    @property
    def index_params(self) -> IndexParams:
        """The HNSW parameters of the index as it is now."""
        return self.index.params

    def search(
        self,
        embeddings: np.ndarray,
        k_people: int = 5,
        refine: str = "none",
        pool: int = 512,
        device: str | None = None,
        ef: int | None = None,
    ) -> list[list[Candidate]]:
        """Per query embedding, the nearest enrolled people, nearest first.

        The HNSW index finds the nearest faces; each person they belong to is scored by the
        smaller of two cosine distances: to their closest face and to their template (the
        normalised mean of all their faces). The template names people enrolled with several
        photos more reliably; the closest face keeps people who look different across their
        photos. With one photo per person both are the same (README, "Accuracy").

        ``refine`` ("exact" or "gradient", ``refine.py``) re-examines a pool of ``pool`` HNSW
        candidates per query before the people are scored. ``ef`` widens (or narrows) the HNSW
        search for this call; the gallery's setting (by default growing with its size) otherwise.
        """
        n = len(self.index)
        if n == 0:
            return [[] for _ in range(len(embeddings))]
        k_faces = candidate_faces(k_people, n, refine, pool)
        labels, dists = self.index.search(embeddings, k_faces, ef=ef)
        if refine != "none":
            pools = np.zeros((*labels.shape, self.dim), np.float32)
            valid = labels >= 0
            pools[valid] = self.index.vectors(labels[valid])
            labels, dists = refine_candidates(embeddings, labels, pools, refine, device)
        owners = self.store.owners(np.unique(labels[labels >= 0]).tolist())
        templates = self._templates({pid for pid, _ in owners.values()})
        return score_people(embeddings, labels, dists, owners, templates, k_people)

    def _templates(self, person_ids: set[int]) -> dict[int, np.ndarray]:
        missing = [p for p in person_ids if p not in self._template_cache]
        if missing:
            self._template_cache.update(self.store.person_templates(missing))
        return {p: self._template_cache[p] for p in person_ids if p in self._template_cache}

    # -- settings and info ---------------------------------------------------------------------

    def threshold(self, explicit: float | Threshold | None = None) -> Threshold:
        """The match threshold (max cosine distance) in force, and where it came from.

        ``explicit`` (the caller's ``--threshold``) wins; else the value ``calibrate`` stored in
        the gallery; else ``default_threshold`` for the number of people enrolled, so the
        default follows the gallery as people are added and removed (``threshold.py``).
        """
        if isinstance(explicit, Threshold):
            return explicit
        if explicit is not None:
            return given(explicit)
        if self._threshold is None:
            value = self.store.get_meta("threshold")
            if value is None:
                # the faces search can match: those of people
                people, faces = self.store.count_people(), self.store.count_indexed()
                self._threshold = default_threshold(people, faces=faces)
            else:
                source = self.store.get_meta("threshold_source") or "gallery setting"
                self._threshold = Threshold(float(value), source, "calibrated")
        return self._threshold

    def set_threshold(self, value: float | None, source: str) -> None:
        """Store the gallery's own threshold (``calibrate``), or with None go back to the default."""
        self._require_writable()
        self.store.set_meta(
            {
                "threshold": None if value is None else repr(float(value)),
                "threshold_source": None if value is None else source,
            }
        )
        self._threshold = None

    def info(self) -> dict[str, Any]:
        threshold = self.threshold()

        def size(name: str) -> int | None:
            p = self.directory / name
            return p.stat().st_size if p.exists() else None

        return {
            "gallery": str(self.directory),
            "people": self.store.count_people(),
            "faces": self.store.count_faces(),
            "unassigned": self.store.count_unassigned(),
            "photos": self.store.count_photos(),
            "model": self.store.get_meta("model_id"),
            "embedding_dim": int(self.store.get_meta("embedding_dim") or self.dim),
            "index": {
                "size": len(self.index),
                "metric": "cosine" if self.index.metric in ("ip", "cos") else self.index.metric,
                **self.index.params.to_dict(),
                "choice": self.index.params.choice,
                "ef_in_use": self.index.search_breadth,
                "memory_bytes": self.index.memory_bytes,
                "memory_mapped": self.index.view,
            },
            "threshold": threshold.value,
            "threshold_source": threshold.source,
            "files": {
                name: size(name)
                for name in (DB_NAME, INDEX_NAME, exact_path(self.index_path).name, INDEX_META_NAME)
            },
        }
