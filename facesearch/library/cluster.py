"""Grouping faces nobody has named yet into one cluster per unknown person.

``FaceClusterer`` is facesearch's method, chosen by ``benchmarks/cluster_bench.py`` against the
DBSCAN-like rule Immich uses and HDBSCAN: **average-linkage agglomeration over a k-nearest-neighbour
graph, with cannot-links**. Every face is linked to its ``k`` nearest faces within
``link_distance``. Starting from single faces, the two linked clusters whose members are closest
on average are joined, again and again, until no linked pair is closer than ``average_distance``.
The average is over all pairs of members, exactly, yet costs O(d): for unit vectors the mean
cosine between clusters A and B is ``sum_A · sum_B / (|A| |B|)``. Two clusters that share a photo
are never joined (a photo never shows one person twice).

Average linkage is what keeps siblings and look-alikes apart: a chain of single close pairs, which
merges them under single linkage (DBSCAN, Immich), cannot pull two groups together whose members
are far apart on average; and joining the closest pair first lets each person's cluster form
before it is compared with a look-alike's. Groups smaller than ``min_faces`` stay unclustered
(label -1).

New faces join incrementally (``partial_fit``): they are linked to their nearest old and new faces
and the same rule decides, so adding photos never re-numbers existing clusters. A clustering kept
elsewhere (a gallery stores each face's cluster) is taken up again with ``resume``: its clusters
are restored as they were, and ``partial_fit`` goes on from there. The estimator
follows scikit-learn's style (parameters in the constructor, ``fit`` on an array, ``labels_``
out) and knows nothing of where faces come from or where labels are stored.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..native import usearch_index

EXACT_UP_TO = 20_000  # faces; above this, neighbours come from an HNSW index
# From PROJECT_FROM faces on, neighbours are searched on SUBSPACE_WIDTH coordinates where those
# hold every face but for MAX_LOSS of its squared length (``_coordinates``); below, finding the
# coordinates costs more than it saves.
PROJECT_FROM = 10_000
SUBSPACE_WIDTH = 64
MAX_LOSS = 1e-4


@dataclass
class _Clusters:
    """Union-find over faces, with each root's vector sum, size and photos."""

    parent: np.ndarray
    sums: np.ndarray
    size: np.ndarray
    photos: dict[int, set[int]]
    links: dict[int, set[int]] = field(default_factory=dict)  # root -> linked roots
    version: dict[int, int] = field(default_factory=dict)  # root -> times it has grown

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = int(self.parent[root])
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, int(self.parent[i])
        return root

    def grow(self, vectors: np.ndarray, groups: np.ndarray) -> None:
        start = len(self.parent)
        n = len(vectors)
        self.parent = np.r_[self.parent, np.arange(start, start + n)]
        self.sums = np.concatenate([self.sums, vectors.astype(np.float32)])
        self.size = np.r_[self.size, np.ones(n, np.int64)]
        for k, g in enumerate(groups):
            self.photos[start + k] = {int(g)} if g >= 0 else set()


