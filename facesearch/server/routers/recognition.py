"""``POST /identify`` and ``POST /verify``: who is in a photo; are two photos the same person."""

from typing import Literal, Optional

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from ...threshold import given
from ..auth import can_read
from ..context import Context
from ..schemas import IdentifyOut, VerifyOut, error_responses
from ..uploads import read_form
from .images import IMAGE_BODY, images_body, uploaded_images

router = APIRouter(tags=["recognition"], dependencies=[Depends(can_read)])

ERRORS = error_responses(400, 401, 403, 413, 422, 503)
THRESHOLD = Query(None, ge=0.0, le=2.0, description="largest cosine distance accepted as a match")


@router.post("/identify", response_model=IdentifyOut, responses=ERRORS, openapi_extra=IMAGE_BODY)
async def identify(
    request: Request,
    ctx: Context,
    threshold: Optional[float] = THRESHOLD,
    top_k: int = Query(3, ge=1, le=100, description="candidates per face, one per person"),
    refine: Literal["none", "exact", "gradient"] = "none",
    ef: Optional[int] = Query(None, ge=1, le=4096, description="HNSW search breadth"),
) -> IdentifyOut:
    """Every face in one image with who it is, or ``name: null`` (unknown): exactly
    ``identify --json``'s object for the image, with the threshold used and why, and a
    ``token`` to enroll one of its faces (``POST /people/{name}/faces`` with ``face_from``)."""
    (image,) = await uploaded_images(request, await read_form(request), 1)
    rule = None if threshold is None else given(threshold, "set by the threshold parameter")
    result = await ctx.batcher.identify(image, threshold=rule, top_k=top_k, refine=refine, ef=ef)
    return IdentifyOut.of(result, token=ctx.recent.put(image))


@router.post(
    "/verify",
    response_model=VerifyOut,
    responses=ERRORS,
    openapi_extra=images_body(),
)
async def verify(
    request: Request,
    ctx: Context,
    threshold: Optional[float] = THRESHOLD,
) -> VerifyOut:
    """Whether two photos (two multipart ``file`` fields) show the same person: the most
    prominent face of each compared, with the distance and the 1:1 threshold used."""
    first, second = await uploaded_images(request, await read_form(request), 2)
    rule = None if threshold is None else given(threshold, "set by the threshold parameter")
    result = await run_in_threadpool(ctx.fs.verify, first, second, threshold=rule)
    return VerifyOut.of(result)
