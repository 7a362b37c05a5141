"""CompreFace's recognition API under ``/recognition``, so that Double Take, Viseron and other
CompreFace clients use facesearch unchanged (docs/compreface.md).

A translation, no rules of its own: recognize is ``FaceSearch.identify`` through the server's
batcher, a subject is a person, an example is one enrolled face (``FaceSearch.enroll_face``).
Who a face is stays the threshold's decision; ``known_only`` only chooses whether an unknown face
still lists its nearest people, as CompreFace always does. A subject's ``similarity`` is
facesearch's cosine similarity (1 - distance). Errors keep the server's one-line ``error`` and
add CompreFace's ``message`` and ``code`` (its ``NO_FACES_FOUND`` 28 is what clients look for).
"""

import base64
import binascii
import math
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, Optional, Union

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ... import errors
from ...errors import FaceNotFoundError, InputError, NoFaceError, PersonNotFoundError
from ...images import LoadedImage
from ...names import validate_name
from ...threshold import name_for
from ...types import FaceInfo, FaceMatch, ImageResult
from ...weights import MODEL_ID
from ..auth import can_read, can_write
from ..context import Context, ServerContext
from ..errors import one_line, status_of
from ..schemas import Model
from ..uploads import Upload, read_form, read_uploads
from . import images
from .images import decode

# CompreFace's error codes (its ``ExceptionCode``) for what can go wrong here
NO_FACES_FOUND = 28
IMAGE_NOT_FOUND = 11
SUBJECT_NOT_FOUND = 42
UNAVAILABLE_FILE = 21
VALIDATION = 26
MISSING_PARAMETER = 33
MISSING_PART = 34
INCORRECT_ARGUMENT = 36
UNDEFINED = 0

CODES: dict[type[errors.FaceSearchError], int] = {  # most specific first
    NoFaceError: NO_FACES_FOUND,
    FaceNotFoundError: IMAGE_NOT_FOUND,
    PersonNotFoundError: SUBJECT_NOT_FOUND,
    errors.ImageError: UNAVAILABLE_FILE,
    InputError: INCORRECT_ARGUMENT,
}


class MissingInput(InputError):
    """A required part (the file) or parameter (the subject) is absent: CompreFace's 34/33."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _error(err: Exception) -> JSONResponse:
    """``{"error", "message", "code"}``: the server's one line, and CompreFace's keys."""
    status, code, headers = 400, UNDEFINED, None
    if isinstance(err, errors.FaceSearchError):
        status = status_of(err)
        code = getattr(err, "code", None) or next(
            (CODES[c] for c in type(err).__mro__ if c in CODES), UNDEFINED
        )
        message = str(err)
    elif isinstance(err, RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        where = " ".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid')}"
        code = MISSING_PARAMETER if first.get("type") == "missing" else VALIDATION
    else:
        assert isinstance(err, HTTPException)
        status, message, headers = err.status_code, str(err.detail), err.headers
    line = one_line(message)
    return JSONResponse(
        {"error": line, "message": line, "code": code}, status_code=status, headers=headers
    )


class CompreFaceRoute(APIRoute):
    """A route whose errors (its dependencies' too: keys, the gallery) answer ``_error``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except (errors.FaceSearchError, RequestValidationError, HTTPException) as err:
                return _error(err)

        return answer


router = APIRouter(prefix="/recognition", tags=["compreface"], route_class=CompreFaceRoute)

READ = [Depends(can_read)]
WRITE = [Depends(can_write)]


class CompreFaceError(Model):
    error: str
    message: str
    code: int


ERRORS: dict[Union[int, str], dict[str, Any]] = {
    code: {"model": CompreFaceError} for code in (400, 401, 403, 404, 413, 422, 503)
}

# OpenAPI: an image as the server's image bodies (multipart ``file``, raw bytes) or CompreFace's
# base64 JSON ``{"file": ...}``
_BASE64_FILE = {"type": "object", "properties": {"file": {"type": "string", "format": "byte"}}}
IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            **images.IMAGE_BODY["requestBody"]["content"],
            "application/json": {"schema": {**_BASE64_FILE, "required": ["file"]}},
        },
    }
}

