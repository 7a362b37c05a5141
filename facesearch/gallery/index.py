"""The HNSW vector index (usearch, cosine distance) over face labels.

It holds only integer labels and vectors; who a label belongs to lives in the database.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GalleryError, InputError
from ..native import usearch_index

log = logging.getLogger(__name__)

DTYPES = ("f32", "f16", "bf16", "i8")
# A vector may lose at most this share of its squared length to a projection: more means it is
# not in the subspace the projection was made for, and the graph goes back to full vectors.
MAX_RESIDUAL = 1e-3
# the gallery metadata key the subspace basis is recorded under (``basis_to_text``)
SUBSPACE_KEY = "subspace"
AUTO_EF = (64, 160, 100_000, 0.4, 1024)  # floor, ef at the reference size, that size, exponent, cap


def auto_ef(n: int) -> int:
    """Search breadth for a gallery of ``n`` faces when none is set.

    A wider search is needed for the same recall as the graph grows: with the default build
    parameters recall@1 >= 0.995 took ef 64 at 10k faces, 128-160 at 100k and 384 at 1M
    (``benchmarks/index_bench.py``); 160 * (n / 100k) ** 0.4 follows that (64, 160, 402).
    """
    floor, ref_ef, ref_n, power, cap = AUTO_EF
    return int(min(cap, max(floor, round(ref_ef * (max(n, 1) / ref_n) ** power))))


@dataclass(frozen=True)
class IndexParams:
    """HNSW parameters: graph degree (M), candidate list sizes while adding and searching, the
    scalar type the graph stores vectors as, how many candidates are re-scored with the exact
    float32 vectors, and ``project``: the graph holds each vector's coordinates in a
    ``project``-dimensional basis of the subspace the model's embeddings lie in (0: the full
    vectors). Re-scoring happens when the graph's vectors are compressed or projected.
    ``expansion_search`` 0 means "grow with the gallery" (``auto_ef``). Defaults and the
    measurements behind them: docs/performance.md, "The index at scale"
    (``benchmarks/index_bench.py``)."""

    connectivity: int = 32
    expansion_add: int = 128
    expansion_search: int = 0
    dtype: str = "i8"
    rerank: int = 64
    project: int = 0
    chosen_for: str = ""  # the CPU kind ``params_for_cpu`` chose these for ("": not chosen so)

    def __post_init__(self) -> None:
        if not isinstance(self.chosen_for, str):
            raise InputError(f"index chosen_for must be a string, not {self.chosen_for!r}")
        if self.dtype not in DTYPES:
            raise InputError(f"index dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        for name, low, high in (
            ("connectivity", 2, 256),
            ("expansion_add", 1, 4096),
            ("expansion_search", 0, 4096),
            ("rerank", 0, 4096),
            ("project", 0, 4096),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or not low <= value <= high:
                raise InputError(
                    f"index {name} must be an integer from {low} to {high}, not {value}"
                )

    @property
    def exact_rerank(self) -> bool:
        """Whether results are re-scored with exact vectors (compressed or projected graphs)."""
        return (self.dtype != "f32" or self.project > 0) and self.rerank > 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def choice(self) -> str:
        """Why the index stores what it stores, for ``info``."""
        kind = f"{self.dtype} of {self.project}-d projections" if self.project else self.dtype
        kind = f"{kind} + re-rank {self.rerank}" if self.exact_rerank else kind
        if self.chosen_for:
            return f"{kind}: chosen for {self.chosen_for}"
        return f"{kind}: set for this gallery (or its defaults from before the choice by CPU)"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexParams:
        """The known fields of ``data``; missing ones take the defaults."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


# Storage and re-rank depth by the SIMD kind usearch dispatches to (``hardware_acceleration``),
# measured with ``benchmarks/index_bench.py --n 100000`` (docs/performance.md, "The index at
# scale"). On both kinds int8 is the fastest graph and recall@1 is limited by the graph, not by
# the int8 ranking (re-ranking 8 or 64 candidates gave the same recall at every ef). With
# AVX-512 (Sapphire Rapids) int8 + re-rank 64 was measured and is kept; on AVX2-only CPUs
# ("haswell": memory-bound, each gathered float32 row costs more) the re-rank is 16 deep.
AVX512_KINDS = ("skylake", "icelake", "genoa", "sapphire", "sapphireamx", "graniteamx", "turin")
CPU_CHOICES: dict[str, dict[str, Any]] = {
    "avx512": {"dtype": "i8", "rerank": 64},
    "avx2": {"dtype": "i8", "rerank": 16},
}


