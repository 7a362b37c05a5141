"""Reading uploaded photos: a request-size limit enforced while the body arrives, multipart
``file`` fields or a raw body, and the recently identified images a face can be enrolled from.

Uploads are kept in memory (or starlette's anonymous spool file) and decoded by
``facesearch.image_from_bytes``; a client's file name is only a label in answers, never a path.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePosixPath

from fastapi import HTTPException, Request
from starlette.datastructures import FormData, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InputError
from ..images import LoadedImage
from .errors import error_response

MAX_FILES = 64  # per request
MAX_LABEL = 200


def _too_large(limit: int, size: int | None = None) -> str:
    got = f"{size:,} bytes" if size is not None else "larger"
    return f"request body is {got}, over the upload limit of {limit:,} bytes ({limit / 2**20:g} MB)"


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, before reading it whole.

    A declared ``Content-Length`` over the limit is refused at once; a body without one (chunked)
    is counted as it arrives and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(413, _too_large(self.max_bytes, int(declared)))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, _too_large(self.max_bytes))
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except HTTPException as err:  # raised while a body was read outside the routers
            if started or err.status_code != 413:
                raise
            await error_response(413, err.detail)(scope, receive, send)


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its bytes and a label for answers (the client's file name, cleaned)."""

    label: str
    data: bytes


def _label(filename: str | None, fallback: str) -> str:
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable())[:MAX_LABEL]
    return name or fallback


async def read_form(request: Request) -> FormData | None:
    """The multipart (or url-encoded) form of a request, or None when the body is raw bytes."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return None
    try:
        return await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
    except HTTPException:
        raise
    except Exception as err:  # python-multipart's parse errors
        raise InputError(f"cannot read the multipart form ({err})") from err


async def read_uploads(
    request: Request, form: FormData | None, field: str = "file"
) -> list[Upload]:
    """The files sent as multipart ``field`` fields, or the raw body as one file."""
    if form is None:
        data = await request.body()
        return [Upload(_label(request.headers.get("x-filename"), "upload"), data)] if data else []
    uploads = []
    for i, value in enumerate(form.getlist(field), 1):
        if not isinstance(value, UploadFile):
            raise InputError(
                f"form field {field!r} must be a file upload (curl -F {field}=@photo.jpg)"
            )
        uploads.append(Upload(_label(value.filename, f"upload-{i}"), await value.read()))
    return uploads


def form_text(form: FormData | None, field: str) -> str | None:
    """A text field of the form (None when absent); InputError when it is a file."""
    if form is None or field not in form:
        return None
    value = form[field]
    if not isinstance(value, str):
        raise InputError(f"form field {field!r} must be text, not a file")
    return value


class RecentImages:
    """Images identified lately, by a random token, so that a face of one can be enrolled
    without sending the photo again (``face_from``); bounded in number and age."""

    def __init__(self, size: int, seconds: float) -> None:
        self.size = size
        self.seconds = seconds
        self._items: OrderedDict[str, tuple[float, LoadedImage]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, image: LoadedImage) -> str:
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._items[token] = (time.monotonic(), image)
            self._expire()
        return token

    def get(self, token: str) -> LoadedImage:
        with self._lock:
            self._expire()
            item = self._items.get(token)
        if item is None:
            raise InputError(
                f"face_from: unknown or expired image token (images are kept "
                f"{self.seconds / 60:g} minutes): identify the photo again"
            )
        return item[1]

    def _expire(self) -> None:
        now = time.monotonic()
        while self._items and (
            len(self._items) > self.size or now - next(iter(self._items.values()))[0] > self.seconds
        ):
            self._items.popitem(last=False)
