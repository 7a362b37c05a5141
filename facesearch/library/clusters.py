"""Clusters as the gallery keeps them: which faces are clustered, how stored ids stay stable.

``FaceClusterer`` (``cluster.py``) is the algorithm and knows nothing of storage; this module
loads the faces to cluster from a gallery, runs it, and stores each face's cluster id.

The faces clustered are those of no one that are not suggested for anyone (a suggestion is a
proposed person already) and not kept out (ejected from a cluster by ``unassign``: cluster -1).
Every group of two or more is stored as a cluster; ``--min-faces`` only chooses which are listed,
which is the same as clustering with that ``min_faces`` (it changes labels, never joins).

Incremental (the default): the stored clusters are taken up as they are (``FaceClusterer.resume``)
and the other faces are added with ``partial_fit``: they join a cluster or form new ones.
``recluster`` starts from nothing. Either way the new clusters get ids by overlap with the stored
ones (each stored id goes to the new cluster holding most of its faces), so ids stay the same
from run to run where the faces do; a cluster that is new gets an id never used before.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..gallery.base import GalleryBackend
from ..types import Cluster, ClusterFace, ClusterReport, FaceInfo, LooseFaces
from .cluster import FaceClusterer

STORED_MIN_FACES = 2  # every group of two or more faces is kept as a cluster
SPLIT_STRICTER = 0.06  # split: the average distance joined is this much smaller


def clusterable(loose: LooseFaces) -> np.ndarray:
    """Mask of the faces clustering looks at: not suggested for anyone, not kept out."""
    return (loose.suggested == 0) & (loose.clusters >= 0)


def _photo_groups(loose: LooseFaces) -> np.ndarray:
    """Each face's cannot-link group: its photo; a face of no photo gets a group of its own."""
    groups = loose.photos.copy()
    alone = groups < 0
    groups[alone] = groups.max(initial=0) + 1 + np.arange(int(alone.sum()))
    return groups


def stable_ids(labels: np.ndarray, old: np.ndarray, next_id: int) -> np.ndarray:
    """Stored ids for new cluster ``labels`` (-1: none) given each face's ``old`` id (0: none):
    each old id goes to the new cluster holding most of its faces, largest overlap first; the
    other clusters get ids from ``next_id`` on (in order of their first face)."""
    out = np.zeros(len(labels), np.int64)
    overlaps = Counter(
        (int(lab), int(o)) for lab, o in zip(labels.tolist(), old.tolist()) if lab >= 0 and o > 0
    )
    given: dict[int, int] = {}
    used: set[int] = set()
    for (lab, o), _ in sorted(overlaps.items(), key=lambda kv: (-kv[1], kv[0])):
        if lab not in given and o not in used:
            given[lab] = o
            used.add(o)
    for lab in labels.tolist():
        if lab >= 0 and lab not in given:
            given[lab] = next_id
            next_id += 1
    for i, lab in enumerate(labels.tolist()):
        out[i] = given[lab] if lab >= 0 else 0
    return out


def update_clusters(
    gallery: GalleryBackend, clusterer: FaceClusterer | None = None, recluster: bool = False
) -> LooseFaces:
    """Cluster the gallery's clusterable faces (incrementally unless ``recluster``) and store
    the changed cluster ids in one transaction; returns the faces of no one as now stored."""
    loose = gallery.loose_faces()
    pool_mask = clusterable(loose)
    pool = loose[pool_mask]
    params = clusterer or FaceClusterer()
    est = FaceClusterer(
        link_distance=params.link_distance,
        average_distance=params.average_distance,
        min_faces=STORED_MIN_FACES,
        k=params.k,
    )
    old = pool.clusters.copy()
    groups = _photo_groups(pool)
    labels = np.full(len(pool), -1, np.int64)
    if len(pool):
        seeded = (old > 0) & (not recluster)
        order = np.r_[np.flatnonzero(seeded), np.flatnonzero(~seeded)]
        n_seed = int(seeded.sum())
        est.resume(pool.vectors[order[:n_seed]], old[order[:n_seed]], groups[order[:n_seed]])
        est.partial_fit(pool.vectors[order[n_seed:]], groups[order[n_seed:]])
        labels[order] = est.labels_
    new = stable_ids(labels, old, gallery.next_cluster_id())
    changes = {
        int(fid): (int(c) if c > 0 else None)
        for fid, c, o in zip(pool.ids.tolist(), new.tolist(), old.tolist())
        if c != o
    }
    if changes:
        gallery.set_clusters(changes)
    clusters = loose.clusters.copy()
    clusters[pool_mask] = new
    return LooseFaces(loose.ids, loose.vectors, loose.photos, clusters, loose.suggested)