def cpu_kind() -> str:
    """usearch's SIMD kind for int8 vectors on this CPU ("haswell", "sapphire", "serial"...)."""
    global _CPU_KIND
    if _CPU_KIND is None:
        Index = usearch_index()

        _CPU_KIND = str(Index(ndim=8, metric="ip", dtype="i8").hardware_acceleration)
    return _CPU_KIND


_CPU_KIND: str | None = None


def params_for_cpu(
    kind: str | None = None, base: IndexParams | None = None, project: int | None = None
) -> IndexParams:
    """``base`` (default: the defaults) with the storage type and re-rank depth chosen for the CPU
    kind ``kind`` (default: this CPU's, ``cpu_kind``); ``chosen_for`` records the choice.

    ``project``: the width of the gallery's subspace basis (``FaceEmbedder.subspace``), where
    it has one; the graph is then built on those projections on every CPU kind (the float32
    re-rank keeps distances exact), None keeps ``base``'s."""
    kind = kind or cpu_kind()
    family = "avx512" if kind in AVX512_KINDS else "avx2"
    label = f"avx512 ({kind})" if family == "avx512" else f"{kind} (no AVX-512)"
    params = replace(base or IndexParams(), **CPU_CHOICES[family], chosen_for=label)
    return params if project is None else replace(params, project=project)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    """pwrite until done: one call writes at most ~2 GiB on Linux."""
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


