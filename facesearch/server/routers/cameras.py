"""The cameras: their state and annotated pictures (a JPEG, or an MJPEG stream), the live
timeline of events (server-sent events), and the faces they kept (snapshots), which can be
named (enrolling that face) or dismissed."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from ...cameras import Camera
from ..auth import can_read, can_write
from ..context import Context, ServerContext
from ..schemas import CameraOut, Model, error_responses

router = APIRouter(tags=["cameras"])

ERRORS = error_responses(400, 401, 403, 404, 503)
JPEG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/jpeg": {}}}}
NO_STORE = {"Cache-Control": "no-store"}
STREAM_FPS = 10.0  # most pictures per second an MJPEG stream sends
KEEPALIVE_S = 15.0  # an SSE comment this often keeps proxies from closing an idle stream

CameraName = Annotated[str, Path(description="the camera's name (--camera NAME=SOURCE)")]
SnapshotId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="a snapshot's id")]


class CamerasOut(Model):
    cameras: list[CameraOut]
    stats: dict[str, Any]


class SnapshotOut(Model):
    id: str
    camera: str
    time: float
    event: str
    name: Optional[str] = None
    similarity: Optional[float] = None
    track: int
    box: list[float]
    named: Optional[str] = None


class SnapshotsOut(Model):
    snapshots: list[SnapshotOut]


class NameIn(Model):
    name: str = Field(description="who this is: the face is enrolled under this name")


class NamedOut(Model):
    snapshot: SnapshotOut
    face_id: int


def _camera(ctx: ServerContext, name: str) -> Camera:
    try:
        return ctx.cameras.camera(name)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None


@router.get(
    "/cameras", response_model=CamerasOut, dependencies=[Depends(can_read)], responses=ERRORS
)
async def cameras(ctx: Context) -> CamerasOut:
    """Every camera's state (running, reconnecting and why, ...), processed FPS, frames and
    dropped frames, and the recognition worker's batching so far."""
    return CamerasOut(
        cameras=[CameraOut(**s.to_dict()) for s in ctx.cameras.status()],
        stats=ctx.cameras.stats(),
    )


@router.get(
    "/cameras/{name}/picture",
    dependencies=[Depends(can_read)],
    responses={**ERRORS, **JPEG},
    response_class=Response,
)
async def picture(name: CameraName, ctx: Context) -> Response:
    """The camera's latest processed frame with boxes, names and FPS drawn (JPEG)."""
    cam = _camera(ctx, name)
    data = await run_in_threadpool(cam.picture)
    if data is None:
        raise HTTPException(503, f"camera {name} has no picture yet ({cam.status().state})")
    return Response(data, media_type="image/jpeg", headers=NO_STORE)


@router.get(
    "/cameras/{name}/stream",
    dependencies=[Depends(can_read)],
    responses={**ERRORS, 200: {"content": {"multipart/x-mixed-replace; boundary=frame": {}}}},  # type: ignore[dict-item]
    response_class=StreamingResponse,
)
async def stream(name: CameraName, ctx: Context) -> StreamingResponse:
    """The annotated picture as an MJPEG stream (``<img src>`` shows it; at most 10 per
    second, each new processed frame once)."""
    cam = _camera(ctx, name)

    async def parts() -> AsyncIterator[bytes]:
        sent = None
        while not ctx.stopping.is_set():
            key = cam.picture_key
            if key is not None and key != sent:
                data = await run_in_threadpool(cam.picture)
                if data is not None:
                    sent = key
                    yield (
                        b"--frame\r\nContent-Type: image/jpeg\r\n"
                        + f"Content-Length: {len(data)}\r\n\r\n".encode()
                        + data
                        + b"\r\n"
                    )
            await asyncio.sleep(1.0 / STREAM_FPS)

    return StreamingResponse(
        parts(), media_type="multipart/x-mixed-replace; boundary=frame", headers=NO_STORE
    )


