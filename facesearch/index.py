"""The HNSW vector index (usearch, cosine distance) over face labels.

It holds only integer labels and vectors; who a label belongs to lives in the database.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import GalleryError


@dataclass(frozen=True)
class IndexParams:
    """HNSW parameters: graph degree (M), candidate list sizes while adding and searching."""

    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 64
    dtype: str = "f32"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class FaceIndex:
    """Approximate nearest-neighbour search over unit vectors with cosine distance."""

    metric = "cos"

    def __init__(self, dim: int, params: IndexParams | None = None) -> None:
        from usearch.index import Index

        self.dim = dim
        self.view = False
        self.params = params = params or IndexParams()
        self._index = Index(
            ndim=dim,
            metric=self.metric,
            dtype=params.dtype,
            connectivity=params.connectivity,
            expansion_add=params.expansion_add,
            expansion_search=params.expansion_search,
        )

    def __len__(self) -> int:
        return len(self._index)

    def labels(self) -> np.ndarray:
        return np.asarray(self._index.keys, dtype=np.int64)

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        if len(labels):
            self._index.add(
                np.asarray(labels, dtype=np.uint64), np.ascontiguousarray(vectors, dtype=np.float32)
            )

    def remove(self, labels: np.ndarray) -> None:
        if len(labels):
            self._index.remove(np.asarray(labels, dtype=np.uint64))

    def vectors(self, labels: np.ndarray) -> np.ndarray:
        """The stored vectors of ``labels`` (N, dim)."""
        keys = np.asarray(labels, dtype=np.uint64)
        out = np.asarray(self._index.get(keys), dtype=np.float32)
        return out.reshape(len(keys), self.dim)

    def search(
        self, vectors: np.ndarray, k: int, ef: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels (Q, k) and cosine distances (Q, k) of the nearest faces; -1 pads missing slots.

        ``ef`` overrides the search breadth (expansion_search) for this call.
        """
        q = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        labels = np.full((len(q), k), -1, dtype=np.int64)
        dists = np.full((len(q), k), np.inf, dtype=np.float32)
        if len(self) == 0 or k == 0 or len(q) == 0:
            return labels, dists
        if ef is not None:
            saved = self._index.expansion_search
            self._index.expansion_search = ef  # type: ignore[misc]
            try:
                m = self._index.search(q, k)
            finally:
                self._index.expansion_search = saved  # type: ignore[misc]
        else:
            m = self._index.search(q, k)
        keys = np.asarray(m.keys).reshape(len(q), -1)
        dist = np.asarray(m.distances).reshape(len(q), -1)
        # usearch answers a one-row query with a single, already trimmed Matches.
        counts = np.asarray(m.counts if hasattr(m, "counts") else [len(m.keys)]).reshape(-1)
        for i, c in enumerate(counts):
            labels[i, :c] = keys[i, :c].astype(np.int64)
            dists[i, :c] = dist[i, :c]
        return labels, dists

    def save(self, path: Path) -> None:
        """Write the index atomically (temporary file, then rename)."""
        fd, tmp = tempfile.mkstemp(prefix=".index-", dir=path.parent)
        os.close(fd)
        try:
            self._index.save(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @classmethod
    def load(cls, path: Path, dim: int, params: IndexParams, view: bool = False) -> FaceIndex:
        """Load (or memory-map, with ``view``) a saved index; GalleryError if unreadable."""
        idx = cls(dim, params)
        try:
            if view:
                idx._index.view(str(path))
                idx.view = True
            else:
                idx._index.load(str(path))
        except Exception as err:  # usearch raises ValueError/RuntimeError for bad files
            raise GalleryError(f"{path}: unreadable index file ({err})") from err
        if idx._index.ndim != dim:
            raise GalleryError(f"{path}: index has {idx._index.ndim} dimensions, expected {dim}")
        idx._index.expansion_search = params.expansion_search  # type: ignore[misc]
        return idx
