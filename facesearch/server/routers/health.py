"""``/healthz`` (the process answers) and ``/readyz`` (models loaded, gallery open, and how
each camera is doing)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..context import Context
from ..schemas import CameraOut, HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> HealthOut:
    """Liveness: the server process answers."""
    return HealthOut(status="ok")


@router.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
async def readyz(ctx: Context) -> JSONResponse:
    """Readiness: 200 once the models are loaded and the gallery is open, else 503 (and why).
    Each camera's state is listed; a camera that is down (``reconnecting``, with its error)
    does not make the server unready: identify and the other cameras still work."""
    body = ReadyOut(
        ready=ctx.ready,
        models_loaded=ctx.models_loaded,
        gallery_open=ctx.gallery_open,
        error=ctx.error,
        cameras=[CameraOut(**s.to_dict()) for s in ctx.cameras.status()],
    )
    return JSONResponse(body.model_dump(), status_code=200 if ctx.ready else 503)
