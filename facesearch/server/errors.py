"""The one place errors become HTTP responses: a status code and ``{"error": "one line"}``.

The library's error tree (``facesearch.errors``) decides the status; FastAPI's own errors
(unknown route, bad query parameter) and anything unexpected get the same one-line shape, never a
traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors

log = logging.getLogger(__name__)

# Most specific first: the first class in an error's MRO found here gives its status.
STATUS: dict[type[errors.FaceSearchError], int] = {
    errors.PersonNotFoundError: 404,  # no such person
    errors.FaceNotFoundError: 404,  # no face with that id
    errors.ClusterNotFoundError: 404,  # no cluster with that id
    errors.ImageError: 422,  # not an image, truncated, a decompression bomb
    errors.InputError: 400,  # a bad name, parameter, box, no face where one is needed
    errors.ModelMismatchError: 500,  # the server was started on a gallery of another model
    errors.GalleryError: 503,  # the gallery cannot be opened or written now (busy, gone)
    errors.WeightsError: 503,  # the models could not be loaded
    errors.FaceSearchError: 500,
}


def one_line(message: object) -> str:
    """A message as one line (errors are one line by design; this makes sure of it)."""
    return " ".join(str(message).split()) or "error"


def error_response(status: int, message: object, headers: dict[str, str] | None = None):
    return JSONResponse({"error": one_line(message)}, status_code=status, headers=headers)


def status_of(err: errors.FaceSearchError) -> int:
    for cls in type(err).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def install(app: FastAPI) -> None:
    """Register the handlers: library errors, HTTP errors, bad parameters, anything else."""

    @app.exception_handler(errors.FaceSearchError)
    async def library_error(_: Request, err: errors.FaceSearchError) -> JSONResponse:
        status = status_of(err)
        if status >= 500:
            log.error("%s", err)
        return error_response(status, err)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return error_response(err.status_code, err.detail, getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = " ".join(str(p) for p in first.get("loc", ()))
        return error_response(400, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal server error (the server log has the details)")
