"""The HNSW index on real + synthetic face vectors: recall against exact search, removal, save/load,
compressed storage with exact re-ranking, parameters kept per gallery."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import FACES
from facesearch.errors import GalleryError, InputError
from facesearch.gallery import Gallery
from facesearch.gallery.index import FaceIndex, IndexParams, auto_ef, exact_path
from facesearch.native import usearch_index
from facesearch.types import FaceRecord

LFW = FACES / "lfw_dev" / "images"
N_SYNTHETIC = 3000


@pytest.fixture(scope="module")
def real(detector, embedder, tmp_path_factory):
    """Subject embeddings of 180 lfw_dev photos (60 people x 3), computed as enroll does."""
    from facesearch import FaceSearch
    from facesearch.evaluation.evalset import EvalSet
    from facesearch.evaluation.protocols import embed_subjects

    people = [d for d in sorted(LFW.iterdir()) if d.is_dir() and len(list(d.iterdir())) >= 3][:60]
    paths = [p for d in people for p in sorted(d.iterdir())[:3]]
    es = EvalSet(LFW, tuple(d.name for d in people), tuple(paths), np.repeat(np.arange(60), 3))
    fs = FaceSearch(tmp_path_factory.mktemp("unused"), detector=detector, embedder=embedder)
    emb = embed_subjects(es, fs, cache_dir=None)
    return emb.vectors[emb.found]


def face_like(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Unit vectors from a Gaussian fitted to the real ones (shrunk towards the diagonal)."""
    rng = np.random.default_rng(seed)
    cov = np.cov(real, rowvar=False)
    cov = 0.7 * cov + 0.3 * np.diag(np.diag(cov))
    x = rng.multivariate_normal(real.mean(0), cov, size=n).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data(real):
    """Gallery: 150 real + 3,000 synthetic; queries: 30 held-out real (one per person with a
    photo left in the gallery) + 200 synthetic."""
    held = np.arange(0, len(real), 6)[:30]
    keep = np.setdiff1d(np.arange(len(real)), held)
    gallery = np.r_[real[keep], face_like(real, N_SYNTHETIC, 1)]
    queries = np.r_[real[held], face_like(real, 200, 2)]
    return gallery.astype(np.float32), queries.astype(np.float32)


def exact_top1(gallery, queries):
    sims = queries @ gallery.T
    return sims.max(1)


def recall_at_1(index, gallery, queries, **kw):
    labels, dists = index.search(queries, 1, **kw)
    best = exact_top1(gallery, queries)
    found = np.einsum("qd,qd->q", queries, gallery[labels[:, 0]])
    return float(np.mean(found >= best - 1e-6)), labels, dists


@pytest.mark.parametrize("dtype", ["i8", "f32"])
def test_configured_index_recall_against_exact(data, dtype):
    gallery, queries = data
    index = FaceIndex(gallery.shape[1], IndexParams(dtype=dtype))
    index.add(np.arange(len(gallery)), gallery)
    recall, labels, dists = recall_at_1(index, gallery, queries)
    assert recall >= 0.99
    # the reported distance is the exact cosine distance of the face returned
    exact = 1.0 - np.einsum("qd,qd->q", queries, gallery[labels[:, 0]])
    tol = 1e-5 if index.params.exact_rerank or dtype == "f32" else 1e-2
    assert np.allclose(dists[:, 0], exact, atol=tol)
    # real queries (their own person's other photos are in the gallery): at most one miss
    assert recall_at_1(index, gallery, queries[:30])[0] >= 29 / 30


def test_default_storage_is_compressed_with_exact_rerank():
    p = IndexParams()
    assert p.dtype != "f32" and p.exact_rerank
    assert not IndexParams(dtype="f32").exact_rerank
    assert not IndexParams(dtype="i8", rerank=0).exact_rerank


