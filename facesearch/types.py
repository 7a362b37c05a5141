"""Plain data passed between stages.

Conventions, stated once: images are RGB; boxes are ``[x1, y1, x2, y2]`` in pixels of the image as
loaded (after EXIF rotation); ``similarity`` is cosine similarity of unit-norm FaceNet embeddings and
``distance = 1 - similarity`` (cosine distance, 0 = identical, 2 = opposite).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]


def as_box(values: Any) -> Box:
    """Four numbers (array, list) as an ``[x1, y1, x2, y2]`` tuple of floats."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return (x1, y1, x2, y2)


@dataclass(frozen=True, eq=False)
class Faces:
    """Columnar detections of one image: ``boxes`` (N, 4), ``scores`` (N,), ``landmarks`` (N, 5, 2)."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must have shape (N, 4), got {self.boxes.shape}")
        if self.scores.shape != (n,):
            raise ValueError(f"scores must have shape ({n},), got {self.scores.shape}")
        if self.landmarks.shape != (n, 5, 2):
            raise ValueError(f"landmarks must have shape ({n}, 5, 2), got {self.landmarks.shape}")

    @classmethod
    def empty(cls) -> Faces:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0, 5, 2), np.float32),
        )

    @classmethod
    def from_boxes(cls, boxes: np.ndarray) -> Faces:
        """Faces known only by their boxes (from a tracker, or given by a caller): score 1."""
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        return cls(b, np.ones(len(b), np.float32), np.zeros((len(b), 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: int | slice | np.ndarray | list[int]) -> Faces:
        """Select faces by index, slice, index array or boolean mask (``faces[faces.scores > 0.9]``)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Faces(self.boxes[index], self.scores[index], self.landmarks[index])

    @property
    def areas(self) -> np.ndarray:
        return (self.boxes[:, 2] - self.boxes[:, 0]) * (self.boxes[:, 3] - self.boxes[:, 1])


def _box(b: Any) -> list[float]:
    return [round(float(v), 1) for v in b]


@dataclass(frozen=True)
class Candidate:
    """One enrolled person as a possible match: their closest enrolled face to the query."""

    name: str
    person_id: int
    face_id: int
    similarity: float
    distance: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "similarity": round(self.similarity, 4),
            "distance": round(self.distance, 4),
        }


@dataclass(frozen=True)
class FaceMatch:
    """A face found in a query image and who it is.

    ``name`` is None when the face is unknown: no enrolled person is within the threshold.
    ``similarity``/``distance`` are to the nearest enrolled person even when that person was
    rejected (None when the gallery is empty). ``candidates`` holds one entry per person,
    best first; ``candidates[1]`` is the runner-up.

    ``quality`` is "low" for a detection below the quality gate (``quality.QualityGate``: a low
    detection score or a tiny face, often not a face at all): it is reported but not searched,
    so it has no name, similarity or candidates.
    """

    box: Box
    score: float
    name: str | None
    similarity: float | None
    distance: float | None
    candidates: tuple[Candidate, ...] = ()
    quality: str = "ok"  # "ok" | "low"

    @property
    def runner_up(self) -> Candidate | None:
        return self.candidates[1] if len(self.candidates) > 1 else None

    def to_dict(self) -> dict[str, Any]:
        best = self.candidates[0] if self.candidates else None
        return {
            "box": _box(self.box),
            "score": round(self.score, 4),
            "quality": self.quality,
            "name": self.name,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "distance": None if self.distance is None else round(self.distance, 4),
            "nearest": best.name if best else None,
            "runner_up": self.runner_up.to_dict() if self.runner_up else None,
            "candidates": [c.to_dict() for c in self.candidates],
        }


@dataclass(frozen=True)
class ImageResult:
    """Every face of one query image, in detection order (most confident first).

    ``threshold`` is the largest distance that was accepted as a match for these faces and
    ``threshold_source`` says why it is that value (``threshold.Threshold``).
    """

    image: str
    width: int
    height: int
    faces: tuple[FaceMatch, ...]
    threshold: float | None = None
    threshold_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "width": self.width,
            "height": self.height,
            "threshold": None if self.threshold is None else round(self.threshold, 4),
            "threshold_source": self.threshold_source,
            "faces": [f.to_dict() for f in self.faces],
        }