@router.get(
    "/events",
    dependencies=[Depends(can_read)],
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
)
async def events(
    ctx: Context,
    after: int = Query(0, ge=0, description="send only events numbered above this"),
    last_event_id: Optional[str] = Header(None),
) -> StreamingResponse:
    """The cameras' events as server-sent events (``event: face``, ``id``, ``data``: the same
    JSON as the webhooks get, with ``id``): first the recent ones (up to 200) above ``after``
    (or the ``Last-Event-ID`` a reconnecting client sends), then each one as it happens."""
    if last_event_id and last_event_id.isdigit():
        after = max(after, int(last_event_id))

    async def messages() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        yield "retry: 2000\n\n"
        async for item in ctx.cameras.feed.subscribe(after):
            if ctx.stopping.is_set():
                return
            if item is not None:
                quiet_since = loop.time()
                yield f"id: {item['id']}\nevent: face\ndata: {json.dumps(item)}\n\n"
            elif loop.time() - quiet_since >= KEEPALIVE_S:
                quiet_since = loop.time()
                yield ": keep-alive\n\n"

    return StreamingResponse(
        messages(),
        media_type="text/event-stream",
        headers={**NO_STORE, "X-Accel-Buffering": "no"},
    )


@router.get("/events/recent", dependencies=[Depends(can_read)], responses=ERRORS)
async def recent_events(
    ctx: Context,
    after: int = Query(0, ge=0, description="only events numbered above this"),
    limit: int = Query(100, ge=1, le=200),
) -> dict[str, list[dict[str, Any]]]:
    """The recent events (oldest first), as the stream sends them: for polling clients."""
    return {"events": ctx.cameras.feed.recent(after, limit)}


@router.get(
    "/snapshots",
    response_model=SnapshotsOut,
    dependencies=[Depends(can_read)],
    responses=ERRORS,
)
async def snapshots(
    ctx: Context,
    unknown: bool = Query(False, description="only unknown visitors not yet named"),
    limit: int = Query(100, ge=1, le=1000),
) -> SnapshotsOut:
    """The kept face snapshots, newest first."""
    found = await run_in_threadpool(ctx.cameras.snapshots.list, unknown=unknown, limit=limit)
    return SnapshotsOut(snapshots=[SnapshotOut(**s.to_dict()) for s in found])


@router.get(
    "/snapshots/{snap_id}/picture",
    dependencies=[Depends(can_read)],
    responses={**ERRORS, **JPEG},
    response_class=Response,
)
async def snapshot_picture(snap_id: SnapshotId, ctx: Context) -> Response:
    """A snapshot's JPEG: the face with its surroundings, as the camera saw it."""
    data = await run_in_threadpool(ctx.cameras.snapshots.jpeg, snap_id)
    if data is None:
        raise HTTPException(404, f"no snapshot {snap_id} (dismissed, or pruned as too old)")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private"})


@router.post(
    "/snapshots/{snap_id}/name",
    response_model=NamedOut,
    dependencies=[Depends(can_write)],
    responses=ERRORS,
)
async def name_snapshot(snap_id: SnapshotId, body: NameIn, ctx: Context) -> NamedOut:
    """Enroll the snapshot's face under ``name`` (a new person, or another face of one):
    the cameras recognise them from then on."""
    try:
        snap, face_id = await run_in_threadpool(ctx.cameras.name_snapshot, snap_id, body.name)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    return NamedOut(snapshot=SnapshotOut(**snap.to_dict()), face_id=face_id)


@router.delete(
    "/snapshots/{snap_id}",
    dependencies=[Depends(can_write)],
    responses=ERRORS,
)
async def dismiss_snapshot(snap_id: SnapshotId, ctx: Context) -> dict[str, str]:
    """Dismiss (delete) a snapshot."""
    if not await run_in_threadpool(ctx.cameras.snapshots.remove, snap_id):
        raise HTTPException(404, f"no snapshot {snap_id}")
    return {"dismissed": snap_id}
