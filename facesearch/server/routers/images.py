"""Reading the photo(s) of a request for the routers: uploads decoded off the event loop."""

import math
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from ...errors import InputError
from ...images import LoadedImage, image_from_bytes
from ...types import Box
from ..uploads import Upload, read_uploads

# OpenAPI description of an image body (FastAPI cannot infer it: we also accept raw bytes).
IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def images_body(*fields: tuple[str, str]) -> dict[str, Any]:
    """OpenAPI multipart body with these ``(name, description)`` form fields."""
    props: dict[str, Any] = {
        "file": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "photo(s), one multipart field each",
        }
    }
    for name, description in fields:
        props[name] = {"type": "string", "description": description}
    return {
        "requestBody": {
            "content": {"multipart/form-data": {"schema": {"type": "object", "properties": props}}}
        }
    }


async def decode(upload: Upload) -> LoadedImage:
    """Decode one upload (422 for a non-image, a truncated file, a decompression bomb)."""
    return await run_in_threadpool(image_from_bytes, upload.data, upload.label)


async def uploaded_images(request: Request, form: FormData | None, count: int) -> list[LoadedImage]:
    """Exactly ``count`` images from the request (multipart ``file`` fields or a raw body)."""
    uploads = await read_uploads(request, form)
    if not uploads:
        raise InputError(
            "no image sent: send it as a multipart field 'file' (curl -F file=@photo.jpg) "
            "or as the request body"
        )
    if len(uploads) != count:
        what = "one image" if count == 1 else f"{count} images"
        raise InputError(f"expected {what} (multipart 'file' fields), got {len(uploads)}")
    return [await decode(u) for u in uploads]


def parse_box(text: str) -> Box:
    """``"x1,y1,x2,y2"`` (or a JSON list of four numbers) as a box; InputError otherwise."""
    parts = text.strip().strip("[]").split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InputError(f"box must be four numbers x1,y1,x2,y2 (pixels), got {text[:80]!r}")
    x1, y1, x2, y2 = values
    return (x1, y1, x2, y2)