@dataclass(frozen=True)
class VerifiedFace:
    """The face of one photo that ``FaceSearch.verify`` compared: the most prominent of
    ``faces_found``."""

    image: str
    box: Box
    score: float
    faces_found: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "box": _box(self.box),
            "score": round(self.score, 4),
            "faces_found": self.faces_found,
        }


@dataclass(frozen=True)
class Verification:
    """Whether two photos show the same person (1:1): ``same`` when ``distance <= threshold``."""

    same: bool
    similarity: float
    distance: float
    threshold: float
    threshold_source: str
    faces: tuple[VerifiedFace, VerifiedFace]

    def to_dict(self) -> dict[str, Any]:
        return {
            "same_person": self.same,
            "similarity": round(self.similarity, 4),
            "distance": round(self.distance, 4),
            "threshold": round(self.threshold, 4),
            "threshold_source": self.threshold_source,
            "faces": [f.to_dict() for f in self.faces],
        }


@dataclass(frozen=True)
class Skip:
    """A photo that enroll did not add, and why (``reason`` is one of SKIP_REASONS)."""

    path: str
    reason: str
    detail: str = ""


SKIP_REASONS = (
    "no_face",
    "low_quality",
    "unreadable",
    "duplicate",
    "bad_name",
    "no_person",
    "empty",
)


@dataclass(frozen=True)
class ChosenFace:
    """An enrollment photo that held several faces, and the one taken as its subject."""

    path: str
    faces: int
    box: Box


@dataclass
class EnrollReport:
    """What one enroll call did: faces added per person, photos skipped with reasons."""

    added: dict[str, int] = field(default_factory=dict)
    skipped: list[Skip] = field(default_factory=list)
    chosen: list[ChosenFace] = field(default_factory=list)
    photos_seen: int = 0

    @property
    def enrolled(self) -> int:
        return sum(self.added.values())

    def skipped_by_reason(self) -> dict[str, int]:
        return _count_reasons(self.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "photos_seen": self.photos_seen,
            "enrolled": self.enrolled,
            "people": dict(sorted(self.added.items())),
            "skipped": [
                {"path": s.path, "reason": s.reason, "detail": s.detail} for s in self.skipped
            ],
            "several_faces": [
                {"path": c.path, "faces": c.faces, "chosen_box": _box(c.box)} for c in self.chosen
            ],
        }


@dataclass(frozen=True)
class Person:
    """An enrolled person and how many faces they have in the gallery."""

    id: int
    name: str
    faces: int
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "faces": self.faces, "created": self.created}


@dataclass(frozen=True)
class FaceRecord:
    """A face to store: who (None: no one yet, see ``FaceInfo``), from which photo (path and
    content hash), where, its embedding, and a small JPEG of it (``crops.face_thumbnail``)."""

    person: str | None
    source_path: str
    image_sha256: str
    box: tuple[float, float, float, float]
    score: float
    embedding: np.ndarray
    thumbnail: bytes | None = None
    #: a scanned face close enough to this enrolled person: proposed, not theirs until confirmed
    suggested: str | None = None


@dataclass(frozen=True)
class FaceInfo:
    """A stored face, without its embedding: its label (``id``), who it belongs to, where from.

    ``person`` is None for an unassigned face: stored and counted, but never a match for anyone
    until it is assigned to a person. ``added`` is when it was stored (ISO 8601, UTC).
    ``kind`` says where it came from: "enrolled" (``enroll``, one subject per photo) or
    "scanned" (``scan``, every face of a library photo). A scanned face without a person may
    carry a ``suggested`` person (close enough to them, not yet confirmed) and a ``cluster``.
    """

    id: int
    person: str | None
    source_path: str
    box: Box
    score: float
    added: str
    has_thumbnail: bool
    kind: str = "enrolled"
    suggested: str | None = None
    cluster: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "person": self.person,
            "source_path": self.source_path,
            "box": _box(self.box),
            "score": round(self.score, 4),
            "added": self.added,
            "has_thumbnail": self.has_thumbnail,
            "kind": self.kind,
            "suggested": self.suggested,
            "cluster": self.cluster,
        }


@dataclass(frozen=True)
class RenameResult:
    """What renaming a person did: ``merged`` when ``new`` was already someone, whose faces
    ``old``'s then joined; ``faces`` is how many faces changed name."""

    old: str
    new: str
    merged: bool
    faces: int

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "merged": self.merged, "faces": self.faces}


# -- the photo library (``facesearch scan``, ``library/``) ----------------------------------------


