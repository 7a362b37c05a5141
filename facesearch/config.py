"""Defaults and file locations, resolved in one place so the CLI, API and tests agree."""

from __future__ import annotations

import os
import re
from pathlib import Path

GALLERY_ENV = "FACESEARCH_GALLERY"
MODELS_ENV = "FACESEARCH_MODELS"

# The fixed match threshold (cosine distance) facesearch used before the default followed the
# gallery's size: the open-set threshold for <= 1 % stranger false-accepts with lfw_dev's 471
# people enrolled. The default now comes from ``threshold.default_threshold`` (which gives about
# this value at 471 people); ``evaluate --gallery-sizes`` reports this one beside it.
FIXED_THRESHOLD = 0.307

# Crop geometry: 160x160 MTCNN crops with a 32 px margin (in output pixels, facenet-pytorch's
# convention; close to the 32 px the checkpoint's author used on LFW's 250x250 photos), and
# embeddings averaged with the horizontally flipped crop. Chosen by measurement on lfw_dev
# (README, "Accuracy"); changing either changes the vectors, so both are part of the id stored
# with every gallery.
CROP_SIZE = 160
CROP_MARGIN = 32
FLIP_TTA = True

# Images larger than this many pixels are refused before decoding (PIL's own default limit).
MAX_IMAGE_PIXELS = 89_478_485


def _xdg(var: str, fallback: str) -> Path:
    base = os.environ.get(var)
    return Path(base) if base else Path.home() / fallback


def default_gallery_dir() -> Path:
    """The gallery used when neither --gallery nor $FACESEARCH_GALLERY is given."""
    return _xdg("XDG_DATA_HOME", ".local/share") / "facesearch" / "gallery"


def user_cache_dir() -> Path:
    """Per-user cache: downloaded weights, evaluation embeddings."""
    return _xdg("XDG_CACHE_HOME", ".cache") / "facesearch"


def user_models_dir() -> Path:
    """The per-user weights cache, last in the search order and the download target."""
    return user_cache_dir() / "models"


def resolve_gallery_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--gallery DIR, else $FACESEARCH_GALLERY, else the per-user default.

    A PostgreSQL URL is not a directory: use ``resolve_gallery_location`` where one is accepted.
    """
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(GALLERY_ENV)
    if env:
        return Path(env).expanduser()
    return default_gallery_dir()


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: object) -> bool:
    """Whether a gallery location names a PostgreSQL database rather than a directory."""
    return isinstance(location, str) and location.lower().startswith(POSTGRES_SCHEMES)


def display_location(location: str | os.PathLike[str]) -> str:
    """A gallery location fit to print: a URL's password is replaced by ``***``."""
    text = os.fspath(location)
    if is_postgres_url(text):
        return re.sub(r"^([a-z]+://[^:/@?#]*):[^@/?#]+@", r"\1:***@", text, flags=re.I)
    return text


def resolve_gallery_location(explicit: str | os.PathLike[str] | None = None) -> Path | str:
    """Like ``resolve_gallery_dir``, but a ``postgresql://`` URL is kept as a string."""
    for value in (explicit, os.environ.get(GALLERY_ENV)):
        if value and is_postgres_url(value):
            return str(value)
        if value:
            return Path(value).expanduser()
    return default_gallery_dir()


def models_search_path(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """Directories searched for weights, in order: --models, $FACESEARCH_MODELS, ./models, user cache."""
    dirs: list[Path] = []
    if explicit:
        dirs.append(Path(explicit).expanduser())
    env = os.environ.get(MODELS_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(Path.cwd() / "models")
    dirs.append(user_models_dir())
    return dirs
