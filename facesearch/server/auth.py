"""Who may call the API: dependencies that routers declare (``Depends(can_read)``/``can_write``).

With API keys, every ``/api`` call sends one (``Authorization: Bearer KEY`` or ``X-API-Key:
KEY``); a read-only key may identify, verify and list, a read-write key may also enroll, rename
and delete. Without keys the server listens on loopback only, and answers only requests that
name a loopback host (a web page elsewhere cannot reach it by DNS rebinding) and, for writes,
that come from its own page (no cross-site form posts).
"""

import hmac
from collections.abc import Mapping
from typing import Annotated, Optional
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request

from .settings import Access, Settings, is_loopback


def settings(request: Request) -> Settings:
    return request.app.state.settings


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-api-key") or None


def _lookup(keys: Mapping[str, Access], presented: str) -> Optional[Access]:
    found: Optional[Access] = None
    for key, access in keys.items():
        # compare with every key, in constant time, so timing tells nothing about them
        if hmac.compare_digest(key.encode(), presented.encode()):
            found = access
    return found


def _check_open_access(request: Request, write: bool) -> None:
    host_header = request.headers.get("host", "")
    host = urlsplit(f"//{host_header}").hostname or ""
    if not is_loopback(host):
        raise HTTPException(
            403,
            f"host {host or '(none)'!r} refused: without an API key this server answers only "
            "loopback names (127.0.0.1, localhost); start it with an API key to serve others",
        )
    origin = request.headers.get("origin")
    if write and origin and urlsplit(origin).netloc != host_header:
        raise HTTPException(403, f"cross-site request from {origin} refused")


def access(request: Request, settings: Annotated[Settings, Depends(settings)]) -> Access:
    """What the caller may do (401 without a valid key when the server has keys)."""
    if settings.open_access:
        _check_open_access(request, write=request.method not in ("GET", "HEAD", "OPTIONS"))
        return "read-write"
    presented = _presented_key(request)
    if presented is None:
        raise HTTPException(
            401,
            "an API key is required: send Authorization: Bearer KEY or X-API-Key: KEY",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = _lookup(settings.api_keys, presented)
    if found is None:
        raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
    return found


def can_read(level: Annotated[Access, Depends(access)]) -> Access:
    """Any valid key (or open access)."""
    return level


def can_write(level: Annotated[Access, Depends(access)]) -> Access:
    """A read-write key (or open access); 403 for a read-only key."""
    if level != "read-write":
        raise HTTPException(
            403, "this API key is read-only: enroll, rename and delete need a read-write key"
        )
    return level


#: what the caller may do, for a router that answers differently by access (``/info``)
CallerAccess = Annotated[Access, Depends(can_read)]