@dataclass(frozen=True)
class StoredPhoto:
    """A library photo the gallery has scanned: where it is now, its content hash, and the file's
    size and modification time when scanned (an unchanged file is not hashed again)."""

    id: int
    path: str
    sha256: str
    size: int
    mtime: float


@dataclass(frozen=True)
class ScannedPhoto:
    """A photo to record as scanned together with every face found in it (none is fine)."""

    path: str
    sha256: str
    size: int
    mtime: float
    faces: tuple[FaceRecord, ...] = ()


@dataclass(frozen=True, eq=False)
class LooseFaces:
    """The faces of no person, as arrays for clustering and suggesting (row i is one face).

    ``photos[i]``: the face's photo id, -1 if none; ``clusters[i]``: its cluster id, 0 for
    none, -1 if it was ejected from a cluster (kept out of automatic clustering);
    ``suggested[i]``: the id of the person it is suggested for, 0 for none.
    """

    ids: np.ndarray
    vectors: np.ndarray
    photos: np.ndarray
    clusters: np.ndarray
    suggested: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: np.ndarray) -> LooseFaces:
        return LooseFaces(
            self.ids[index],
            self.vectors[index],
            self.photos[index],
            self.clusters[index],
            self.suggested[index],
        )


SCAN_SKIP_REASONS = ("unreadable", "duplicate")


@dataclass
class ScanReport:
    """What one scan did: photos and faces added, photos unchanged, moved or gone, skipped."""

    folder: str = ""
    photos_seen: int = 0
    photos_added: int = 0
    faces_added: int = 0
    no_face: int = 0
    unchanged: int = 0
    moved: int = 0
    deleted: int = 0
    faces_removed: int = 0
    suggested: dict[str, int] = field(default_factory=dict)
    skipped: list[Skip] = field(default_factory=list)

    def skipped_by_reason(self) -> dict[str, int]:
        return _count_reasons(self.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "photos_seen": self.photos_seen,
            "photos_added": self.photos_added,
            "faces_added": self.faces_added,
            "photos_without_faces": self.no_face,
            "unchanged": self.unchanged,
            "moved": self.moved,
            "deleted": self.deleted,
            "faces_removed": self.faces_removed,
            "suggested": dict(sorted(self.suggested.items())),
            "skipped": [
                {"path": s.path, "reason": s.reason, "detail": s.detail} for s in self.skipped
            ],
        }


@dataclass(frozen=True)
class ClusterFace:
    """One face of a cluster: its id (label), its photo and where in it."""

    id: int
    image: str
    box: Box

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "image": self.image, "box": _box(self.box)}


@dataclass(frozen=True)
class Cluster:
    """Unnamed faces grouped as one unknown person; ``representative`` is the face nearest
    their mean (the one to show)."""

    id: int
    faces: tuple[ClusterFace, ...]
    representative: int

    @property
    def size(self) -> int:
        return len(self.faces)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "size": self.size,
            "representative": self.representative,
            "faces": [f.to_dict() for f in self.faces],
        }


@dataclass(frozen=True)
class ClusterReport:
    """The clusters of unnamed faces, largest first, and how many faces are in none of them."""

    clusters: tuple[Cluster, ...]
    unclustered: int

    def to_dict(self) -> dict[str, Any]:
        return {"clusters": [c.to_dict() for c in self.clusters], "unclustered": self.unclustered}


@dataclass(frozen=True)
class PhotoHit:
    """A photo a person is in: the face (id, box) that is them, and whether it is only a
    suggestion (a scanned face close to them, not confirmed)."""

    image: str
    face: int
    box: Box
    suggested: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "face": self.face,
            "box": _box(self.box),
            "suggested": self.suggested,
        }


@dataclass(frozen=True)
class NamedCluster:
    """What naming a cluster did: ``faces`` became ``name``'s; ``kept_out`` were once taken
    from ``name`` (``unassign``) and stay in no one's hands."""

    cluster: int
    name: str
    faces: tuple[int, ...]
    kept_out: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "name": self.name,
            "faces": list(self.faces),
            "kept_out": list(self.kept_out),
        }


def _count_reasons(skipped: list[Skip]) -> dict[str, int]:
    """How many photos were skipped for each reason (enroll and scan summaries)."""
    counts: dict[str, int] = {}
    for s in skipped:
        counts[s.reason] = counts.get(s.reason, 0) + 1
    return counts
