"""Person scoring, shared by every gallery backend so that they rank people the same way.

A backend finds the nearest enrolled faces of each query (its own index), looks up who they
belong to and those people's templates, and hands all of it to ``score_people``. Distances are
cosine distances (1 - cos) between unit vectors.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import GalleryError
from ..types import Candidate


def candidate_faces(k_people: int, n_faces: int, refine: str = "none", pool: int = 512) -> int:
    """How many nearest faces to fetch per query to score ``k_people`` people."""
    k = min(n_faces, max(64, 8 * k_people))
    if refine != "none":
        k = min(n_faces, max(k, pool))
    return k


def score_people(
    queries: np.ndarray,
    labels: np.ndarray,
    dists: np.ndarray,
    owners: Mapping[int, tuple[int, str]],
    templates: Mapping[int, np.ndarray],
    k_people: int,
) -> list[list[Candidate]]:
    """Per query, the nearest ``k_people`` people, nearest first.

    ``labels``/``dists`` (Q, K): the nearest faces of each query, nearest first (-1 pads);
    ``owners``: face label -> (person id, name); ``templates``: person id -> their unit template
    (the normalised mean of their faces). A person is scored by the smaller of two distances:
    to their closest face among the candidates and to their template. A face whose owner or
    template is missing (removed since the index was read) is skipped.
    """
    per_query: list[dict[int, tuple[str, int, float]]] = []
    for row_l, row_d in zip(labels, dists):
        # person id -> (name, closest face label, its distance); rows are nearest first
        people: dict[int, tuple[str, int, float]] = {}
        for label, dist in zip(row_l, row_d):
            owner = owners.get(int(label))
            if owner is not None and owner[0] not in people:
                people[owner[0]] = (owner[1], int(label), float(dist))
        per_query.append(people)
    out: list[list[Candidate]] = []
    for query, people in zip(np.asarray(queries, np.float32), per_query):
        cands = []
        for pid, (name, label, face_dist) in people.items():
            if pid not in templates:  # removed by a writer since the index was read
                continue
            d = min(face_dist, float(1.0 - np.dot(query, templates[pid])))
            cands.append(Candidate(name, pid, label, 1.0 - d, d))
        cands.sort(key=lambda c: c.distance)
        out.append(cands[:k_people])
    return out


def unit_template(total: np.ndarray) -> np.ndarray:
    """A person's template from the sum (or mean) of their face embeddings."""
    v = np.asarray(total, np.float64)
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def refine_candidates(
    queries: np.ndarray,
    labels: np.ndarray,
    pools: np.ndarray,
    method: str,
    device: str | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reorder each row of candidates: by exact distance, or with the gradient search's pick first.

    ``pools`` (Q, K, D) holds the candidates' stored vectors (anything where ``labels`` is -1).
    Returns the reordered labels and their exact cosine distances.
    """
    from ..refine import REFINE_METHODS, gradient_refine

    if method not in REFINE_METHODS:
        raise GalleryError(f"unknown refine method {method!r}; use {', '.join(REFINE_METHODS)}")
    valid = labels >= 0
    pools = np.where(valid[..., None], pools, 0).astype(np.float32)
    q = np.asarray(queries, np.float32)
    exact = 1.0 - np.einsum("qkd,qd->qk", pools, q)
    exact[~valid] = np.inf
    if method == "exact":
        order = np.argsort(exact, axis=1, kind="stable")
    else:
        best = gradient_refine(q, pools, device=device, valid=valid)
        # the gradient search decides the nearest face; the rest keep the index's order
        rank = np.tile(np.arange(labels.shape[1]), (len(labels), 1))
        rank[np.arange(len(labels)), best] = -1
        order = np.argsort(rank, axis=1)
    rows = np.arange(len(labels))[:, None]
    return labels[rows, order], exact[rows, order].astype(np.float32)