DET_PROB = Query(
    None, ge=0.0, le=1.0, description="drop faces detected with a lower score (0.0 to 1.0)"
)
KNOWN_ONLY = Query(
    None,
    description="an unknown face gets no subjects (default: the server's "
    "--compreface-known-only; CompreFace lists the nearest anyway)",
)


# -- response models ---------------------------------------------------------------------------


class BoxOut(Model):
    probability: float
    x_min: int
    y_min: int
    x_max: int
    y_max: int


class SubjectOut(Model):
    subject: str
    similarity: float


class RecognizedOut(Model):
    box: BoxOut
    subjects: list[SubjectOut]
    execution_time: Optional[dict[str, float]] = None


class RecognizeOut(Model):
    result: list[RecognizedOut]
    plugins_versions: Optional[dict[str, str]] = None


class ExampleOut(Model):
    image_id: str
    subject: str


class ExamplesOut(Model):
    faces: list[ExampleOut]
    page_number: int
    page_size: int
    total_pages: int
    total_elements: int


class DeletedOut(Model):
    deleted: int


class SubjectsOut(Model):
    subjects: list[str]


class SubjectIn(Model):
    subject: str


class SubjectNameOut(Model):
    subject: str


class UpdatedOut(Model):
    updated: bool


# -- reading the image -------------------------------------------------------------------------


async def _upload(request: Request) -> Upload:
    """The one image of a request: multipart ``file``, base64 JSON ``{"file": ...}``, or the
    raw body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = await request.json()
        except ValueError as err:
            raise InputError(f"the JSON body cannot be read ({err})") from err
        value = body.get("file") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise MissingInput(
                'no image sent: the JSON body needs "file": "<base64>"', MISSING_PART
            )
        try:
            data = base64.b64decode(value.split(",", 1)[-1], validate=True)
        except (binascii.Error, ValueError) as err:
            raise InputError(f"file: not base64 ({err})") from err
        return Upload("base64", data)
    uploads = await read_uploads(request, await read_form(request))
    if not uploads:
        raise MissingInput(
            "no image sent: send it as a multipart field 'file' (curl -F file=@photo.jpg)",
            MISSING_PART,
        )
    if len(uploads) != 1:
        raise InputError(f"expected one image (multipart 'file'), got {len(uploads)}")
    return uploads[0]


async def _image(request: Request) -> LoadedImage:
    return await decode(await _upload(request))


# -- recognize ---------------------------------------------------------------------------------


def _box(face: FaceMatch, result: ImageResult) -> BoxOut:
    """CompreFace's integer box, inside the image."""
    x1, y1, x2, y2 = face.box
    return BoxOut(
        probability=round(face.score, 5),
        x_min=max(0, math.floor(x1)),
        y_min=max(0, math.floor(y1)),
        x_max=min(result.width, math.ceil(x2)),
        y_max=min(result.height, math.ceil(y2)),
    )


def _subjects(
    face: FaceMatch, result: ImageResult, count: int, known_only: bool
) -> list[SubjectOut]:
    """The face's nearest people, most similar first; with ``known_only``, only those the
    threshold in force accepts (none for an unknown face)."""
    candidates = list(face.candidates[:count])
    if known_only:
        threshold = result.threshold
        if face.name is None or threshold is None:
            return []
        candidates = [c for c in candidates if name_for(c, threshold) is not None]
    return [
        SubjectOut(subject=c.name, similarity=round(max(0.0, c.similarity), 5)) for c in candidates
    ]


def _area(face: FaceMatch) -> float:
    x1, y1, x2, y2 = face.box
    return (x2 - x1) * (y2 - y1)


