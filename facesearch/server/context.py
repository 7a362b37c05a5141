"""What every request works with: the shared ``FaceSearch``, the settings, the identify
batcher and the recent images; routers get it with ``Depends(context)``."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ..errors import FaceSearchError
from ..pipeline import FaceSearch
from .batching import IdentifyBatcher
from .settings import Settings
from .uploads import RecentImages

log = logging.getLogger(__name__)


class ServerContext:
    """One per app: created by ``create_app``, prepared by its lifespan."""

    def __init__(self, fs: FaceSearch, settings: Settings) -> None:
        self.fs = fs
        self.settings = settings
        self.batcher = IdentifyBatcher(fs, settings.batch_window_ms, settings.max_batch)
        self.recent = RecentImages(settings.recent_images, settings.recent_seconds)
        self.models_loaded = False
        self.gallery_open = False
        self.error: str | None = None

    @property
    def ready(self) -> bool:
        return self.models_loaded and self.gallery_open

    async def prepare(self) -> None:
        """Open (or create) the gallery and load the models, off the event loop; until this is
        done ``/readyz`` says not ready, and if it fails it says why."""
        try:
            await run_in_threadpool(self.fs.ensure_gallery)
            self.gallery_open = True
            await run_in_threadpool(self.fs.load_models)
            self.models_loaded = True
            log.info("ready: models loaded, gallery %s open", self.fs.gallery_name)
        except FaceSearchError as err:
            self.error = str(err)
            log.error("not ready: %s", err)


def context(request: Request) -> ServerContext:
    return request.app.state.context


#: a router parameter receiving the server's context
Context = Annotated[ServerContext, Depends(context)]
