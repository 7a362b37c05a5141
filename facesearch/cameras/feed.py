"""The server's live timeline: the cameras' recent events, numbered, with async subscribers
(the page's server-sent events stream). Published from the recognition thread, read from the
event loop; a slow subscriber loses its oldest events, never blocks the cameras."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

RECENT = 200  # events kept for a page that opens (or reconnects) later
SUBSCRIBER_QUEUE = 256


class EventFeed:
    """``publish`` (any thread) numbers an event and hands it to every subscriber."""

    def __init__(self, recent: int = RECENT, first_id: int | None = None) -> None:
        self._lock = threading.Lock()
        self._recent: deque[dict[str, Any]] = deque(maxlen=recent)
        # by default ids start at the milliseconds since the epoch, so they keep growing across
        # server restarts: a client resuming with ``after``/Last-Event-ID misses nothing new
        self._next = int(time.time() * 1000) if first_id is None else first_id
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]]
        self._subscribers = set()

    def publish(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Add ``payload`` (an ``events.event_payload`` object) with its ``id``; returns it."""
        with self._lock:
            item = {"id": self._next, **payload}
            self._next += 1
            self._recent.append(item)
            subscribers = list(self._subscribers)
        for loop, q in subscribers:
            try:
                loop.call_soon_threadsafe(_offer, q, item)
            except RuntimeError:  # the loop has closed: the server is stopping
                pass
        return item

    def recent(self, after: int = 0, limit: int = RECENT) -> list[dict[str, Any]]:
        """The kept events numbered above ``after``, oldest first (at most ``limit``, newest)."""
        with self._lock:
            items = [e for e in self._recent if e["id"] > after]
        return items[-limit:] if limit > 0 else []

    async def subscribe(
        self, after: int = 0, heartbeat: float = 1.0
    ) -> AsyncIterator[dict[str, Any] | None]:
        """The kept events above ``after``, then each new one as it is published; None after
        each ``heartbeat`` seconds without one (time for the caller to check it should go on)."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_QUEUE)
        entry = (asyncio.get_running_loop(), q)
        with self._lock:
            backlog = [e for e in self._recent if e["id"] > after]
            self._subscribers.add(entry)
        try:
            last = after
            for item in backlog:
                last = item["id"]
                yield item
            while True:
                try:
                    item = await asyncio.wait_for(q.get(), heartbeat)
                except asyncio.TimeoutError:
                    yield None
                    continue
                if item["id"] > last:  # published while the backlog was taken: already sent
                    last = item["id"]
                    yield item
        finally:
            with self._lock:
                self._subscribers.discard(entry)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)


def _offer(q: asyncio.Queue[dict[str, Any]], item: dict[str, Any]) -> None:
    if q.full():
        q.get_nowait()  # the oldest goes: the page shows the newest
    q.put_nowait(item)
