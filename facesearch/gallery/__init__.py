"""Galleries: where enrolled faces live and how the nearest people are found.

``open_gallery(location, ...)`` picks the backend from the location: a ``postgresql://`` (or
``postgres://``) URL opens a PostgreSQL database with pgvector (``postgres.py``, needs
``pip install 'facesearch[postgres]'``); anything else is a gallery directory (``local.py``:
``store.py``, SQLite, holds identity and embeddings; ``index.py``, a usearch HNSW index, can always
be rebuilt from it). Both implement ``base.GalleryBackend`` and score people with
``scoring.score_people``; ``migrate.py`` copies a gallery from one backend to the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import is_postgres_url
from .base import GalleryBackend
from .index import DTYPES, IndexParams
from .local import DB_NAME, INDEX_META_NAME, INDEX_NAME, LOCK_NAME, PARAMS_KEY, Gallery
from .migrate import MigrateReport, migrate

__all__ = [
    "Gallery",
    "GalleryBackend",
    "IndexParams",
    "DTYPES",
    "open_gallery",
    "recorded_model",
    "migrate",
    "MigrateReport",
    "is_postgres_url",
    "DB_NAME",
    "INDEX_NAME",
    "INDEX_META_NAME",
    "LOCK_NAME",
    "PARAMS_KEY",
]


def open_gallery(
    location: str | os.PathLike[str],
    model_id: str,
    dim: int,
    writable: bool = False,
    params: IndexParams | None = None,
    wait: float = 0.0,
    subspace: Callable[[], np.ndarray | None] | None = None,
) -> GalleryBackend:
    """Open the gallery at ``location``: a PostgreSQL URL or a directory.

    A writer waits up to ``wait`` seconds for another writer of a directory gallery to finish
    (PostgreSQL writers queue on an advisory lock per transaction instead). ``subspace`` gives
    the basis of the subspace the model's embeddings lie in (``FaceEmbedder.subspace``): a new
    gallery records it and builds its index on those coordinates (``index.py``, ``postgres.py``).
    """
    if is_postgres_url(location):
        from .postgres import PostgresGallery

        return PostgresGallery(
            str(location), model_id, dim, writable=writable, params=params, subspace=subspace
        )
    return Gallery(
        Path(location),
        model_id,
        dim,
        writable=writable,
        params=params,
        wait=wait,
        subspace=subspace,
    )


def recorded_model(location: str | os.PathLike[str]) -> str | None:
    """The embedding model id recorded in the gallery at ``location`` (``FaceEmbedder.model_id``:
    it says whether its faces were flip-averaged); None where there is no gallery yet."""
    if is_postgres_url(location):
        from .postgres import recorded_model as postgres_model

        return postgres_model(str(location))
    from .local import recorded_model as local_model

    return local_model(Path(location))