class FaceClusterer:
    """Cluster unit face embeddings (cosine distance); see the module docstring for the rule.

    >>> labels = FaceClusterer().fit(vectors, groups=photo_ids).labels_
    """

    def __init__(
        self,
        link_distance: float = 0.40,
        average_distance: float = 0.34,
        min_faces: int = 3,
        k: int = 16,
    ) -> None:
        self.link_distance = link_distance
        self.average_distance = average_distance
        self.min_faces = min_faces
        self.k = k
        self.labels_: np.ndarray = np.zeros(0, np.int64)
        self._vectors = np.zeros((0, 0), np.float32)
        self._state: _Clusters | None = None

    def fit(self, vectors: np.ndarray, groups: np.ndarray | None = None) -> FaceClusterer:
        """Cluster ``vectors`` (N, D) from scratch. ``groups[i]`` is face i's photo (any int;
        -1 for none): faces of one photo never share a cluster."""
        self._vectors = np.zeros((0, np.asarray(vectors).shape[1]), np.float32)
        self._state = None
        return self.partial_fit(vectors, groups)

    def resume(
        self, vectors: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None
    ) -> FaceClusterer:
        """Start from a clustering found earlier: faces with the same ``labels[i] >= 0`` form
        one cluster (as they are, not re-examined); faces labelled -1 are single. Follow with
        ``partial_fit`` to add faces. ``labels_`` numbers the clusters anew (by first face)."""
        vectors = np.ascontiguousarray(vectors, np.float32)
        labels = np.asarray(labels, np.int64)
        n = len(vectors)
        if len(labels) != n:
            raise ValueError(f"labels must have one entry per vector ({n}), got {len(labels)}")
        groups = np.full(n, -1, np.int64) if groups is None else np.asarray(groups, np.int64)
        if len(groups) != n:
            raise ValueError(f"groups must have one entry per vector ({n}), got {len(groups)}")
        d = vectors.shape[1] if vectors.ndim == 2 else 0
        state = _Clusters(
            np.zeros(0, np.int64), np.zeros((0, d), np.float32), np.zeros(0, np.int64), {}
        )
        state.grow(vectors, groups)
        first: dict[int, int] = {}
        for i, lab in enumerate(labels.tolist()):
            if lab < 0:
                continue
            if lab not in first:
                first[lab] = i
                continue
            root = first[lab]
            state.parent[i] = root
            state.sums[root] += state.sums[i]
            state.size[root] += 1
            state.photos[root] |= state.photos.pop(i)
            state.version[root] = state.version.get(root, 0) + 1
        self._state = state
        self._vectors = vectors
        self.labels_ = self._labels(state)
        return self

    def partial_fit(self, vectors: np.ndarray, groups: np.ndarray | None = None) -> FaceClusterer:
        """Add faces to the clusters found so far (labels of earlier faces keep their meaning,
        though a cluster may grow, or two may join through the new faces)."""
        new = np.ascontiguousarray(vectors, np.float32)
        n_old, n_new = len(self._vectors), len(new)
        groups = np.full(n_new, -1, np.int64) if groups is None else np.asarray(groups, np.int64)
        if len(groups) != n_new:
            raise ValueError(f"groups must have one entry per vector ({n_new}), got {len(groups)}")
        if self._state is None:
            d = new.shape[1]
            self._state = _Clusters(
                np.zeros(0, np.int64), np.zeros((0, d), np.float32), np.zeros(0, np.int64), {}
            )
        state = self._state
        state.grow(new, groups)
        self._vectors = np.concatenate([self._vectors, new]) if n_old else new
        if n_new:
            edges = self._edges(n_old)
            self._link(state, edges)
        self.labels_ = self._labels(state)
        return self

    def _edges(self, first_new: int) -> np.ndarray:
        """(E, 3) rows (distance, i, j), shortest first: each new face to its k nearest faces."""
        vectors = self._vectors
        queries = vectors[first_new:]
        k = min(self.k + 1, len(vectors))
        idx, dist = _knn(vectors, queries, k)
        i = np.repeat(np.arange(first_new, len(vectors)), idx.shape[1])
        j, d = idx.ravel(), dist.ravel()
        keep = (j >= 0) & (j != i) & (d <= self.link_distance)
        i, j, d = i[keep], j[keep], d[keep]
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        pairs = np.unique(np.stack([lo, hi], 1), axis=0, return_index=True)[1]
        order = pairs[np.argsort(d[pairs], kind="stable")]
        return np.stack([d[order], lo[order], hi[order]], 1)

    def _link(self, state: _Clusters, edges: np.ndarray) -> None:
        """Join linked clusters, closest on average first, down to ``average_distance``."""
        heap: list[tuple[float, int, int, int, int]] = []
        touched: set[int] = set()
        for _, a, b in edges:
            ra, rb = state.find(int(a)), state.find(int(b))
            if ra != rb:
                state.links.setdefault(ra, set()).add(rb)
                state.links.setdefault(rb, set()).add(ra)
                touched.update((ra, rb))
        for r in touched:
            self._push_links(state, heap, r)
        while heap:
            dist, ra, rb, va, vb = heapq.heappop(heap)
            if dist > self.average_distance:
                break
            if state.version.get(ra) != va or state.version.get(rb) != vb:
                continue  # one of them has grown (or been joined) since this pair was scored
            if not state.photos[ra].isdisjoint(state.photos[rb]):
                continue  # they share a photo, now and forever
            if state.size[ra] < state.size[rb]:
                ra, rb = rb, ra
            self._join(state, ra, rb)
            self._push_links(state, heap, ra)

    def _join(self, state: _Clusters, ra: int, rb: int) -> None:
        state.parent[rb] = ra
        state.sums[ra] += state.sums[rb]
        state.size[ra] += state.size[rb]
        state.photos[ra] |= state.photos.pop(rb)
        state.version[ra] = state.version.get(ra, 0) + 1
        state.version.pop(rb, None)
        links = state.links.pop(rb, set()) | state.links.get(ra, set())
        links.discard(ra)
        links.discard(rb)
        for n in links:
            peers = state.links[n]
            peers.discard(rb)
            peers.add(ra)
        state.links[ra] = links

    def _push_links(self, state: _Clusters, heap: list, r: int) -> None:
        """Score root ``r`` against every cluster it is linked to (exact average linkage)."""
        peers = [p for p in state.links.get(r, ()) if state.photos[p].isdisjoint(state.photos[r])]
        if not peers:
            return
        sims = state.sums[peers] @ state.sums[r] / (state.size[peers] * state.size[r])
        vr = state.version.setdefault(r, 0)
        for p, sim in zip(peers, sims.tolist()):
            heapq.heappush(heap, (1.0 - sim, r, p, vr, state.version.setdefault(p, 0)))

    def _labels(self, state: _Clusters) -> np.ndarray:
        roots = np.array([state.find(i) for i in range(len(state.parent))], np.int64)
        big = state.size[roots] >= self.min_faces
        labels = np.full(len(roots), -1, np.int64)
        # clusters numbered by their smallest face index: stable as faces are added
        uniq, first = np.unique(roots[big], return_index=True)
        order = np.argsort(np.flatnonzero(big)[first])
        rank = np.empty(len(uniq), np.int64)
        rank[order] = np.arange(len(uniq))
        labels[big] = rank[np.searchsorted(uniq, roots[big])]
        return labels