class ExactVectors:
    """Float32 copies of indexed vectors in a file beside the index, row = label.

    A compressed index (f16/bf16/i8) finds candidates; these exact copies rank them, so distances
    and the final order are those of float32 vectors. Labels are never reused and a label's vector
    never changes, so rows are written in place (new ones only, before the index that refers to
    them is saved) and the file is memory-mapped for reading: opening a large gallery reads
    nothing, a query touches only its candidates' rows.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.path: Path | None = None
        self._map: np.ndarray | None = None
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []  # (labels, vectors) not yet written
        self._sorted = True  # _chunks is one chunk sorted by label (or empty)

    @property
    def row_bytes(self) -> int:
        return self.dim * 4

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        self._chunks.append(
            (np.asarray(labels, np.int64).copy(), np.array(vectors, np.float32, copy=True))
        )
        self._sorted = False

    def attach(self, path: Path) -> None:
        """Read rows from ``path`` from now on (memory-mapped)."""
        self.path, self._map = path, None

    def rows_in_file(self) -> int:
        return (
            0
            if self.path is None or not self.path.exists()
            else self.path.stat().st_size // self.row_bytes
        )

    def _sorted_pending(self) -> tuple[np.ndarray, np.ndarray]:
        """The pending rows as one chunk sorted by label (merged once, after each add)."""
        if not self._sorted:
            labels = np.concatenate([c[0] for c in self._chunks])
            order = np.argsort(labels, kind="stable")
            self._chunks = [(labels[order], np.concatenate([c[1] for c in self._chunks])[order])]
            self._sorted = True
        return self._chunks[0]

    def get(self, labels: np.ndarray) -> np.ndarray:
        """Vectors of ``labels`` (any shape of non-negative labels) -> labels.shape + (dim,)."""
        labels = np.asarray(labels, dtype=np.int64)
        if labels.size == 0:
            return np.empty((*labels.shape, self.dim), np.float32)
        if not self._chunks:
            return self._mapped(int(labels.max()) + 1)[labels]
        keys, vecs = self._sorted_pending()
        flat = labels.reshape(-1)
        pos = np.minimum(np.searchsorted(keys, flat), len(keys) - 1)
        pending = keys[pos] == flat
        out = np.empty((len(flat), self.dim), np.float32)
        out[pending] = vecs[pos[pending]]
        if not pending.all():
            rest = flat[~pending]
            out[~pending] = self._mapped(int(rest.max()) + 1)[rest]
        return out.reshape(*labels.shape, self.dim)

    def table(self, rows_needed: int) -> np.ndarray | None:
        """The whole mapped file as an array (rows by label), or None while rows are pending."""
        return None if self._chunks or rows_needed <= 0 else self._mapped(rows_needed)

    def _mapped(self, rows_needed: int) -> np.ndarray:
        if self._map is None or len(self._map) < rows_needed:
            rows = self.rows_in_file()
            if self.path is None or rows < rows_needed:
                raise GalleryError(f"{self.path}: exact vectors missing (rebuild the index)")
            # a plain ndarray view of the mapping: memmap's own indexing costs ~20 us a call
            self._map = np.asarray(np.memmap(self.path, np.float32, "r", shape=(rows, self.dim)))
        return self._map

    def write(self, path: Path) -> None:
        """Write the pending rows into ``path`` (created if needed) and attach to it."""
        if self._chunks:
            labels, vectors = self._sorted_pending()
            # one write per run of consecutive labels (usually a single run per enroll)
            starts = np.r_[0, np.flatnonzero(np.diff(labels) != 1) + 1]
            ends = np.r_[starts[1:], len(labels)]
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                for s, e in zip(starts.tolist(), ends.tolist()):
                    block = vectors[s:e].reshape(-1).view(np.uint8)  # rows of a C-order array
                    _pwrite_all(fd, block.data, int(labels[s]) * self.row_bytes)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._chunks, self._sorted = [], True
        self.attach(path)


class FaceIndex:
    """Approximate nearest-neighbour search over unit vectors with cosine distance.

    The vectors are unit length, so the graph is built on the inner product (one dot product per
    distance) and 1 - inner product is reported: the cosine distance. Indexes saved with usearch's
    "cos" metric (facesearch 0.2) load and answer the same distances. With a compressed ``dtype``
    the best ``rerank`` candidates are re-scored with exact float32 vectors (``ExactVectors``).

    With ``params.project`` and a ``basis`` (dim, project) of the subspace the vectors lie in, the
    graph holds each vector's coordinates in that basis: FaceNet's embeddings span about 51 of
    their 512 dimensions, so a 64-d graph finds the same neighbours with an eighth of the memory
    traffic, and the exact re-rank keeps the distances those of the full vectors. A vector that
    does not lie in the basis's subspace (``MAX_RESIDUAL``) turns the projection off: the graph is
    rebuilt on the full vectors, so the results stay right whatever is added.
    """

    def __init__(
        self, dim: int, params: IndexParams | None = None, basis: np.ndarray | None = None
    ) -> None:
        params = params or IndexParams()
        if params.project and (basis is None or basis.shape != (dim, params.project)):
            params = replace(params, project=0)  # no basis of that width: full vectors
        self.dim = dim
        self.view = False
        self.params = params
        self.basis = (
            np.ascontiguousarray(basis, np.float32)
            if params.project and basis is not None
            else None
        )
        self.exact = ExactVectors(dim) if params.exact_rerank or params.project else None
        self._index = self._new_graph()

    def _new_graph(self) -> Any:
        Index = usearch_index()

        p = self.params
        return Index(
            ndim=p.project or self.dim,
            metric="ip",
            dtype=p.dtype,
            connectivity=p.connectivity,
            expansion_add=p.expansion_add,
            expansion_search=p.expansion_search or AUTO_EF[0],
        )

    def _graph_vectors(self, unit: np.ndarray) -> np.ndarray:
        """What the graph holds of unit vectors: their projections, or themselves."""
        return unit if self.basis is None else np.ascontiguousarray(unit @ self.basis)

    def _stop_projecting(self) -> None:
        """Rebuild the graph on the full (exact) vectors and keep it so from now on."""
        assert self.exact is not None
        log.warning(
            "vectors outside the embedding model's subspace: the index is rebuilt on full vectors"
        )
        labels = self.labels()
        self.params, self.basis = replace(self.params, project=0), None
        self._index = self._new_graph()
        if len(labels):
            self._index.add(labels.astype(np.uint64), self.exact.get(labels))
        if not self.params.exact_rerank:
            self.exact = None  # a float32 graph holds the exact vectors itself

    @property
    def search_breadth(self) -> int:
        """The ef a search uses when the call names none: the set one, else ``auto_ef``."""
        return self.params.expansion_search or auto_ef(len(self))

    @property
    def metric(self) -> str:
        kind = self._index.metric_kind
        return str(getattr(kind, "name", kind)).lower()

    @property
    def memory_bytes(self) -> int:
        """Bytes the graph and its vectors take (mapped from the file for a view)."""
        return int(self._index.memory_usage)

    def __len__(self) -> int:
        return len(self._index)

    def labels(self) -> np.ndarray:
        return np.asarray(self._index.keys, dtype=np.int64)

    def __contains__(self, label: object) -> bool:
        return bool(self._index.contains(int(label)))  # type: ignore[call-overload]

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        if len(labels):
            keys, unit = np.asarray(labels, dtype=np.int64), _unit(vectors)
            graph = self._graph_vectors(unit)
            if self.basis is not None and outside_subspace(unit, graph).any():
                self._stop_projecting()
                graph = unit
            if self.exact is not None:
                self.exact.add(keys, unit)
            self._index.add(keys.astype(np.uint64), graph)

    def remove(self, labels: np.ndarray) -> None:
        if len(labels):
            self._index.remove(np.asarray(labels, dtype=np.uint64))

    def vectors(self, labels: np.ndarray) -> np.ndarray:
        """The stored vectors of ``labels`` (N, dim), exact ones where the index keeps them."""
        keys = np.asarray(labels, dtype=np.int64)
        if self.exact is not None:
            return self.exact.get(keys)
        out = np.asarray(self._index.get(keys.astype(np.uint64)), dtype=np.float32)
        return out.reshape(len(keys), self.dim)

    def search(
        self, vectors: np.ndarray, k: int, ef: int | None = None, threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels (Q, k) and cosine distances (Q, k) of the nearest faces; -1 pads missing slots.

        ``ef`` overrides the search breadth (``search_breadth``) for this call; ``threads`` caps
        the threads a batch is spread over (0: all cores).
        """
        q = _unit(vectors)
        labels = np.full((len(q), k), -1, dtype=np.int64)
        dists = np.full((len(q), k), np.inf, dtype=np.float32)
        n = len(self._index)
        if n == 0 or k == 0 or len(q) == 0:
            return labels, dists
        wanted = max(k, self.params.rerank) if self.exact is not None else k
        ef = ef or self.params.expansion_search or auto_ef(n)
        # usearch's Python wrapper costs ~30 us a call; its compiled index (pinned in pyproject)
        compiled = self._index._compiled
        if compiled.expansion_search != ef:
            compiled.expansion_search = ef
        found = compiled.search_many(
            self._graph_vectors(q), count=wanted, exact=False, threads=threads
        )
        keys, dist, counts = found[0].astype(np.int64), found[1], found[2]
        if self.exact is not None:
            return self._rerank(q, keys, counts, labels, dists)
        for i, c in enumerate(counts.tolist()):
            c = min(c, k)
            labels[i, :c], dists[i, :c] = keys[i, :c], dist[i, :c]
        return labels, dists

    def _rerank(
        self,
        q: np.ndarray,
        keys: np.ndarray,
        counts: np.ndarray,
        labels: np.ndarray,
        dists: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best ``counts[i]`` candidates ``keys[i]`` of each query, re-ordered by exact
        cosine distance, into ``labels`` / ``dists`` (Q, k) with those distances."""
        assert self.exact is not None
        # one query at a time: a (C, D) @ (D,) product per query stays in cache, where one
        # batched (Q, C, D) gather and matmul is several times slower
        k = labels.shape[1]
        rows = self.exact.table(int(keys.max()) + 1)
        for i, c in enumerate(counts.tolist()):
            if c <= 0:
                continue
            cand = keys[i, :c]
            dist = 1.0 - (rows[cand] if rows is not None else self.exact.get(cand)) @ q[i]
            order = np.argsort(dist)[:k]
            labels[i, : len(order)], dists[i, : len(order)] = cand[order], dist[order]
        return labels, dists

    def save(self, path: Path) -> None:
        """Write the index atomically (temporary file, then rename); exact vectors first."""
        if self.exact is not None:
            self.exact.write(exact_path(path))
        fd, tmp = tempfile.mkstemp(prefix=".index-", dir=path.parent)
        os.close(fd)
        try:
            self._index.save(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @classmethod
    def load(
        cls,
        path: Path,
        dim: int,
        params: IndexParams,
        view: bool = False,
        basis: np.ndarray | None = None,
    ) -> FaceIndex:
        """Load (or memory-map, with ``view``) a saved index; GalleryError if unreadable.

        The file's own structure (connectivity, dtype, full or projected vectors) wins over
        ``params``; a projected one needs the ``basis`` it was built with.
        """
        try:
            meta = _usearch_metadata(path)
            dtype = str(meta["kind_scalar"].name).lower()
            ndim = int(meta["dimensions"])
        except Exception as err:  # usearch raises ValueError/RuntimeError for bad files
            raise GalleryError(f"{path}: unreadable index file ({err})") from err
        if ndim == dim:
            project = 0
        elif basis is not None and basis.shape == (dim, ndim):
            project = ndim
        else:
            raise GalleryError(f"{path}: index has {ndim} dimensions, expected {dim}")
        dtype = dtype if dtype in DTYPES else params.dtype
        idx = cls(dim, replace(params, dtype=dtype, project=project), basis)
        try:
            if view:
                idx._index.view(str(path))
                idx.view = True
            else:
                idx._index.load(str(path))
        except Exception as err:
            raise GalleryError(f"{path}: unreadable index file ({err})") from err
        if idx._index.ndim != (project or dim):
            raise GalleryError(f"{path}: index has {idx._index.ndim} dimensions, expected {dim}")
        idx.params = replace(idx.params, connectivity=int(idx._index.connectivity))
        if idx.exact is not None:
            epath = exact_path(path)
            needed = int(idx.labels().max()) + 1 if len(idx) else 0
            if needed and (not epath.exists() or epath.stat().st_size < needed * 4 * dim):
                raise GalleryError(f"{epath}: exact vectors missing or short")
            idx.exact.attach(epath)
        return idx


def exact_path(index_path: Path) -> Path:
    """Where the exact float32 vectors of a compressed index live."""
    return index_path.with_name(index_path.name + ".f32")


def basis_to_text(basis: np.ndarray, dim: int) -> str:
    """A subspace basis (dim, k) with orthonormal columns, as text for a gallery's metadata;
    InputError if it is not one."""
    b = np.asarray(basis, dtype=np.float32)
    if b.ndim != 2 or b.shape[0] != dim or not 0 < b.shape[1] < dim:
        raise InputError(f"a subspace basis must be ({dim}, k) with 0 < k < {dim}, not {b.shape}")
    if not np.allclose(b.T @ b, np.eye(b.shape[1]), atol=1e-4):
        raise InputError("a subspace basis must have orthonormal columns")
    data = base64.b64encode(np.ascontiguousarray(b).tobytes()).decode("ascii")
    return json.dumps({"shape": list(b.shape), "float32": data})


def basis_from_text(text: str, dim: int) -> np.ndarray:
    """The basis ``basis_to_text`` wrote; ValueError if it is not one for ``dim``."""
    doc = json.loads(text)
    rows, cols = (int(x) for x in doc["shape"])
    b = np.frombuffer(base64.b64decode(doc["float32"]), np.float32)
    if rows != dim or not 0 < cols < dim or b.size != rows * cols:
        raise ValueError(f"subspace basis of shape {doc['shape']} for {dim}-d vectors")
    return b.reshape(rows, cols).copy()


def outside_subspace(vectors: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Which ``vectors`` (rows) lose more than ``MAX_RESIDUAL`` of their squared length to
    their ``coords`` in an orthonormal basis: those do not lie in the basis's subspace."""
    lengths = np.einsum("ij,ij->i", vectors, vectors)
    kept = np.einsum("ij,ij->i", coords, coords)
    return np.asarray(lengths - kept > MAX_RESIDUAL * np.maximum(lengths, 1e-12))


def recorded_basis(text: str | None, dim: int) -> np.ndarray | None:
    """The basis a gallery recorded under ``SUBSPACE_KEY`` (``text``), if any; an unreadable
    one is ignored, with a warning (the gallery then searches full vectors)."""
    if text is None:
        return None
    try:
        return basis_from_text(text, dim)
    except (ValueError, TypeError, KeyError) as err:
        log.warning("ignoring an unreadable subspace basis in the gallery (%s)", err)
        return None


def _usearch_metadata(path: Path) -> dict[str, Any]:
    Index = usearch_index()

    meta = Index.metadata(str(path))
    if meta is None:
        raise ValueError("not a usearch index")
    return meta


def _unit(vectors: np.ndarray) -> np.ndarray:
    """C-contiguous float32 rows scaled to unit length (all-zero rows stay zero)."""
    v = np.array(vectors, dtype=np.float32, order="C", ndmin=2)
    norms = np.sqrt(np.einsum("ij,ij->i", v, v))[:, None]
    np.divide(v, norms, out=v, where=norms > 0)
    return v