def test_i8_without_rerank_loses_recall_that_rerank_restores(data):
    """What the re-rank is for: i8 alone ranks near-ties wrongly (README, "The index at scale")."""
    gallery, queries = data
    recalls = {}
    for rerank in (0, 64):
        index = FaceIndex(gallery.shape[1], IndexParams(dtype="i8", rerank=rerank))
        index.add(np.arange(len(gallery)), gallery)
        recalls[rerank] = recall_at_1(index, gallery, queries, ef=256)[0]
    assert recalls[64] >= 0.99 and recalls[0] < recalls[64]


@pytest.mark.parametrize("dtype", ["i8", "f32"])
def test_removal_really_removes(data, tmp_path, dtype):
    gallery, queries = data
    index = FaceIndex(gallery.shape[1], IndexParams(dtype=dtype))
    labels = np.arange(100, 100 + len(gallery))
    index.add(labels, gallery)
    gone = labels[:500]
    index.remove(gone)
    assert len(index) == len(gallery) - 500
    assert not np.isin(gone, index.labels()).any()
    # querying with the removed vectors themselves never returns them
    found, _ = index.search(gallery[:500], 10, ef=256)
    assert not np.isin(found, gone).any() and (found >= 0).all()
    index.save(tmp_path / "i.usearch")
    for view in (False, True):
        loaded = FaceIndex.load(tmp_path / "i.usearch", gallery.shape[1], IndexParams(), view=view)
        assert len(loaded) == len(gallery) - 500
        found, _ = loaded.search(gallery[:500], 10, ef=256)
        assert not np.isin(found, gone).any()


@pytest.mark.parametrize("dtype", ["i8", "f16", "f32"])
def test_save_load_round_trip(data, tmp_path, dtype):
    gallery, queries = data
    params = IndexParams(dtype=dtype, connectivity=24)
    index = FaceIndex(gallery.shape[1], params)
    index.add(np.arange(len(gallery)) * 3 + 7, gallery)  # labels need not be dense
    before = index.search(queries, 10)
    path = tmp_path / "faces.usearch"
    index.save(path)
    assert exact_path(path).exists() == params.exact_rerank
    for view in (False, True):
        # the file's own structure wins over the parameters asked for
        loaded = FaceIndex.load(path, gallery.shape[1], IndexParams(dtype="f32"), view=view)
        assert loaded.view == view and len(loaded) == len(gallery)
        assert loaded.params.dtype == dtype and loaded.params.connectivity == 24
        after = loaded.search(queries, 10)
        assert np.array_equal(before[0], after[0]) and np.allclose(before[1], after[1], atol=1e-6)
        assert np.allclose(loaded.vectors(np.array([7, 10])), gallery[:2], atol=1e-2)


def test_incremental_adds_after_load_are_saved(data, tmp_path):
    gallery, queries = data
    path = tmp_path / "faces.usearch"
    index = FaceIndex(gallery.shape[1])
    index.add(np.arange(1000), gallery[:1000])
    index.save(path)
    size = exact_path(path).stat().st_size
    index = FaceIndex.load(path, gallery.shape[1], IndexParams())
    index.add(np.arange(1000, 1100), gallery[1000:1100])  # searchable before any save
    assert index.search(gallery[1050], 1)[0][0, 0] == 1050
    index.save(path)
    assert exact_path(path).stat().st_size == size + 100 * gallery.shape[1] * 4  # rows appended
    loaded = FaceIndex.load(path, gallery.shape[1], IndexParams(), view=True)
    assert loaded.search(gallery[1050], 1)[0][0, 0] == 1050


