"""Person scoring: how near a query face is to each enrolled person. The rule lives here, once.

``person_distance`` is the rule: a person is as near as the nearer of their closest enrolled face
and their template (the normalised mean of their faces, ``unit_template``). Whether that is near
enough to name them is ``threshold.name_for``'s decision.

Two scorers apply it. Gallery backends find the nearest enrolled faces of each query in their own
index, look up owners and templates, and call ``score_people`` (identify, live, the server).
``ExactScorer`` scores every enrolled face in numpy, for ``evaluate``/``calibrate``, which
measure thresholds on thousands of simulated galleries; ``tests/gallery/test_scoring.py`` shows
the two agree. Distances are cosine distances (1 - cos) between unit vectors.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from ..errors import GalleryError
from ..types import Candidate


def candidate_faces(k_people: int, n_faces: int, refine: str = "none", pool: int = 512) -> int:
    """How many nearest faces to fetch per query to score ``k_people`` people."""
    k = min(n_faces, max(64, 8 * k_people))
    if refine != "none":
        k = min(n_faces, max(k, pool))
    return k


def person_distance(face_distance: ArrayLike, template_distance: ArrayLike) -> np.ndarray:
    """The distance of a query to a person, from its distance to their closest face and to their
    template: the smaller of the two. Works elementwise on arrays of any matching shape."""
    return np.minimum(face_distance, template_distance)


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
    (the normalised mean of their faces). A person is scored by ``person_distance`` from their
    closest face among the candidates and their template. A face whose owner or template is
    missing (removed since the index was read) is skipped.
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
        # people whose template is missing were removed by a writer since the index was read
        found = [(pid, hit) for pid, hit in people.items() if pid in templates]
        if not found:
            out.append([])
            continue
        to_template = 1.0 - np.stack([templates[pid] for pid, _ in found]) @ query
        dist = person_distance(np.array([hit[2] for _, hit in found]), to_template)
        cands = [
            Candidate(name, pid, label, 1.0 - float(d), float(d))
            for (pid, (name, label, _)), d in zip(found, dist)
        ]
        cands.sort(key=lambda c: c.distance)
        out.append(cands[:k_people])
    return out


def unit_template(total: np.ndarray) -> np.ndarray:
    """A person's template from the sum (or mean) of their face embeddings (rows: people)."""
    v = np.asarray(total, np.float64)
    norms = np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    return (v / norms).astype(np.float32)


class ExactScorer:
    """Every query against every enrolled face and template, in numpy: ``score_people``'s rule
    without an index, for evaluating many small galleries (``evaluate``, ``calibrate``).

    ``vectors`` (N, D) are the enrolled faces, ``owner`` (N,) their people (any integer ids).
    """

    def __init__(self, vectors: np.ndarray, owner: np.ndarray) -> None:
        order = np.argsort(owner, kind="stable")
        self.faces = np.asarray(vectors, np.float32)[order]
        owner = np.asarray(owner)[order]
        self.people, self.starts = np.unique(owner, return_index=True)
        self.templates = unit_template(
            np.add.reduceat(self.faces.astype(np.float64), self.starts, axis=0)
        )

    def distances(self, queries: np.ndarray) -> np.ndarray:
        """(Q, people) distances, people in the order of ``self.people``."""
        face_d = np.minimum.reduceat(1.0 - queries @ self.faces.T, self.starts, axis=1)
        return person_distance(face_d, 1.0 - queries @ self.templates.T)

    def nearest(
        self, queries: np.ndarray, exclude: np.ndarray | None = None, missing: float = 2.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per query: the distance to the nearest person, and that person (``missing`` and -1
        when there is nobody to match).

        ``exclude[i]`` (optional) is a person that query i must not match: its own identity,
        which turns a known query into a simulated stranger.
        """
        dist = np.full(len(queries), missing)
        who = np.full(len(queries), -1)
        for start in range(0, len(queries), 1024):
            d = self.distances(queries[start : start + 1024])
            if exclude is not None:
                d[self.people[None, :] == exclude[start : start + 1024, None]] = np.inf
            j = d.argmin(1)
            dist[start : start + len(d)] = d[np.arange(len(d)), j]
            who[start : start + len(d)] = self.people[j]
        return dist, who


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