@router.post(
    "/recognize",
    response_model=RecognizeOut,
    response_model_exclude_none=True,
    dependencies=READ,
    responses=ERRORS,
    openapi_extra=IMAGE_BODY,
)
async def recognize(
    request: Request,
    ctx: Context,
    limit: int = Query(0, ge=0, description="most faces, largest first; 0: all"),
    prediction_count: int = Query(1, ge=1, le=100, description="subjects per face"),
    det_prob_threshold: Optional[float] = DET_PROB,
    face_plugins: str = Query("", description="accepted and ignored (no plugins)"),
    status: bool = Query(False, description="add execution_time and plugins_versions"),
    known_only: Optional[bool] = KNOWN_ONLY,
) -> RecognizeOut:
    """Every face of the image (largest first) with its most similar subjects, as CompreFace's
    ``recognize``; 400 with code 28 when no face is found. Faces below facesearch's quality
    gate are left out, as faces below ``det_prob_threshold`` are."""
    image = await _image(request)
    started = time.perf_counter()
    result = await ctx.batcher.identify(image, top_k=prediction_count)
    took_ms = round((time.perf_counter() - started) * 1000.0, 1)
    faces = [
        f
        for f in result.faces
        if f.quality == "ok" and (det_prob_threshold is None or f.score >= det_prob_threshold)
    ]
    faces.sort(key=_area, reverse=True)
    if limit:
        faces = faces[:limit]
    if not faces:
        raise NoFaceError("No face is found in the given image")
    known = ctx.settings.compreface_known_only if known_only is None else known_only
    timing = {"recognize": took_ms} if status else None
    return RecognizeOut(
        result=[
            RecognizedOut(
                box=_box(f, result),
                subjects=_subjects(f, result, prediction_count, known),
                execution_time=timing,
            )
            for f in faces
        ],
        plugins_versions=(
            {"detector": "facesearch.MTCNN", "calculator": f"facesearch.{MODEL_ID}"}
            if status
            else None
        ),
    )


# -- examples (enrolled faces) -----------------------------------------------------------------


def _example(ctx: ServerContext, image_id: str) -> FaceInfo:
    """The enrolled face ``image_id`` names (FaceNotFoundError: CompreFace's 404, code 11)."""
    if image_id.isdigit():
        for face in ctx.fs.faces():
            if face.id == int(image_id) and face.person is not None:
                return face
    raise FaceNotFoundError(f"no example (enrolled face) with image_id {image_id!r}")


@router.post(
    "/faces",
    response_model=ExampleOut,
    status_code=201,
    dependencies=WRITE,
    responses=ERRORS,
    openapi_extra=IMAGE_BODY,
)
async def add_example(
    request: Request,
    ctx: Context,
    subject: str = Query(..., description="who the photo shows (created if new)"),
    det_prob_threshold: Optional[float] = DET_PROB,
) -> ExampleOut:
    """Enroll the photo's most prominent face as ``subject``; its ``image_id`` is the face id."""
    name = validate_name(subject)
    image = await _image(request)
    enroll = partial(
        ctx.fs.enroll_face, name, image, source=image.path, min_score=det_prob_threshold
    )
    face_id = await run_in_threadpool(enroll)
    return ExampleOut(image_id=str(face_id), subject=name)


@router.get("/faces", response_model=ExamplesOut, dependencies=READ, responses=ERRORS)
async def list_examples(
    ctx: Context,
    subject: Optional[str] = Query(None, description="only this subject's examples"),
    page: int = Query(0, ge=0),
    size: int = Query(20, ge=1, le=10_000),
) -> ExamplesOut:
    """Enrolled faces by id, a page at a time (CompreFace's paging: ``page`` from 0)."""

    def read() -> list[FaceInfo]:
        faces = ctx.fs.faces(validate_name(subject)) if subject is not None else ctx.fs.faces()
        return [f for f in faces if f.person is not None]

    faces = await run_in_threadpool(read)
    shown = faces[page * size : (page + 1) * size]
    return ExamplesOut(
        faces=[ExampleOut(image_id=str(f.id), subject=f.person or "") for f in shown],
        page_number=page,
        page_size=size,
        total_pages=math.ceil(len(faces) / size),
        total_elements=len(faces),
    )