def test_batch_search_matches_single_queries_pending_and_mapped(tmp_path):
    """A batch answers what the same queries answer one by one, with exact distances, and pads
    with -1 / inf when the gallery holds fewer faces than asked for."""
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((40, 512)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = vecs[:6] + 0.1 * rng.standard_normal((6, 512)).astype(np.float32)
    labels = np.arange(100, 140)  # sparse: not starting at 0
    index = FaceIndex(512)
    index.add(labels, vecs)
    path = tmp_path / "faces.usearch"
    for state in ("pending", "mapped"):
        if state == "mapped":
            index.save(path)
            index = FaceIndex.load(path, 512, IndexParams(), view=True)
        got, dist = index.search(queries, 50)
        assert (got[:, 40:] == -1).all() and np.isinf(dist[:, 40:]).all(), state
        unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        want = 1.0 - np.einsum("qd,qkd->qk", unit, vecs[got[:, :40] - 100])
        np.testing.assert_allclose(dist[:, :40], want, atol=1e-5)
        assert (np.diff(dist[:, :40], axis=1) >= 0).all()
        for i, q in enumerate(queries):
            one, one_dist = index.search(q, 50)
            assert one[0, 0] == got[i, 0] and np.isclose(one_dist[0, 0], dist[i, 0]), state


def test_search_breadth_grows_with_the_gallery_unless_set():
    assert (auto_ef(1), auto_ef(10_000), auto_ef(100_000), auto_ef(1_000_000)) == (64, 64, 160, 402)
    assert auto_ef(10**9) == 1024
    vecs = np.random.default_rng(4).standard_normal((300, 512)).astype(np.float32)
    index = FaceIndex(512)
    index.add(np.arange(300), vecs)
    assert index.search_breadth == 64
    assert FaceIndex(512, IndexParams(expansion_search=40)).search_breadth == 40


def test_missing_exact_vectors_is_an_unreadable_index(data, tmp_path):
    gallery, _ = data
    path = tmp_path / "faces.usearch"
    index = FaceIndex(gallery.shape[1])
    index.add(np.arange(200), gallery[:200])
    index.save(path)
    exact_path(path).unlink()
    with pytest.raises(GalleryError, match="exact vectors"):
        FaceIndex.load(path, gallery.shape[1], IndexParams())


def test_old_cos_index_still_loads(data, tmp_path):
    """facesearch 0.2 saved f32 indexes with usearch's "cos" metric."""
    Index = usearch_index()

    gallery, queries = data
    old = Index(ndim=gallery.shape[1], metric="cos", dtype="f32", connectivity=16)
    old.add(np.arange(len(gallery)), gallery, threads=1)  # one thread: the same graph every run
    old.save(str(tmp_path / "old.usearch"))
    loaded = FaceIndex.load(tmp_path / "old.usearch", gallery.shape[1], IndexParams())
    assert loaded.params.dtype == "f32" and loaded.exact is None
    recall, labels, dists = recall_at_1(loaded, gallery, queries, ef=256)
    assert recall >= 0.99
    exact = 1.0 - np.einsum("qd,qd->q", queries, gallery[labels[:, 0]])
    assert np.allclose(dists[:, 0], exact, atol=1e-5)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"dtype": "f64"}, "dtype"),
        ({"connectivity": 1}, "connectivity"),
        ({"expansion_search": -1}, "expansion_search"),
        ({"rerank": -1}, "rerank"),
    ],
)
def test_bad_params_are_refused(kw, message):
    with pytest.raises(InputError, match=message):
        IndexParams(**kw)


