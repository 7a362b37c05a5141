"""Response models: the shapes of the library's ``to_dict`` (one source for CLI and API JSON).

Routers build them with ``Model.of(obj)`` from a library dataclass, and the models forbid keys
they do not know, so a ``to_dict`` that changes without its model here fails the tests instead
of silently reaching clients. They also document the API in ``/openapi.json`` and ``/docs``.
"""

from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def of(cls, obj: Any, **extra: Any) -> Any:
        """This model from a library object's ``to_dict()`` (plus ``extra`` keys)."""
        return cls.model_validate({**obj.to_dict(), **extra})


class Error(Model):
    """Every error: one line saying what is wrong (and what to do)."""

    error: str


def error_responses(*codes: int) -> dict[Union[int, str], dict[str, Any]]:
    """OpenAPI ``responses=`` for these error status codes: each an ``Error``."""
    return {code: {"model": Error} for code in codes}


class CandidateOut(Model):
    name: str
    similarity: float
    distance: float


class FaceMatchOut(Model):
    box: list[float]
    score: float
    quality: str  # "ok", or "low": below the quality gate, so not named
    name: Optional[str]
    similarity: Optional[float]
    distance: Optional[float]
    nearest: Optional[str]
    runner_up: Optional[CandidateOut]
    candidates: list[CandidateOut]


class IdentifyOut(Model):
    """``identify --json``'s object for one image, plus ``token``: send it back as
    ``face_from`` to enroll one of these faces without uploading the photo again."""

    image: str
    width: int
    height: int
    threshold: Optional[float]
    threshold_source: Optional[str]
    faces: list[FaceMatchOut]
    token: str


class VerifiedFaceOut(Model):
    image: str
    box: list[float]
    score: float
    faces_found: int


class VerifyOut(Model):
    same_person: bool
    similarity: float
    distance: float
    threshold: float
    threshold_source: str
    faces: list[VerifiedFaceOut]


class SkipOut(Model):
    path: str
    reason: str
    detail: str


class SeveralFacesOut(Model):
    path: str
    faces: int
    chosen_box: list[float]


class EnrollOut(Model):
    """``enroll --json``'s report: per photo, added, or skipped with the reason."""

    photos_seen: int
    enrolled: int
    people: dict[str, int]
    skipped: list[SkipOut]
    several_faces: list[SeveralFacesOut]


class EnrolledFaceOut(Model):
    """One face enrolled from an identify result (``face_from``) or at a given ``box``."""

    person: str
    face_id: int
    box: Optional[list[float]]


class PersonOut(Model):
    name: str
    faces: int
    created: str
    face_id: Optional[int] = None  # a face of theirs to show (its thumbnail)


class PeopleOut(Model):
    people: list[PersonOut]


class FaceOut(Model):
    id: int
    person: Optional[str]
    source_path: str
    box: list[float]
    score: float
    added: str
    has_thumbnail: bool
    kind: str  # "enrolled", or "scanned" (a library photo's face)
    suggested: Optional[str]  # a scanned face's proposed person, not yet confirmed
    cluster: Optional[int]


class PersonDetailOut(Model):
    person: PersonOut
    faces: list[FaceOut]


class RenameIn(Model):
    name: str


class RenameOut(Model):
    old: str
    new: str
    merged: bool
    faces: int


class RemovedPersonOut(Model):
    name: str
    faces_removed: int


class HealthOut(Model):
    status: str


class CameraOut(Model):
    name: str
    source: str
    state: str
    error: Optional[str] = None
    fps: float
    frames: int
    dropped: int
    reconnects: int
    width: int
    height: int
    latency_p50_ms: Optional[float] = Field(
        None, description="capture to result, median of the last 300 frames (ms)"
    )
    latency_p95_ms: Optional[float] = Field(
        None, description="capture to result, 95th percentile of the last 300 frames (ms)"
    )


class ReadyOut(Model):
    ready: bool
    models_loaded: bool
    gallery_open: bool
    error: Optional[str] = None
    cameras: list[CameraOut] = []


class ClusterFaceOut(Model):
    id: int
    image: str
    box: list[float]


class ClusterOut(Model):
    id: int
    size: int
    representative: int
    faces: list[ClusterFaceOut]


class ClustersOut(Model):
    """``facesearch clusters --json``'s object: unknown people, largest first."""

    clusters: list[ClusterOut]
    unclustered: int


class NameClusterIn(Model):
    name: str


class NamedClusterOut(Model):
    cluster: int
    name: str
    faces: list[int]
    kept_out: list[int]


class PhotoHitOut(Model):
    image: str
    face: int
    box: list[float]
    suggested: bool


class PhotosOut(Model):
    name: str
    photos: list[PhotoHitOut]
