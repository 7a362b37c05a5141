"""What a server is started with, checked once: where it listens, its API keys, its limits."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..errors import InputError

Access = Literal["read-only", "read-write"]

API_KEY_ENV = "FACESEARCH_API_KEY"
READ_ONLY_KEY_ENV = "FACESEARCH_READ_ONLY_KEY"
MIN_KEY_LENGTH = 16
DEFAULT_MAX_UPLOAD_MB = 20.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address to listen on, or a Host header's name) is loopback."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """A server's settings. ``api_keys`` maps each key to what it may do; without keys the
    server must listen on loopback only (``check_host``) and answers only loopback names."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: Mapping[str, Access] = field(default_factory=dict)
    #: largest request body accepted (uploads), in bytes; larger ones get 413 before being read
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)
    #: how long concurrent identify requests are gathered into one batch, and its largest size
    batch_window_ms: float = 5.0
    max_batch: int = 16
    #: how many identified images are kept, and for how long, for "enroll a face from this result"
    recent_images: int = 32
    recent_seconds: float = 600.0
    #: CompreFace-compatible recognize: an unknown face gets no subjects (CompreFace lists the
    #: nearest anyway); a request's ``known_only`` parameter overrides it (docs/compreface.md)
    compreface_known_only: bool = False

    def __post_init__(self) -> None:
        for key, access in self.api_keys.items():
            if len(key) < MIN_KEY_LENGTH or not key.isprintable() or key != key.strip():
                raise InputError(
                    f"an API key must be at least {MIN_KEY_LENGTH} printable characters without "
                    "spaces around it (e.g. python -c 'import secrets; print(secrets.token_urlsafe())')"
                )
            if access not in ("read-only", "read-write"):
                raise InputError(f"API key access must be read-only or read-write, not {access!r}")
        if not 1 <= self.port <= 65535 and self.port != 0:
            raise InputError(f"--port must be 1..65535, got {self.port}")
        if self.max_upload_bytes < 1024:
            raise InputError("the upload limit must be at least 1 KB")
        if self.max_batch < 1 or self.batch_window_ms < 0:
            raise InputError("--max-batch must be at least 1 and --batch-window-ms at least 0")

    @property
    def open_access(self) -> bool:
        """No API keys: anyone who can reach the server may do anything (loopback only)."""
        return not self.api_keys

    def check_host(self) -> None:
        """Refuse to listen beyond loopback without an API key (InputError saying what to do)."""
        if self.open_access and not is_loopback(self.host):
            raise InputError(
                f"refusing to listen on {self.host} without an API key: anyone on the network "
                f"could enroll and delete people; set ${API_KEY_ENV} (or --api-key KEY), or use "
                "--host 127.0.0.1"
            )


def keys_from(
    read_write: list[str] | tuple[str, ...] = (), read_only: list[str] | tuple[str, ...] = ()
) -> dict[str, Access]:
    """The key table of ``Settings`` from lists of read-write and read-only keys; entries may
    hold several keys separated by commas (as the environment variables do)."""
    keys: dict[str, Access] = {}
    for access, values in (("read-only", read_only), ("read-write", read_write)):
        for value in values:
            for key in value.split(","):
                if key.strip():
                    keys[key.strip()] = access  # type: ignore[assignment]
    return keys