def cluster_report(loose: LooseFaces, faces: list[FaceInfo], min_faces: int = 3) -> ClusterReport:
    """The stored clusters of at least ``min_faces`` faces, largest first (then by id), each
    with its faces by id and the face nearest their mean; ``unclustered``: the clusterable
    faces of no one (not suggested for anyone; kept-out ones included) in none of them."""
    info = {f.id: f for f in faces}
    pool = loose[loose.suggested == 0]
    out: list[Cluster] = []
    listed = 0
    for cid in np.unique(pool.clusters[pool.clusters > 0]).tolist():
        rows = np.flatnonzero(pool.clusters == cid)
        if len(rows) < min_faces:
            continue
        listed += len(rows)
        mean = pool.vectors[rows].sum(0)
        rep = int(pool.ids[rows[int(np.argmax(pool.vectors[rows] @ mean))]])
        members = tuple(
            ClusterFace(int(fid), info[int(fid)].source_path, info[int(fid)].box)
            for fid in sorted(pool.ids[rows].tolist())
            if int(fid) in info
        )
        out.append(Cluster(int(cid), members, rep))
    out.sort(key=lambda c: (-c.size, c.id))
    return ClusterReport(tuple(out), len(pool) - listed)


def split_cluster(
    gallery: GalleryBackend,
    cluster_id: int,
    average_distance: float | None = None,
    clusterer: FaceClusterer | None = None,
) -> list[int]:
    """Cluster one cluster's faces again, more strictly (a smaller ``average_distance``, by
    default ``SPLIT_STRICTER`` below the clusterer's); the largest part keeps the id, the others
    get new ones, faces left alone are kept out of clustering (as if ejected: otherwise the next
    ``update_clusters`` would join them again by the usual rule). Returns the resulting cluster
    ids, largest first (one id: it could not be split; none: it fell apart)."""
    from ..errors import ClusterNotFoundError, InputError

    loose = gallery.loose_faces()
    rows = np.flatnonzero((loose.clusters == cluster_id) & clusterable(loose))
    if cluster_id <= 0 or len(rows) == 0:
        raise ClusterNotFoundError(f"no cluster with id {cluster_id} (see facesearch clusters)")
    part = loose[rows]
    base = clusterer or FaceClusterer()
    strict = (
        base.average_distance - SPLIT_STRICTER if average_distance is None else average_distance
    )
    if not 0.0 < strict < 2.0:
        raise InputError("the average distance of a split must be between 0 and 2")
    est = FaceClusterer(
        link_distance=max(base.link_distance, strict),
        average_distance=strict,
        min_faces=STORED_MIN_FACES,
        k=base.k,
    ).fit(part.vectors, _photo_groups(part))
    labels = est.labels_
    sizes = Counter(int(lab) for lab in labels.tolist() if lab >= 0)
    if len(sizes) <= 1 and (labels >= 0).all():
        return [cluster_id]
    order = [lab for lab, _ in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))]
    next_id = gallery.next_cluster_id()
    ids = {lab: (cluster_id if k == 0 else next_id + k - 1) for k, lab in enumerate(order)}
    gallery.set_clusters(
        {
            int(fid): (ids[int(lab)] if lab >= 0 else -1)
            for fid, lab in zip(part.ids.tolist(), labels.tolist())
        }
    )
    return [ids[lab] for lab in order]
