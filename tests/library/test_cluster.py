"""FaceClusterer on synthetic embeddings: people found, photos respected, chains not merged."""

from __future__ import annotations

import numpy as np
import pytest

from facesearch.library.cluster import FaceClusterer

D = 64


def people(rng, n_people, per_person, spread=0.35):
    """Unit vectors around ``n_people`` random centres; returns (vectors, identity)."""
    centres = rng.standard_normal((n_people, D))
    who = np.repeat(np.arange(n_people), per_person)
    v = centres[who] / np.sqrt(D) + spread * rng.standard_normal((len(who), D)) / np.sqrt(D)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32), who


def same_partition(labels, who):
    """Every cluster is one identity and every identity one cluster."""
    return all(len(set(who[labels == c])) == 1 for c in set(labels) - {-1}) and all(
        len(set(labels[who == p])) == 1 for p in set(who)
    )


def test_separated_people_become_one_cluster_each():
    v, who = people(np.random.default_rng(0), 8, 6)
    labels = FaceClusterer().fit(v).labels_
    assert (labels >= 0).all() and same_partition(labels, who)
    assert len(set(labels)) == 8


def test_groups_smaller_than_min_faces_stay_unclustered():
    v, who = people(np.random.default_rng(1), 4, 2)
    assert (FaceClusterer(min_faces=3).fit(v).labels_ == -1).all()
    assert (FaceClusterer(min_faces=2).fit(v).labels_ >= 0).all()


def test_two_faces_of_one_photo_never_share_a_cluster():
    v, _ = people(np.random.default_rng(2), 1, 6)
    photo = np.array([0, 0, 1, 2, 3, 4])  # the first two faces come from one photo
    labels = FaceClusterer(min_faces=1).fit(v, groups=photo).labels_
    assert labels[0] != labels[1]
    together = FaceClusterer(min_faces=1).fit(v).labels_  # without photos: one person
    assert together[0] == together[1]


def test_a_chain_of_close_pairs_does_not_merge_two_far_groups():
    # two tight groups far apart, joined by a chain of faces each close to the next:
    # single linkage (DBSCAN) walks the chain; average linkage does not
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(D), rng.standard_normal(D)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    steps = np.linspace(0, 1, 12)[:, None]
    chain = a * (1 - steps) + b * steps
    group_a = a + 0.05 * rng.standard_normal((5, D)) / np.sqrt(D)
    group_b = b + 0.05 * rng.standard_normal((5, D)) / np.sqrt(D)
    v = np.concatenate([group_a, chain, group_b]).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    labels = FaceClusterer(link_distance=0.2, average_distance=0.3).fit(v).labels_
    assert labels[0] != labels[-1]


def test_partial_fit_keeps_labels_and_grows_clusters():
    rng = np.random.default_rng(4)
    v, who = people(rng, 6, 8)
    order = rng.permutation(len(v))
    v, who = v[order], who[order]
    c = FaceClusterer().fit(v[:30])
    before = c.labels_.copy()
    c.partial_fit(v[30:])
    assert same_partition(c.labels_, who)
    kept = before >= 0
    # a cluster found before is still one cluster, now perhaps larger
    for lab in set(before[kept]):
        assert len(set(c.labels_[:30][before == lab])) == 1


def test_groups_must_match_vectors():
    v, _ = people(np.random.default_rng(5), 2, 3)
    with pytest.raises(ValueError, match="one entry per vector"):
        FaceClusterer().fit(v, groups=np.zeros(2))


def test_hnsw_neighbours_above_the_exact_limit(monkeypatch):
    import facesearch.library.cluster as cluster

    monkeypatch.setattr(cluster, "EXACT_UP_TO", 10)
    v, who = people(np.random.default_rng(6), 5, 6)
    labels = FaceClusterer().fit(v).labels_
    assert same_partition(labels, who)


def test_resume_takes_up_stored_clusters_and_goes_on():
    rng = np.random.default_rng(7)
    v, who = people(rng, 6, 8)
    order = rng.permutation(len(v))
    v, who = v[order], who[order]
    first = FaceClusterer(min_faces=2).fit(v[:30])
    # a new estimator, from the labels alone (as a gallery stores them)
    resumed = FaceClusterer(min_faces=2).resume(v[:30], first.labels_)
    assert np.array_equal(resumed.labels_ >= 0, first.labels_ >= 0)
    assert same_partition(resumed.labels_[first.labels_ >= 0], first.labels_[first.labels_ >= 0])
    resumed.partial_fit(v[30:])
    assert same_partition(resumed.labels_, who)
    for lab in set(first.labels_[first.labels_ >= 0]):  # stored clusters stay whole
        assert len(set(resumed.labels_[:30][first.labels_ == lab])) == 1


def test_resume_keeps_a_stored_cluster_as_it_is():
    # two far groups stored as one cluster (a user's choice) are not re-examined
    rng = np.random.default_rng(8)
    v, who = people(rng, 2, 4)
    stored = np.zeros(len(v), np.int64)
    assert (FaceClusterer().resume(v, stored).labels_ == 0).all()
    with pytest.raises(ValueError, match="one entry per vector"):
        FaceClusterer().resume(v, stored[:3])


def test_stable_ids_follow_the_faces():
    from facesearch.library.clusters import stable_ids

    old = np.array([5, 5, 5, 9, 9, 0, 0, 0, 3])
    new = np.array([0, 0, 0, 0, 1, 1, 2, 2, -1])  # 5 and 9 overlap, 3 dissolves
    ids = stable_ids(new, old, next_id=12)
    assert ids.tolist() == [5, 5, 5, 5, 9, 9, 12, 12, 0]


def test_neighbours_on_the_faces_subspace_are_those_of_the_full_vectors(monkeypatch):
    """Faces that span a small subspace of 512-d (as FaceNet's do: ~51 dimensions) are searched
    on 64 coordinates: same neighbours, same distances, same clusters; faces that do not keep
    their full vectors."""
    import facesearch.library.cluster as cluster

    monkeypatch.setattr(cluster, "PROJECT_FROM", 100)
    rng = np.random.default_rng(7)
    small, who = people(rng, 30, 5)
    embed = np.linalg.qr(rng.standard_normal((512, D)))[0][:, :50]  # 50 of 512 dimensions
    v = np.ascontiguousarray(
        (small[:, :50] / np.linalg.norm(small[:, :50], axis=1, keepdims=True)) @ embed.T,
        dtype=np.float32,
    )
    basis = cluster._coordinates(v)
    assert basis is not None and basis.shape == (512, cluster.SUBSPACE_WIDTH)
    idx, dist = cluster._knn(v, v[:40], 6)
    exact = 1.0 - v[:40] @ v.T
    assert np.allclose(np.sort(dist, 1), np.sort(exact, 1)[:, :6], atol=1e-5)
    labels = FaceClusterer().fit(v).labels_
    with monkeypatch.context() as m:
        m.setattr(cluster, "_coordinates", lambda vectors: None)
        assert np.array_equal(FaceClusterer().fit(v).labels_, labels)
    assert same_partition(labels, who)
    full = rng.standard_normal((300, 512)).astype(np.float32)
    full /= np.linalg.norm(full, axis=1, keepdims=True)
    assert cluster._coordinates(full) is None