def test_gallery_keeps_its_params_across_reindex_and_reports_them(data, tmp_path):
    gallery, _ = data
    recs = [
        FaceRecord(f"p{i % 40}", f"p/{i}.jpg", f"h{i}", (0, 0, 9, 9), 0.99, v)
        for i, v in enumerate(gallery[:400])
    ]
    g_dir = tmp_path / "g"
    with Gallery(g_dir, "m", gallery.shape[1], writable=True) as g:
        g.add(recs)
        assert g.info()["index"]["dtype"] == IndexParams().dtype
        assert (g.info()["index"]["expansion_search"], g.info()["index"]["ef_in_use"]) == (0, 64)
        g.reindex(IndexParams(dtype="f32", connectivity=12, expansion_search=40))
    with Gallery(g_dir, "m", gallery.shape[1]) as g:
        info = g.info()["index"]
        assert (info["dtype"], info["connectivity"], info["expansion_search"]) == ("f32", 12, 40)
        assert info["size"] == 400 and info["memory_mapped"] and info["metric"] == "cosine"
        assert info["ef_in_use"] == 40
        assert g.search(gallery[5:6], 1)[0][0].name == "p5"
    # a rebuild from scratch (index lost) uses the gallery's parameters, not the defaults
    (g_dir / "faces.usearch").unlink()
    with Gallery(g_dir, "m", gallery.shape[1], writable=True) as g:
        assert g.index.params.dtype == "f32" and g.index.params.connectivity == 12
    meta = json.loads((g_dir / "faces.usearch.json").read_text())
    assert meta["params"]["connectivity"] == 12


# -- storage chosen by CPU kind -------------------------------------------------------------------


@pytest.fixture
def cpu(monkeypatch):
    """Pretend to be a CPU of the given usearch kind ("haswell", "sapphire", ...)."""
    import facesearch.gallery.index as index_module

    def pretend(kind: str) -> None:
        monkeypatch.setattr(index_module, "_CPU_KIND", kind)

    return pretend


def synthetic(n: int = 3000, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors, and queries near 200 of them (noise, so the nearest is not the vector)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, 512)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    q = g[rng.choice(n, 200, replace=False)] + 0.05 * rng.standard_normal((200, 512))
    return g, (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    "kind, dtype, rerank, label",
    [
        ("sapphire", "i8", 64, "avx512 (sapphire)"),
        ("icelake", "i8", 64, "avx512 (icelake)"),
        ("genoa", "i8", 64, "avx512 (genoa)"),
        ("haswell", "i8", 16, "haswell (no AVX-512)"),
        ("serial", "i8", 16, "serial (no AVX-512)"),
    ],
)
def test_params_are_chosen_by_cpu_kind(cpu, kind, dtype, rerank, label):
    from facesearch.gallery.index import cpu_kind, params_for_cpu

    cpu(kind)
    assert cpu_kind() == kind
    p = params_for_cpu()
    assert (p.dtype, p.rerank, p.chosen_for) == (dtype, rerank, label)
    assert p.choice == f"{dtype} + re-rank {rerank}: chosen for {label}"
    # an explicit kind wins over this CPU's; the rest of ``base`` is kept
    q = params_for_cpu("haswell", base=IndexParams(connectivity=12, dtype="f32", rerank=0))
    assert (q.connectivity, q.dtype, q.rerank) == (12, "i8", 16)
    # the plain defaults are those measured with AVX-512, not chosen for any CPU
    assert (IndexParams().dtype, IndexParams().rerank, IndexParams().chosen_for) == ("i8", 64, "")
    assert IndexParams.from_dict(p.to_dict()) == p


def test_this_cpu_kind_is_usearchs():
    Index = usearch_index()

    from facesearch.gallery.index import cpu_kind

    assert cpu_kind() == Index(ndim=8, metric="ip", dtype="i8").hardware_acceleration


@pytest.mark.parametrize("dtype, rerank", [("i8", 16), ("i8", 64), ("f16", 0), ("bf16", 0)])
def test_recall_of_the_storage_choices(dtype, rerank):
    """Every storage the choice (or the benchmark's variants) can give finds the nearest, with
    exact distances where it re-ranks, and one query at a time answers what a batch answers."""
    g, q = synthetic()
    index = FaceIndex(512, IndexParams(dtype=dtype, rerank=rerank))
    index.add(np.arange(len(g)), g)
    labels, dists = index.search(q, 10, ef=128)
    best = (q @ g.T).max(1)
    assert np.mean(np.einsum("qd,qd->q", q, g[labels[:, 0]]) >= best - 1e-6) >= 0.99
    exact = 1.0 - np.einsum("qd,qkd->qk", q, g[labels])
    assert np.allclose(dists, exact, atol=1e-5 if rerank else 2e-2)
    assert (np.diff(dists, axis=1) >= 0).all() if rerank else True
    for i in range(0, 200, 25):
        one, one_dist = index.search(q[i], 10, ef=128)
        assert np.array_equal(one[0], labels[i]) and np.allclose(one_dist[0], dists[i])


