"""What a gallery backend offers: the calls ``FaceSearch``, the CLI and ``migrate`` make.

Two backends implement it: a directory (``local.Gallery``: SQLite + a usearch HNSW index) and
a PostgreSQL database (``postgres.PostgresGallery``: pgvector). Both pass
``tests/gallery/test_gallery_contract.py`` and score people with ``scoring.score_people``.

A face belongs to one person or, unassigned (``person`` None), to no one yet: unassigned faces
are stored, counted and exported like any other but are never search candidates, which only
score people. A person exists while they have faces: a write that takes a person's last face
(``remove_face``, ``assign_faces``, a merging ``rename_person``) removes the person too. Every
write is one transaction and keeps the people's templates current.

The photo library (``facesearch scan``, schema 3): ``add_photos`` records a photo as scanned in
the same transaction as every face found in it. Scanned faces belong to no one until named; one
may be *suggested* for a person (close to them, not theirs: no candidate, no template, not
counted) and be in a *cluster* of faces of one unknown person. A face taken from a person
(``unassign_face``) is remembered as rejected and never suggested to, or named with a cluster
as, that person again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from ..threshold import Threshold
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
from .index import IndexParams


class GalleryBackend(Protocol):
    """An open gallery: for reading, or (``writable``) for enrolling and removing."""

    model_id: str
    dim: int
    writable: bool
    #: the basis of the model's embedding subspace the gallery records and builds its index on
    #: (``index.FaceIndex``, ``postgres.py``'s ``coords``); None where there is none
    basis: np.ndarray | None

    @property
    def location(self) -> str:
        """Where the gallery is (a directory, or a URL without its password)."""
        ...

    @property
    def index_params(self) -> IndexParams:
        """The vector index's parameters as they are now."""
        ...

    def add(self, records: Sequence[FaceRecord]) -> list[int]:
        """Store faces, creating people as needed (a record's ``person`` None: unassigned), in
        one transaction; returns their labels (face ids)."""
        ...

    def bulk_load(self) -> AbstractContextManager[None]:
        """A context in which adding many faces may be faster (``migrate``); same result."""
        ...

    def remove_person(self, name: str) -> int:
        """Delete a person and their faces (PersonNotFoundError if unknown); returns how many."""
        ...

    def remove_face(self, face_id: int) -> FaceInfo:
        """Delete one face (FaceNotFoundError if unknown), and its person if it was their last;
        returns what the face was."""
        ...

    def assign_faces(self, face_ids: Sequence[int], name: str) -> int:
        """Give faces (unassigned or someone's) to ``name``, created if new, in one transaction;
        FaceNotFoundError (nothing changed) if any id is unknown. Returns how many changed owner."""
        ...

    def rename_person(self, old: str, new: str) -> RenameResult:
        """Rename a person (PersonNotFoundError if unknown); if ``new`` is someone already, merge:
        ``old``'s faces become ``new``'s and ``old`` is removed (``merged`` says which)."""
        ...

    def owner_of_hash(self, sha256: str) -> str | None:
        """Name of the person a photo with this content hash is enrolled under, if any."""
        ...

    def face_of_hash(self, sha256: str) -> FaceInfo | None:
        """The stored face of the photo with this content hash (assigned or not), if any."""
        ...

    def faces(
        self,
        person: str | None = None,
        *,
        unassigned: bool = False,
        cluster: int | None = None,
        suggested: str | None = None,
    ) -> list[FaceInfo]:
        """Stored faces by id: ``person``'s (PersonNotFoundError if unknown), the unassigned
        ones, those of no one in ``cluster``, those ``suggested`` for a person, or (none given)
        all."""
        ...

    # -- the photo library (schema 3) ----------------------------------------------------------

    def photos(self) -> list[StoredPhoto]:
        """Every scanned photo, by id."""
        ...

    def count_photos(self) -> int: ...

    def add_photos(self, photos: Sequence[ScannedPhoto]) -> list[int]:
        """Record photos as scanned with their faces (person None; ``suggested`` kept), in one
        transaction; returns the faces' labels. GalleryError, nothing written, if a photo (same
        content hash) is scanned already. A face enrolled from the same photo (overlapping box)
        is linked to the photo instead of stored twice."""
        ...

    def remove_photos(self, photo_ids: Sequence[int]) -> int:
        """Forget photos that are gone: their scanned faces go (a person left with none goes
        too; enrolled faces stay), in one transaction; returns how many faces went."""
        ...

    def move_photos(self, moves: Sequence[tuple[int, str, int, float]]) -> None:
        """Photos found at a new path, as ``(photo id, path, size, mtime)``: the photo and its
        faces' paths follow; nothing is re-embedded."""
        ...

    def loose_faces(self) -> LooseFaces:
        """The faces of no person with embeddings, photos, clusters and suggestions."""
        ...

    def set_suggestions(self, suggestions: dict[int, str]) -> int:
        """Suggest faces of no one for people (face id -> name), skipping a face rejected for
        that person; returns how many were set."""
        ...

    def rejections(self, face_ids: Sequence[int]) -> dict[int, set[str]]:
        """Per face, the names of the people it was taken from."""
        ...

    def next_cluster_id(self) -> int:
        """The id the next new cluster gets (ids are never reused)."""
        ...

    def set_clusters(self, clusters: dict[int, int | None]) -> None:
        """Store the cluster of faces of no one (None: none, -1: kept out of clustering)."""
        ...

    def assign_cluster(self, cluster: int, name: str) -> tuple[list[int], list[int]]:
        """Give a cluster's faces to ``name`` (created if new), except faces once taken from
        ``name``, in one transaction; InputError if there is no such cluster. Returns (labels
        given, labels kept out)."""
        ...

    def unassign_face(self, face_id: int) -> FaceInfo:
        """Take a face from its person (the rejection is remembered; their last face takes them
        too), or reject its suggestion, or keep a face of no one out of its cluster; InputError
        if it is none of these. Returns the face as it was."""
        ...

    def thumbnail(self, face_id: int) -> bytes | None:
        """The face's JPEG thumbnail, None if it has none (FaceNotFoundError if unknown)."""
        ...

    def people(self) -> list[Person]:
        """Everyone enrolled, by name, with their number of faces."""
        ...

    def count_people(self) -> int: ...

    def count_faces(self) -> int:
        """Every stored face, unassigned ones included."""
        ...

    def count_unassigned(self) -> int: ...

    def export_faces(self, chunk: int = 1000) -> Iterator[list[FaceRecord]]:
        """Every stored face (unassigned ones too) with its embedding and thumbnail as stored,
        in chunks."""
        ...

    def search(
        self,
        embeddings: np.ndarray,
        k_people: int = 5,
        refine: str = "none",
        pool: int = 512,
        device: str | None = None,
        ef: int | None = None,
    ) -> list[list[Candidate]]:
        """Per query embedding, the nearest enrolled people, nearest first (people only: an
        unassigned face is never a candidate)."""
        ...

    def threshold(self, explicit: float | Threshold | None = None) -> Threshold:
        """The match threshold in force: explicit > calibrated > default for the gallery's size."""
        ...

    def set_threshold(self, value: float | None, source: str) -> None:
        """Store the gallery's own threshold, or with None go back to the default."""
        ...

    def info(self) -> dict[str, Any]:
        """Counts, model, index description, threshold: what ``facesearch info`` shows."""
        ...

    def changed_since_open(self) -> bool:
        """Whether anyone (any process) has written to the gallery since this object opened it."""
        ...

    def reindex(self, params: IndexParams | None = None) -> int:
        """Rebuild the vector index (with ``params``: as the gallery's new ones); returns the
        faces it holds (those of people)."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> GalleryBackend: ...

    def __exit__(self, *exc: Any) -> None: ...
