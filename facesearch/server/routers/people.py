"""``/people``: list, look at, enroll photos of, rename (merge) and remove people."""

from functools import partial
from typing import Union

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from ...errors import InputError, PersonNotFoundError
from ...names import validate_name
from ...types import Person
from ..auth import can_read, can_write
from ..context import Context, ServerContext
from ..schemas import (
    EnrolledFaceOut,
    EnrollOut,
    FaceOut,
    PeopleOut,
    PersonDetailOut,
    PersonOut,
    RemovedPersonOut,
    RenameIn,
    RenameOut,
    error_responses,
)
from ..uploads import form_text, read_form, read_uploads
from .images import decode, images_body, parse_box

router = APIRouter(prefix="/people", tags=["people"])

ERRORS = error_responses(400, 401, 403, 404, 413, 422, 503)


def _person(ctx: ServerContext, name: str) -> Person:
    wanted = validate_name(name)  # NFC, trimmed: as it was stored
    for person in ctx.fs.people():
        if person.name == wanted:
            return person
    raise PersonNotFoundError(f"no person named {name!r} in the gallery")


@router.get("", response_model=PeopleOut, dependencies=[Depends(can_read)], responses=ERRORS)
async def list_people(ctx: Context) -> PeopleOut:
    """Everyone enrolled, by name, with their number of faces and one face to show."""

    def read() -> PeopleOut:
        shown: dict[str, int] = {}
        for face in ctx.fs.faces():
            if face.person is not None and face.has_thumbnail:
                shown.setdefault(face.person, face.id)
        people = ctx.fs.people()
        return PeopleOut(people=[PersonOut.of(p, face_id=shown.get(p.name)) for p in people])

    return await run_in_threadpool(read)


@router.get(
    "/{name}", response_model=PersonDetailOut, dependencies=[Depends(can_read)], responses=ERRORS
)
async def get_person(name: str, ctx: Context) -> PersonDetailOut:
    """One person and each of their faces: id, source photo, box, detection score, when added."""

    def read() -> PersonDetailOut:
        person = _person(ctx, name)
        faces = ctx.fs.faces(person.name)
        shown = next((f.id for f in faces if f.has_thumbnail), None)
        return PersonDetailOut(
            person=PersonOut.of(person, face_id=shown), faces=[FaceOut.of(f) for f in faces]
        )

    return await run_in_threadpool(read)


@router.post(
    "/{name}/faces",
    response_model=Union[EnrollOut, EnrolledFaceOut],
    dependencies=[Depends(can_write)],
    responses=ERRORS,
    openapi_extra=images_body(
        ("face_from", "an identify answer's token: enroll a face of that image (with box)"),
        ("box", "x1,y1,x2,y2: the face to enroll (with face_from or one file)"),
    ),
)
async def enroll(
    name: str, request: Request, response: Response, ctx: Context
) -> Union[EnrollOut, EnrolledFaceOut]:
    """Enroll photos of ``name`` (created if new): one or more multipart ``file`` fields, each
    added or skipped with its reason (no_face, duplicate, unreadable) as ``enroll`` reports.

    Or one face: ``face_from`` (the ``token`` of an identify answer) and ``box`` (one of its
    faces' boxes), or one ``file`` and a ``box``; the answer is the new face's id."""
    form = await read_form(request)
    token, box_text = form_text(form, "face_from"), form_text(form, "box")
    box = parse_box(box_text) if box_text is not None else None
    uploads = await read_uploads(request, form)
    if token is not None or box is not None:
        if token is not None and uploads:
            raise InputError("send either face_from or photos, not both")
        if token is None and len(uploads) != 1:
            raise InputError("a box picks a face of one photo: send exactly one file with it")
        image = ctx.recent.get(token) if token is not None else await decode(uploads[0])
        enroll_face = partial(ctx.fs.enroll_face, name, image, box=box, source=image.path)
        face_id = await run_in_threadpool(enroll_face)
        response.status_code = 201
        return EnrolledFaceOut(
            person=validate_name(name), face_id=face_id, box=list(box) if box else None
        )
    if not uploads:
        raise InputError(
            "no photos sent: send them as multipart 'file' fields (curl -F file=@photo.jpg), "
            "or face_from (an identify token) with a box"
        )
    photos = [(u.label, u.data) for u in uploads]
    report = await run_in_threadpool(ctx.fs.enroll_uploads, name, photos)
    response.status_code = 201 if report.enrolled else 200
    return EnrollOut.of(report)


@router.patch(
    "/{name}", response_model=RenameOut, dependencies=[Depends(can_write)], responses=ERRORS
)
async def rename(name: str, body: RenameIn, ctx: Context) -> RenameOut:
    """Rename a person (JSON ``{"name": "new name"}``); to the name of someone enrolled, the
    two are merged and ``merged`` says so."""
    result = await run_in_threadpool(ctx.fs.rename, name, body.name)
    return RenameOut.of(result)


@router.delete(
    "/{name}", response_model=RemovedPersonOut, dependencies=[Depends(can_write)], responses=ERRORS
)
async def remove(name: str, ctx: Context) -> RemovedPersonOut:
    """Remove a person and all their faces."""
    removed = await run_in_threadpool(ctx.fs.remove, name)
    return RemovedPersonOut(name=name, faces_removed=removed)
