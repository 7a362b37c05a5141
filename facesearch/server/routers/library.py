"""The photo library over HTTP: unknown people as clusters, naming one, ejecting a face, and a
person's photos. Scanning a folder stays a command (``facesearch scan``): a server never reads
paths a client names."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from ..auth import can_read, can_write
from ..context import Context
from ..schemas import (
    ClustersOut,
    FaceOut,
    NameClusterIn,
    NamedClusterOut,
    PhotoHitOut,
    PhotosOut,
    error_responses,
)

router = APIRouter(tags=["library"])

ERRORS = error_responses(400, 401, 403, 404, 422, 503)
ClusterId = Annotated[int, Path(ge=0, description="a cluster's id (GET /clusters lists them)")]


@router.get(
    "/clusters", response_model=ClustersOut, dependencies=[Depends(can_read)], responses=ERRORS
)
async def clusters(
    ctx: Context, min_faces: Annotated[int, Query(ge=1, le=1000)] = 3
) -> ClustersOut:
    """The faces of no one grouped into unknown people (new faces join incrementally)."""
    return ClustersOut.of(await run_in_threadpool(ctx.fs.clusters, min_faces))


@router.post(
    "/clusters/{cluster}/name",
    response_model=NamedClusterOut,
    dependencies=[Depends(can_write)],
    responses=ERRORS,
)
async def name_cluster(cluster: ClusterId, body: NameClusterIn, ctx: Context) -> NamedClusterOut:
    """A cluster's faces become ``name``'s (a new person, or someone enrolled)."""
    return NamedClusterOut.of(await run_in_threadpool(ctx.fs.name_cluster, cluster, body.name))


@router.post(
    "/faces/{face_id}/unassign",
    response_model=FaceOut,
    dependencies=[Depends(can_write)],
    responses=ERRORS,
)
async def unassign(face_id: Annotated[int, Path(ge=0)], ctx: Context) -> FaceOut:
    """Eject one face from its person or cluster; it is never suggested to that person again."""
    return FaceOut.of(await run_in_threadpool(ctx.fs.unassign, face_id))


@router.get(
    "/people/{name}/photos",
    response_model=PhotosOut,
    dependencies=[Depends(can_read)],
    responses=ERRORS,
)
async def photos(name: str, ctx: Context, suggested: bool = False) -> PhotosOut:
    """Every photo ``name`` is in, with the box of their face (``suggested``: and suggestions)."""
    hits = await run_in_threadpool(lambda: ctx.fs.find(name, suggested=suggested))
    return PhotosOut(name=name, photos=[PhotoHitOut.of(h) for h in hits])
