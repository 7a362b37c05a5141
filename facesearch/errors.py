"""The exceptions facesearch raises; the CLI turns each into one line on stderr and exit code 1."""

from __future__ import annotations

__all__ = [
    "FaceSearchError",
    "InputError",
    "ImageError",
    "NoFaceError",
    "PersonNotFoundError",
    "FaceNotFoundError",
    "ClusterNotFoundError",
    "GalleryError",
    "ModelMismatchError",
    "WeightsError",
]


class FaceSearchError(Exception):
    """Base class of every error facesearch raises on purpose."""


class InputError(FaceSearchError):
    """A path, name or option given by the user is unusable (missing path, empty folder, bad name)."""


class ImageError(InputError):
    """A file is not a readable image: not an image, truncated, corrupt, or too large to decode."""


class NoFaceError(InputError):
    """A photo has no face (none good enough) where one is needed: enrolling one face, verify."""


class PersonNotFoundError(InputError):
    """The named person is not enrolled in the gallery."""


class FaceNotFoundError(InputError):
    """No face with the given id (label) is stored in the gallery."""


class ClusterNotFoundError(InputError):
    """No cluster of unnamed faces has that id (``facesearch clusters`` lists them)."""


class GalleryError(FaceSearchError):
    """The gallery cannot be opened or written (read-only directory, corrupt database)."""


class ModelMismatchError(GalleryError):
    """The gallery was built with another embedding model or size than the one loaded."""


class WeightsError(FaceSearchError):
    """Model weights are missing, fail their checksum, or cannot be downloaded."""
