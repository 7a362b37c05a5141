"""What every request works with: the shared ``FaceSearch``, the settings, the identify
batcher, the recent images and the cameras; routers get it with ``Depends(context)``."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ..cameras import CameraHub, CamerasConfig, snapshot_dir
from ..errors import FaceSearchError, GalleryError
from ..pipeline import FaceSearch
from .batching import IdentifyBatcher
from .settings import Settings
from .uploads import RecentImages

log = logging.getLogger(__name__)


class ServerContext:
    """One per app: created by ``create_app``, prepared by its lifespan."""

    def __init__(
        self, fs: FaceSearch, settings: Settings, cameras: CamerasConfig | None = None
    ) -> None:
        self.fs = fs
        self.settings = settings
        cameras = cameras or CamerasConfig()
        self.cameras = CameraHub(fs, cameras, snapshot_dir(cameras.snapshots, fs.gallery_location))
        self.batcher = IdentifyBatcher(fs, settings.batch_window_ms, settings.max_batch)
        self.recent = RecentImages(settings.recent_images, settings.recent_seconds)
        #: set when the server begins to stop: endless responses (event and picture streams) end
        self.stopping = threading.Event()
        self.models_loaded = False
        self.gallery_open = False
        self.error: str | None = None
        self._opened: asyncio.Event | None = None  # set once the gallery is open (or failed to)

    @property
    def ready(self) -> bool:
        return self.models_loaded and self.gallery_open

    async def prepare(self) -> None:
        """Open (or create) the gallery, then load the models, off the event loop; until this is
        done ``/readyz`` says not ready, and if it fails it says why. Requests wait for the
        gallery (``opened``), not for the models, which load on first use anyway."""
        self._opened = asyncio.Event()
        try:
            await run_in_threadpool(self.fs.ensure_gallery)
            self.gallery_open = True
        except FaceSearchError as err:
            self.error = str(err)
            log.error("not ready: %s", err)
            return
        finally:
            self._opened.set()
        try:
            await run_in_threadpool(self.fs.load_models)
            self.models_loaded = True
            log.info("ready: models loaded, gallery %s open", self.fs.gallery_name)
        except FaceSearchError as err:
            self.error = str(err)
            log.error("not ready: %s", err)
            return
        await run_in_threadpool(self.cameras.start)

    async def opened(self) -> None:
        """Wait until the gallery is open (a new one is being created: no request may read it
        half-made); GalleryError if it could not be opened."""
        if self._opened is not None:
            await self._opened.wait()
        if self._opened is not None and not self.gallery_open:
            raise GalleryError(self.error or "the gallery could not be opened")


def context(request: Request) -> ServerContext:
    return request.app.state.context


async def gallery_opened(request: Request) -> None:
    """Dependency of every API router: the gallery is open."""
    await context(request).opened()


#: a router parameter receiving the server's context
Context = Annotated[ServerContext, Depends(context)]
