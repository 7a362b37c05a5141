"""Publish events to an MQTT broker (paho-mqtt: ``pip install 'facesearch[mqtt]'``).

Topics, under ``prefix`` (default ``facesearch``):

* ``<prefix>/<camera>/events``: every event, the same JSON as the webhook (QoS 1);
* ``<prefix>/people/<name>``: retained, the person's last sighting
  (``{"name", "camera", "last_seen", "similarity"}``), so a subscriber learns at once where
  everyone was last seen;
* ``<prefix>/tracked_object_update``: on each recognition, the shape Frigate publishes for a
  recognised face (``{"type": "face", "id", "name", "score", "camera", "timestamp"}``), so
  automations written for Frigate's face events work with a changed prefix;
* ``homeassistant/sensor/facesearch_<name>/config``: retained Home Assistant MQTT discovery for a
  "last seen at" sensor per person (with ``discovery=True``);
* ``<prefix>/available``: ``online`` while connected, ``offline`` as the broker's last will.

A broker that is down or goes away is retried (1 s doubling to 30 s) and never stops
recognition; events published meanwhile wait in paho's queue (QoS 1) and go out on reconnect.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import InputError

log = logging.getLogger(__name__)


def _topic_part(text: str) -> str:
    """A name made safe as one MQTT topic level (no wildcards or separators)."""
    return re.sub(r"[#+/\s]+", "_", text).strip("_") or "_"


class MqttSink:
    """Deliver events to the broker at ``url`` (``mqtt://[user:pass@]host[:1883]``)."""

    def __init__(self, url: str, prefix: str = "facesearch", discovery: bool = True) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError as err:
            raise InputError("--mqtt needs paho-mqtt: pip install 'facesearch[mqtt]'") from err
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise InputError(f"--mqtt {url!r}: expected mqtt://[user:pass@]host[:port]")
        self.name = f"mqtt {parts.hostname}:{parts.port or 1883}"
        self.prefix = prefix.rstrip("/")
        self.discovery = discovery
        self._announced: set[str] = set()
        self._last: Any = None  # the latest publish, which close() waits for
        self._closing = False
        self._connected = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"facesearch-{id(self):x}")
        if parts.username:
            client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        if parts.scheme == "mqtts":
            client.tls_set()
        client.will_set(f"{self.prefix}/available", "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        default_port = 8883 if parts.scheme == "mqtts" else 1883
        client.connect_async(parts.hostname, parts.port or default_port, keepalive=30)
        client.loop_start()
        self._client = client

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("%s: connection refused (%s)", self.name, reason)
            return
        self._connected.set()
        client.publish(f"{self.prefix}/available", "online", qos=1, retain=True)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self._connected.is_set() and not self._closing:
            log.warning("%s: disconnected (%s); reconnecting", self.name, reason)
        self._connected.clear()

    def wait_connected(self, timeout: float) -> bool:
        """Whether the broker accepted the connection within ``timeout`` seconds."""
        return self._connected.wait(timeout)

    def deliver(self, payload: dict[str, Any]) -> None:
        camera = _topic_part(str(payload.get("camera", "camera")))
        self._publish(f"{self.prefix}/{camera}/events", payload)
        name = payload.get("name")
        if payload.get("event") == "recognized" and name:
            person = _topic_part(str(name))
            state_topic = f"{self.prefix}/people/{person}"
            if self.discovery and person not in self._announced:
                self._announce(person, str(name), state_topic)
            seen = {
                "name": name,
                "camera": payload.get("camera"),
                "last_seen": payload.get("time"),
                "similarity": payload.get("similarity"),
            }
            self._publish(state_topic, seen, retain=True)
            self._publish(
                f"{self.prefix}/tracked_object_update",
                {
                    "type": "face",
                    "id": f"{payload.get('camera')}-{payload.get('track')}",
                    "name": name,
                    "score": payload.get("similarity"),
                    "camera": payload.get("camera"),
                    "timestamp": time.time(),
                },
            )

    def _announce(self, person: str, name: str, state_topic: str) -> None:
        config = {
            "name": f"{name} last seen",
            "unique_id": f"facesearch_{person}",
            "state_topic": state_topic,
            "value_template": "{{ value_json.camera }}",
            "json_attributes_topic": state_topic,
            "availability_topic": f"{self.prefix}/available",
            "icon": "mdi:face-recognition",
        }
        self._publish(f"homeassistant/sensor/facesearch_{person}/config", config, retain=True)
        self._announced.add(person)

    def _publish(self, topic: str, payload: dict[str, Any], retain: bool = False) -> None:
        body = json.dumps(payload, ensure_ascii=False)
        info = self._client.publish(topic, body, qos=1, retain=retain)
        self._last = info
        if info.rc not in (0, 4):  # 4: not connected yet; paho keeps QoS 1 messages until then
            raise RuntimeError(f"{self.name}: publish to {topic} failed (rc {info.rc})")

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (waiting up to ``timeout`` s for the broker), say offline, and
        disconnect."""
        if self._connected.wait(timeout if self._last is not None else 0):
            self._last = self._client.publish(
                f"{self.prefix}/available", "offline", qos=1, retain=True
            )
            try:
                self._last.wait_for_publish(timeout)
            except (RuntimeError, ValueError):  # dropped meanwhile: nothing more to wait for
                pass
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()
