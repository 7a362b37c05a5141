"""Events out: who was seen where, delivered to webhooks and MQTT without slowing recognition.

A recogniser (``facesearch live``, later the server's cameras) hands each event to a
``Dispatcher``; every sink (``webhook.WebhookSink``, ``mqtt.MqttSink``) delivers from its own
thread, with a bounded queue, so a slow or failing receiver never blocks the frame loop: when a
queue is full the oldest event is dropped and counted. The payload is ``live --events``' JSON
object plus ``camera`` and ``time`` (``event_payload``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000  # events a sink holds while its receiver is slow or away


def event_payload(
    event: dict[str, Any], camera: str, snapshot: str | None = None
) -> dict[str, Any]:
    """The JSON object sent for one live event (``LiveEvent.to_dict()``): the same keys, plus
    the camera's name, the wall-clock time and, when one was kept, a snapshot reference."""
    out = dict(event)
    out["camera"] = camera
    out["time"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    if snapshot is not None:
        out["snapshot"] = snapshot
    return out


class Sink(Protocol):
    """Somewhere events go. ``deliver`` may block and raise; the dispatcher's thread calls it."""

    name: str

    def deliver(self, payload: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class _Worker:
    """One sink's queue and delivery thread."""

    def __init__(self, sink: Sink, size: int) -> None:
        self.sink = sink
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(size)
        self.dropped = 0
        self.failed = 0
        self.delivered = 0
        self.thread = threading.Thread(
            target=self._run, name=f"facesearch-events-{sink.name}", daemon=True
        )
        self.thread.start()

    def put(self, payload: dict[str, Any]) -> None:
        while True:
            try:
                self.queue.put_nowait(payload)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()  # the oldest goes: the newest state matters most
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        while True:
            payload = self.queue.get()
            if payload is None:
                return
            try:
                self.sink.deliver(payload)
                self.delivered += 1
            except Exception as err:  # a receiver's failure must never stop recognition
                self.failed += 1
                log.warning("%s: event not delivered (%s)", self.sink.name, err)


class Dispatcher:
    """Fan events out to sinks, each from its own thread. ``send`` never blocks."""

    def __init__(self, sinks: Sequence[Sink], queue_size: int = QUEUE_SIZE) -> None:
        self._workers = [_Worker(s, queue_size) for s in sinks]

    def send(self, payload: dict[str, Any]) -> None:
        for w in self._workers:
            w.put(payload)

    def stats(self) -> dict[str, dict[str, int]]:
        """Per sink: delivered, failed (given up after retries) and dropped (queue full)."""
        return {
            w.sink.name: {"delivered": w.delivered, "failed": w.failed, "dropped": w.dropped}
            for w in self._workers
        }

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout`` seconds per sink), then close the sinks."""
        for w in self._workers:
            try:
                w.queue.put(None, timeout=timeout)
            except queue.Full:
                pass
        for w in self._workers:
            w.thread.join(timeout)
            w.sink.close()


def open_sinks(
    webhooks: Sequence[str] = (),
    mqtt: str | None = None,
    *,
    secret: str | None = None,
    mqtt_prefix: str = "facesearch",
) -> Dispatcher | None:
    """A dispatcher to the given webhooks and MQTT broker (None when there are none): what
    ``live --webhook/--mqtt`` and the server's cameras use."""
    sinks: list[Sink] = []
    if webhooks:
        from .webhook import WebhookSink

        sinks += [WebhookSink(url, secret=secret) for url in webhooks]
    if mqtt:
        from .mqtt import MqttSink

        sinks.append(MqttSink(mqtt, prefix=mqtt_prefix))
    return Dispatcher(sinks) if sinks else None
