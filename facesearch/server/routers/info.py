"""``GET /info``: ``facesearch info --json``'s object, and how this server runs."""

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from ..auth import CallerAccess
from ..context import Context
from ..schemas import error_responses

router = APIRouter(tags=["info"])


@router.get("/info", responses=error_responses(401, 403, 503))
async def info(ctx: Context, access: CallerAccess) -> dict[str, Any]:
    """The gallery (people, faces, model, index, the threshold in force and why), and this
    server: what the caller's key may do, the upload limit, identify batching so far."""
    data = await run_in_threadpool(ctx.fs.info)
    data["server"] = {
        "access": access,
        "api_keys": not ctx.settings.open_access,
        "max_upload_bytes": ctx.settings.max_upload_bytes,
        "ready": ctx.ready,
        **ctx.batcher.stats(),
    }
    return data
