"""``/faces/{id}``: remove one (wrongly enrolled) face; its thumbnail."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from starlette.concurrency import run_in_threadpool

from ..auth import can_read, can_write
from ..context import Context
from ..schemas import FaceOut, error_responses

router = APIRouter(prefix="/faces", tags=["faces"])

ERRORS = error_responses(400, 401, 403, 404, 503)
FaceId = Annotated[int, Path(ge=0, description="the face's id (GET /people/{name} lists them)")]


@router.delete(
    "/{face_id}", response_model=FaceOut, dependencies=[Depends(can_write)], responses=ERRORS
)
async def remove_face(face_id: FaceId, ctx: Context) -> FaceOut:
    """Remove one face (a person's last face removes the person); answers what it was."""
    return FaceOut.of(await run_in_threadpool(ctx.fs.remove_face, face_id))


@router.get(
    "/{face_id}/thumbnail",
    dependencies=[Depends(can_read)],
    responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
    response_class=Response,
)
async def thumbnail(face_id: FaceId, ctx: Context) -> Response:
    """A small JPEG of the face, cropped when it was enrolled (no original file needed)."""
    data = await run_in_threadpool(ctx.fs.thumbnail, face_id)
    if data is None:
        raise HTTPException(
            404, f"face {face_id} has no thumbnail (enrolled before thumbnails were kept)"
        )
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-cache"})
