"""The person-scoring rule, once: identify's index path and evaluate's exact path agree."""

from __future__ import annotations

import numpy as np
import pytest

from facesearch.gallery import Gallery
from facesearch.gallery.scoring import ExactScorer, person_distance, score_people, unit_template
from facesearch.threshold import is_match, matches
from fakes import DIM, MODEL, records, unit


def test_person_distance_is_the_nearer_of_closest_face_and_template():
    face = np.array([0.30, 0.10, 0.50])
    template = np.array([0.20, 0.40, 0.50])
    np.testing.assert_array_equal(person_distance(face, template), [0.20, 0.10, 0.50])


def _exhaustive(queries, vectors, owner):
    """score_people fed every enrolled face as a candidate (what an exact index returns)."""
    dists = 1.0 - queries @ vectors.T
    order = np.argsort(dists, axis=1, kind="stable")
    labels = np.take_along_axis(np.broadcast_to(np.arange(len(vectors)), dists.shape), order, 1)
    owners = {i: (int(p), f"p{p}") for i, p in enumerate(owner)}
    templates = {
        int(p): unit_template(vectors[owner == p].astype(np.float64).sum(0))
        for p in np.unique(owner)
    }
    return score_people(
        queries, labels, np.take_along_axis(dists, order, 1), owners, templates, k_people=1
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_scorer_and_score_people_agree(seed):
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, 12, 60)
    owner[:12] = np.arange(12)  # everyone has a face
    centres = unit(rng, 12)
    vectors = unit_template(centres[owner] + 0.6 * unit(rng, 60))
    queries = unit_template(centres[rng.integers(0, 12, 40)] + 0.7 * unit(rng, 40))
    dist, who = ExactScorer(vectors, owner).nearest(queries)
    best = [row[0] for row in _exhaustive(queries, vectors, owner)]
    assert [c.person_id for c in best] == who.tolist()
    np.testing.assert_allclose([c.distance for c in best], dist, atol=1e-5)
    # and the decision on top of it: evaluate's counting is identify's name_for
    for t in (0.3, 0.5, 0.7):
        assert [is_match(c.distance, t) for c in best] == matches(dist, t).tolist()


def test_exact_scorer_agrees_with_a_real_gallery(tmp_path):
    rng = np.random.default_rng(7)
    recs = [r for k in range(8) for r in records(rng, f"p{k}", 3)]
    with Gallery(tmp_path / "g", MODEL, DIM, writable=True) as g:
        g.add(recs)
    vectors = np.stack([r.embedding for r in recs])
    owner = np.repeat(np.arange(8), 3)
    queries = unit(rng, 30)
    dist, who = ExactScorer(vectors, owner).nearest(queries)
    with Gallery(tmp_path / "g", MODEL, DIM) as g:
        found = g.search(queries, k_people=1)
    assert [c[0].name for c in found] == [f"p{k}" for k in who]
    np.testing.assert_allclose([c[0].distance for c in found], dist, atol=1e-5)


def test_exact_scorer_excludes_a_query_own_person():
    rng = np.random.default_rng(3)
    vectors = unit(rng, 4)
    owner = np.array([0, 0, 1, 1])
    _, who = ExactScorer(vectors, owner).nearest(vectors[:1], exclude=np.array([0]))
    assert who.tolist() == [1]