def records(vectors: np.ndarray) -> list[FaceRecord]:
    return [
        FaceRecord(f"p{i % 20}", f"p/{i}.jpg", f"h{i}", (0, 0, 9, 9), 0.99, v)
        for i, v in enumerate(vectors)
    ]


@pytest.mark.parametrize(
    "kind, rerank, label",
    [("haswell", 16, "haswell (no AVX-512)"), ("sapphire", 64, "avx512 (sapphire)")],
)
def test_a_new_gallery_records_the_choice_for_its_cpu_and_keeps_it(
    cpu, tmp_path, kind, rerank, label
):
    from facesearch.gallery.local import PARAMS_KEY

    g_vecs, q = synthetic(400)
    cpu(kind)
    with Gallery(tmp_path / "g", "m", 512, writable=True) as g:
        g.add(records(g_vecs))
        info = g.info()["index"]
        assert (info["dtype"], info["rerank"], info["chosen_for"]) == ("i8", rerank, label)
        assert info["choice"] == f"i8 + re-rank {rerank}: chosen for {label}"
        stored = json.loads(g.store.get_meta(PARAMS_KEY))
        assert (stored["rerank"], stored["chosen_for"]) == (rerank, label)
    # opened on another kind of CPU (read-only and writable), it keeps what it was created with
    cpu("sapphire" if kind == "haswell" else "haswell")
    for writable in (False, True):
        with Gallery(tmp_path / "g", "m", 512, writable=writable) as g:
            assert g.info()["index"]["chosen_for"] == label
            assert g.index_params.rerank == rerank
            assert g.search(g_vecs[7:8], 1)[0][0].name == "p7"


def test_a_gallery_from_before_the_choice_keeps_the_old_defaults(cpu, tmp_path):
    """A gallery created before storage was chosen by CPU holds no parameters of its own: it
    keeps the defaults it was built with (i8 + re-rank 64), on any CPU, until ``reindex``."""
    from facesearch.gallery.local import PARAMS_KEY

    g_vecs, _ = synthetic(300)
    cpu("haswell")
    with Gallery(tmp_path / "g", "m", 512, writable=True) as g:
        g.add(records(g_vecs))
        g.store.set_meta({PARAMS_KEY: None})  # as galleries from before were
    for writable in (False, True):
        with Gallery(tmp_path / "g", "m", 512, writable=writable) as g:
            p = g.index_params
            assert (p.dtype, p.rerank, p.chosen_for) == ("i8", 64, "")
            assert g.info()["index"]["choice"].startswith("i8 + re-rank 64: set for this gallery")
            assert g.store.get_meta(PARAMS_KEY) is None
    # reindex re-chosen for this CPU (what `facesearch reindex` without --dtype/--rerank does)
    from facesearch.gallery.index import params_for_cpu

    with Gallery(tmp_path / "g", "m", 512, writable=True) as g:
        g.reindex(params_for_cpu(base=g.index_params))
    with Gallery(tmp_path / "g", "m", 512) as g:
        assert g.info()["index"]["choice"] == "i8 + re-rank 16: chosen for haswell (no AVX-512)"


# -- the graph on the model's subspace ------------------------------------------------------------


@pytest.fixture(scope="module")
def basis(embedder):
    return embedder.subspace()