@router.delete("/faces", response_model=DeletedOut, dependencies=WRITE, responses=ERRORS)
async def delete_examples(
    ctx: Context, subject: Optional[str] = Query(None, description="whose examples")
) -> DeletedOut:
    """Remove every example of ``subject`` (0 when there is no such subject). Unlike
    CompreFace, no ``subject`` is an error, not "everyone": that is ``DELETE /subjects``."""
    if subject is None:
        raise MissingInput(
            "subject is required: DELETE /recognition/faces?subject=NAME (to remove everyone: "
            "DELETE /recognition/subjects)",
            MISSING_PARAMETER,
        )

    def remove() -> int:
        try:
            return ctx.fs.remove(validate_name(subject))
        except PersonNotFoundError:
            return 0

    return DeletedOut(deleted=await run_in_threadpool(remove))


@router.delete("/faces/{image_id}", response_model=ExampleOut, dependencies=WRITE, responses=ERRORS)
async def delete_example(image_id: str, ctx: Context) -> ExampleOut:
    """Remove one example (a subject's last one removes the subject)."""

    def remove() -> FaceInfo:
        return ctx.fs.remove_face(_example(ctx, image_id).id)

    face = await run_in_threadpool(remove)
    return ExampleOut(image_id=image_id, subject=face.person or "")


@router.get(
    "/faces/{image_id}/img",
    dependencies=READ,
    responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
    response_class=Response,
)
async def example_image(image_id: str, ctx: Context) -> Response:
    """The example's face as a small JPEG (the crop kept at enroll time, not the photo)."""

    def read() -> Optional[bytes]:
        return ctx.fs.thumbnail(_example(ctx, image_id).id)

    data = await run_in_threadpool(read)
    if data is None:
        raise FaceNotFoundError(f"example {image_id} has no image (enrolled before thumbnails)")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-cache"})


# -- subjects (people) -------------------------------------------------------------------------


@router.get("/subjects", response_model=SubjectsOut, dependencies=READ, responses=ERRORS)
@router.get("/subjects/", response_model=SubjectsOut, dependencies=READ, include_in_schema=False)
async def list_subjects(ctx: Context) -> SubjectsOut:
    """Everyone enrolled, by name."""
    people = await run_in_threadpool(ctx.fs.people)
    return SubjectsOut(subjects=[p.name for p in people])


@router.post("/subjects", dependencies=WRITE, responses=ERRORS)
async def add_subject(body: SubjectIn) -> None:
    """Not available: a facesearch person exists through their faces; add an example."""
    name = validate_name(body.subject)
    raise HTTPException(
        501,
        f"a subject without faces cannot be stored: add an example instead "
        f"(POST /api/v1/recognition/faces?subject={name}), which creates {name!r}",
    )


@router.put("/subjects/{subject}", response_model=UpdatedOut, dependencies=WRITE, responses=ERRORS)
async def rename_subject(subject: str, ctx: Context, body: SubjectIn) -> UpdatedOut:
    """Rename a subject; to an existing subject's name, the two are merged."""
    await run_in_threadpool(ctx.fs.rename, validate_name(subject), body.subject)
    return UpdatedOut(updated=True)


@router.delete(
    "/subjects/{subject}", response_model=SubjectNameOut, dependencies=WRITE, responses=ERRORS
)
async def delete_subject(subject: str, ctx: Context) -> SubjectNameOut:
    """Remove a subject and all their examples."""
    name = validate_name(subject)
    await run_in_threadpool(ctx.fs.remove, name)
    return SubjectNameOut(subject=name)


@router.delete("/subjects", response_model=DeletedOut, dependencies=WRITE, responses=ERRORS)
async def delete_all_subjects(ctx: Context) -> DeletedOut:
    """Remove every subject and all their examples; ``deleted`` counts the subjects."""

    def remove() -> int:
        people = ctx.fs.people()
        for person in people:
            ctx.fs.remove(person.name)
        return len(people)

    return DeletedOut(deleted=await run_in_threadpool(remove))
