"""``create_app(fs, settings)``: the FastAPI application; ``serve`` runs it on uvicorn."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..cameras import CamerasConfig
from ..pipeline import FaceSearch
from . import errors
from .auth import can_read
from .context import ServerContext, gallery_opened
from .routers import cameras as camera_api
from .routers import compreface, faces, health, info, library, people, recognition
from .settings import Settings
from .uploads import BodySizeLimit

log = logging.getLogger(__name__)

API = "/api/v1"
STATIC = Path(__file__).parent / "static"

# The page loads only its own files; /docs (Swagger UI) loads its own from a CDN and is exempt.
PAGE_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware adding ``PAGE_HEADERS`` to every response but the API docs'."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(("/docs", "/redoc")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + PAGE_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(
    fs: FaceSearch, settings: Settings | None = None, cameras: CamerasConfig | None = None
) -> FastAPI:
    """The API under ``/api/v1``, ``/healthz`` and ``/readyz``, and the page at ``/``, over
    ``fs``. Its lifespan opens (or creates) the gallery and loads the models in the background,
    then starts the ``cameras``, and runs the identify batcher; use it as
    ``with TestClient(create_app(fs)) as client``."""
    settings = settings or Settings()
    ctx = ServerContext(fs, settings, cameras)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ctx.batcher.start()
        preparing = asyncio.get_running_loop().create_task(ctx.prepare())
        await asyncio.sleep(0)  # prepare() has begun: requests wait for the gallery from now
        try:
            yield
        finally:
            ctx.stopping.set()
            if not preparing.done():
                preparing.cancel()
            await run_in_threadpool(ctx.cameras.stop)
            await ctx.batcher.stop()
            fs.close()

    app = FastAPI(
        title="facesearch",
        version=__version__,
        summary="Enroll people and identify faces in photos (MTCNN + FaceNet + HNSW).",
        lifespan=lifespan,
    )
    app.state.context = ctx
    app.state.settings = settings
    errors.install(app)
    app.include_router(health.router)  # /healthz, /readyz: probes, no key needed
    app.include_router(health.router, prefix=API, dependencies=[Depends(can_read)])
    for module in (recognition, people, faces, library, camera_api, info, compreface):
        app.include_router(module.router, prefix=API, dependencies=[Depends(gallery_opened)])
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="page")
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    return app


def serve(
    fs: FaceSearch,
    settings: Settings,
    log_level: str = "info",
    cameras: CamerasConfig | None = None,
) -> str | None:
    """Run the server until Ctrl-C or SIGTERM; returns the signal's name (None otherwise).

    uvicorn stops accepting connections, lets requests in flight finish (an enroll commits all
    its photos; each of its batches is one transaction, so even a killed server leaves no half
    of one), then the lifespan closes the gallery.
    """
    import uvicorn

    settings.check_host()
    app = create_app(fs, settings, cameras)
    ctx: ServerContext = app.state.context
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_graceful_shutdown=None,  # in-flight requests always finish
        server_header=False,
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            ctx.stopping.set()  # event and picture streams end, so they are not waited for
            super().handle_exit(sig, frame)

    server = Server(config)
    stopped_by: list[str] = []

    def note(sig: int, _: FrameType | None) -> None:
        stopped_by.append(signal.Signals(sig).name)

    # uvicorn handles SIGINT/SIGTERM while it runs, then re-raises the signal to whatever handler
    # was there before; ours notes it, so a stop by signal is a clean exit rather than a kill.
    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return stopped_by[0] if stopped_by else None
