"""POST each event as JSON to a URL, with retries and an optional HMAC signature.

A delivery that fails (connection refused, timeout, a 5xx or 429 answer) is retried with
exponential back-off (0.5 s doubling to ``max_backoff``) up to ``attempts`` times; a 4xx other
than 429 is the receiver refusing the event and is not retried. With a ``secret`` every request
carries ``X-Facesearch-Signature: sha256=<hex HMAC-SHA256 of the body>``, so the receiver can
check that the event came from this facesearch (compare with ``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError

SIGNATURE_HEADER = "X-Facesearch-Signature"


def sign(body: bytes, secret: str) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSink:
    """Deliver events to ``url`` (http or https)."""

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        timeout: float = 5.0,
        attempts: int = 6,
        max_backoff: float = 30.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(f"--webhook {url!r}: expected an http:// or https:// URL")
        self.url = url
        self.name = f"webhook {parts.scheme}://{parts.hostname}{parts.path}"
        self.secret = secret
        self.timeout = timeout
        self.attempts = attempts
        self.max_backoff = max_backoff
        self._closing = threading.Event()

    def deliver(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "facesearch"}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.secret)
        delay = 0.5
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(self.url, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    answer.read()
                return
            except urllib.error.HTTPError as err:
                if err.code < 500 and err.code != 429:
                    raise RuntimeError(f"{self.url} refused the event: HTTP {err.code}") from err
                reason = f"HTTP {err.code}"
            except (urllib.error.URLError, OSError) as err:
                reason = str(getattr(err, "reason", err))
            if attempt == self.attempts or self._closing.wait(delay):
                raise RuntimeError(f"{self.url}: {reason} (gave up after {attempt} attempts)")
            delay = min(delay * 2, self.max_backoff)

    def close(self) -> None:
        self._closing.set()