def in_subspace(vectors: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``vectors`` moved into the subspace (projected and made unit length again)."""
    x = (vectors @ basis) @ basis.T
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_the_models_subspace_holds_its_embeddings(basis, real):
    """FaceNet's output layer spans about 50 dimensions: a 64-d basis from the weights alone
    keeps all but a few millionths of every real embedding's squared length."""
    assert basis.shape == (512, 64) and basis.dtype == np.float32
    assert np.allclose(basis.T @ basis, np.eye(64), atol=1e-5)
    kept = np.einsum("ij,ij->i", real @ basis, real @ basis)
    assert kept.min() > 1 - 1e-4
    # a random direction keeps about 64/512 of its length: the subspace is a real restriction
    rng = np.random.default_rng(0)
    r = rng.standard_normal((100, 512))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    assert np.einsum("ij,ij->i", r @ basis, r @ basis).mean() < 0.2


def projected_data(data, basis):
    gallery, queries = data
    return in_subspace(gallery, basis), in_subspace(queries, basis)


@pytest.mark.parametrize("dtype", ["i8", "f32"])
def test_a_projected_index_finds_what_exact_search_finds(data, basis, tmp_path, dtype):
    gallery, queries = projected_data(data, basis)
    params = IndexParams(dtype=dtype, rerank=16, project=64)
    index = FaceIndex(512, params, basis)
    index.add(np.arange(len(gallery)), gallery)
    assert index.params.project == 64 and index._index.ndim == 64
    labels, dists = index.search(queries, 5, ef=128)
    best = exact_top1(gallery, queries)
    found = np.einsum("qd,qd->q", queries, gallery[labels[:, 0]])
    assert np.mean(found >= best - 1e-6) >= 0.99
    # distances are those of the full vectors (the exact re-rank), best first
    exact = 1.0 - np.einsum("qd,qkd->qk", queries, gallery[labels])
    assert np.allclose(dists, exact, atol=1e-5) and (np.diff(dists, axis=1) >= 0).all()
    assert np.allclose(index.vectors(labels[:3, 0]), gallery[labels[:3, 0]])
    # saved and opened again (loaded or memory-mapped) it answers the same, given its basis
    path = tmp_path / "faces.usearch"
    index.save(path)
    for view in (False, True):
        again = FaceIndex.load(path, 512, IndexParams(dtype=dtype), view=view, basis=basis)
        assert again.params.project == 64 and again.view == view
        assert np.array_equal(again.search(queries, 5, ef=128)[0], labels)
    with pytest.raises(GalleryError, match="index has 64 dimensions, expected 512"):
        FaceIndex.load(path, 512, IndexParams(dtype=dtype))


def test_a_vector_outside_the_subspace_turns_the_projection_off(data, basis, caplog):
    """Whatever is added, results stay right: a vector the basis does not hold (here the test's
    synthetic ones, which are not in the model's subspace) rebuilds the graph on full vectors."""
    inside, queries = projected_data(data, basis)
    outside = data[0][200:1200]
    assert np.einsum("ij,ij->i", outside @ basis, outside @ basis).min() < 0.9
    index = FaceIndex(512, IndexParams(rerank=16, project=64), basis)
    index.add(np.arange(1000), inside[:1000])
    assert index.params.project == 64
    index.add(np.arange(1000, 2000), outside)
    assert "outside the embedding model's subspace" in caplog.text
    assert index.params.project == 0 and index.basis is None and index._index.ndim == 512
    gallery = np.r_[inside[:1000], outside]
    for q in (queries, data[1]):
        labels, dists = index.search(q, 3, ef=128)
        best = exact_top1(gallery, q)
        assert np.mean(np.einsum("qd,qd->q", q, gallery[labels[:, 0]]) >= best - 1e-6) >= 0.99
        assert np.allclose(dists, 1.0 - np.einsum("qd,qkd->qk", q, gallery[labels]), atol=1e-5)


def test_a_projection_needs_a_basis_of_its_width(basis):
    assert FaceIndex(512, IndexParams(project=64)).params.project == 0
    assert FaceIndex(512, IndexParams(project=32), basis).params.project == 0
    assert FaceIndex(512, IndexParams(project=64), basis).params.project == 64
    from facesearch.gallery.index import basis_from_text, basis_to_text

    assert np.array_equal(basis_from_text(basis_to_text(basis, 512), 512), basis)
    with pytest.raises(InputError, match="orthonormal"):
        basis_to_text(basis * 2, 512)
    with pytest.raises(InputError, match=r"must be \(512, k\)"):
        basis_to_text(np.eye(512, dtype=np.float32), 512)


def test_a_gallery_records_the_models_subspace_and_keeps_it(data, basis, cpu, tmp_path):
    from facesearch.gallery.local import SUBSPACE_KEY

    gallery, queries = projected_data(data, basis)
    cpu("haswell")
    asked = []

    def subspace():
        asked.append(1)
        return basis

    with Gallery(tmp_path / "g", "m", 512, writable=True, subspace=subspace) as g:
        g.add(records(gallery[:400]))
        info = g.info()["index"]
        assert info["project"] == 64
        assert (
            info["choice"] == "i8 of 64-d projections + re-rank 16: chosen for haswell (no AVX-512)"
        )
        assert g.store.get_meta(SUBSPACE_KEY) is not None
    assert len(asked) == 1
    # opened again without the model's basis at hand, it uses the recorded one
    for writable in (False, True):
        with Gallery(tmp_path / "g", "m", 512, writable=writable) as g:
            assert g.index_params.project == 64
            assert g.search(gallery[7:8], 1)[0][0].name == "p7"
    # lost index: rebuilt projected; reindex turns it off and on (the width is the basis's)
    (tmp_path / "g" / "faces.usearch").unlink()
    with Gallery(tmp_path / "g", "m", 512, writable=True) as g:
        assert g.index_params.project == 64
        g.reindex(replace(g.index_params, project=0))
        assert g.index_params.project == 0 and g.index._index.ndim == 512
        g.reindex(replace(g.index_params, project=1))
        assert g.index_params.project == 64
    assert len(asked) == 1


def test_a_gallery_without_a_subspace_can_adopt_one_on_reindex(data, basis, tmp_path):
    gallery, _ = projected_data(data, basis)
    with Gallery(tmp_path / "g", "m", 512, writable=True) as g:
        g.add(records(gallery[:300]))
        assert g.index_params.project == 0
        g.reindex(replace(g.index_params, project=64))  # nothing to project with: stays off
        assert g.index_params.project == 0
    with Gallery(tmp_path / "g", "m", 512, writable=True, subspace=lambda: basis) as g:
        assert g.index_params.project == 0  # an existing gallery changes only on reindex
        g.reindex(replace(g.index_params, project=64))
        assert g.index_params.project == 64
        assert g.search(gallery[11:12], 1)[0][0].name == "p11"


def test_migrate_passes_the_recorded_basis_on(data, basis, tmp_path):
    """A directory copied into a new directory keeps its graph on the subspace without the
    model at hand; with no basis in the source the caller's (the model's) is used."""
    from facesearch.gallery import migrate

    gallery, _ = projected_data(data, basis)
    with Gallery(tmp_path / "a", "m", 512, writable=True, subspace=lambda: basis) as g:
        g.add(records(gallery[:200]))
    assert migrate(tmp_path / "a", tmp_path / "b", "m", 512).faces == 200
    with Gallery(tmp_path / "b", "m", 512) as g:
        assert g.index_params.project == 64 and np.array_equal(g.basis, basis)
        assert g.search(gallery[3:4], 1)[0][0].name == "p3"
    with Gallery(tmp_path / "c", "m", 512, writable=True) as g:
        g.add(records(gallery[:50]))
    migrate(tmp_path / "c", tmp_path / "d", "m", 512, subspace=lambda: basis)
    with Gallery(tmp_path / "d", "m", 512) as g:
        assert g.index_params.project == 64
