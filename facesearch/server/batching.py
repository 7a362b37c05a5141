"""Cross-request batching: identify requests that arrive together run as one
``FaceSearch.identify_batch`` call, so their faces are detected and embedded in one batch.

One worker thread runs the batches, off the event loop. A batch starts with the first waiting
request and takes every request that arrives within ``window_ms`` (or is already waiting, up to
``max_batch``); requests that queue while a batch runs form the next one. Requests with
different parameters (threshold, top_k, refine, ef) go in different calls.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..images import LoadedImage
from ..pipeline import FaceSearch
from ..threshold import Threshold
from ..types import ImageResult

log = logging.getLogger(__name__)

Params = tuple[Threshold | None, int, str, int | None]  # threshold, top_k, refine, ef


@dataclass
class _Job:
    image: LoadedImage
    params: Params
    future: asyncio.Future[ImageResult] = field(repr=False)


class IdentifyBatcher:
    """``await batcher.identify(image, ...)`` answers like ``FaceSearch.identify``, batched with
    the requests around it. ``start()`` in the event loop before use, ``stop()`` after."""

    def __init__(self, fs: FaceSearch, window_ms: float = 5.0, max_batch: int = 16) -> None:
        self.fs = fs
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        #: identify_batch calls made and images identified (``/info`` shows them)
        self.batches = 0
        self.images = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="facesearch-identify")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="identify-batcher")

    async def stop(self) -> None:
        """Finish the batch running, if any, and stop (uvicorn has let in-flight requests end)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def stats(self) -> dict[str, Any]:
        return {
            "identify_batches": self.batches,
            "identify_images": self.images,
            "mean_batch": round(self.images / self.batches, 2) if self.batches else None,
            "batch_window_ms": self.window * 1000.0,
            "max_batch": self.max_batch,
        }

    async def identify(
        self,
        image: LoadedImage,
        *,
        threshold: Threshold | None = None,
        top_k: int = 3,
        refine: str = "none",
        ef: int | None = None,
    ) -> ImageResult:
        if self._queue is None:
            raise RuntimeError("IdentifyBatcher.start() was not called")
        future: asyncio.Future[ImageResult] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(image, (threshold, top_k, refine, ef), future))
        return await future

    async def _gather(self) -> list[_Job]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        jobs = [await self._queue.get()]
        deadline = loop.time() + self.window
        while len(jobs) < self.max_batch:
            if not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                jobs.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return jobs

    async def _run(self) -> None:
        while True:
            jobs = await self._gather()
            groups: dict[Params, list[_Job]] = {}
            for job in jobs:
                if not job.future.done():  # a client that went away is not waited for
                    groups.setdefault(job.params, []).append(job)
            for params, group in groups.items():
                await self._answer(params, group)

    async def _answer(self, params: Params, group: list[_Job]) -> None:
        threshold, top_k, refine, ef = params
        call = partial(
            self.fs.identify_batch,
            [job.image for job in group],
            threshold=threshold,
            top_k=top_k,
            refine=refine,
            ef=ef,
        )
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except Exception as err:
            if len(group) == 1:
                if not group[0].future.done():
                    group[0].future.set_exception(err)
                return
            # one request's failure is not the others': answer each one alone
            for job in group:
                await self._answer(params, [job])
            return
        self.batches += 1
        self.images += len(group)
        for job, result in zip(group, results):
            if not job.future.done():
                job.future.set_result(result)