def _coordinates(vectors: np.ndarray) -> np.ndarray | None:
    """A basis (D, SUBSPACE_WIDTH) of the span of the vectors' top principal directions (about
    the origin), where that span holds every vector but for MAX_LOSS of its squared length; else
    None. FaceNet's embeddings span about 51 of their 512 dimensions (``FaceEmbedder.subspace``),
    so their dot products are the same, to that loss, on 64 coordinates: an eighth of the work."""
    n, dim = vectors.shape
    if dim <= 2 * SUBSPACE_WIDTH or n < PROJECT_FROM:
        return None
    gram = np.zeros((dim, dim), np.float64)
    for s in range(0, n, 65536):
        part = vectors[s : s + 65536]
        gram += part.T @ part
    basis = np.linalg.eigh(gram)[1][:, ::-1][:, :SUBSPACE_WIDTH].astype(np.float32)
    coords = vectors @ basis
    lost = np.einsum("ij,ij->i", vectors, vectors) - np.einsum("ij,ij->i", coords, coords)
    return basis if float(lost.max()) <= MAX_LOSS else None


def _knn(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``k`` nearest vectors (indices, cosine distances), exact up to
    ``EXACT_UP_TO`` vectors and with an HNSW index above that; on the vectors' subspace
    coordinates where they have one (``_coordinates``)."""
    basis = _coordinates(vectors)
    if basis is not None:
        vectors = np.ascontiguousarray(vectors @ basis)
        queries = np.ascontiguousarray(queries @ basis)
    if len(vectors) <= EXACT_UP_TO:
        idx = np.empty((len(queries), k), np.int64)
        dist = np.empty((len(queries), k), np.float32)
        for s in range(0, len(queries), 2048):
            d = 1.0 - queries[s : s + 2048] @ vectors.T
            part = np.argpartition(d, k - 1, axis=1)[:, :k]
            idx[s : s + 2048] = part
            dist[s : s + 2048] = np.take_along_axis(d, part, 1)
        return idx, dist
    Index = usearch_index()

    # half precision: 4x faster to build and search than f32 here, 0.98 of the true 16 neighbours
    # (measured at 40k faces); a missed neighbour is almost always reached through another
    index = Index(
        ndim=vectors.shape[1],
        metric="ip",
        dtype="f16",
        connectivity=16,
        expansion_add=64,
        expansion_search=max(48, 2 * k),
    )
    index.add(np.arange(len(vectors)), vectors)
    found: Any = index.search(queries, k)
    keys = np.asarray(found.keys, np.int64).reshape(len(queries), -1)
    dist = np.asarray(found.distances, np.float32).reshape(len(queries), -1)
    counts = np.asarray(found.counts).reshape(-1)
    col = np.arange(keys.shape[1])[None, :]
    keys[col >= counts[:, None]] = -1
    dist[col >= counts[:, None]] = np.inf
    return keys, dist
