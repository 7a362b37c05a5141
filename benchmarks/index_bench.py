"""facesearch's HNSW index against hnswlib, faiss (IndexHNSWFlat), pgvector and exact search.

Data: the real FaceNet embeddings of ``../shared/faces/lfw_dev`` (computed once, cached) plus
synthetic face-like vectors (a Gaussian fitted to the real ones, normalised) up to each N.
Queries: held-out real embeddings (never in the gallery) plus fresh synthetic ones, half each.
The truth is exact search (float32 matmul); a hit whose exact similarity ties the best within
1e-6 counts as found (lfw_dev holds a few identical photos).

Per N and contender, each in its own process so its memory is its own: build time (all cores),
memory (resident-set growth while building), save / load time and file size (facesearch also
memory-mapped), a sweep of the search breadth ef (batched queries, all cores: recall@1,
recall@10, queries/s), then at the operating point (the smallest ef whose recall@1 reaches
``--target``, or ``--ef``) one query at a time on one thread: queries/s and p50/p99 latency
(best of 3 passes, exact search too).
The same single queries are also timed at one fixed ef for every N (``--growth-ef``), which
separates how a search step grows with N from how much wider a search must be for equal recall.
hnswlib, faiss and pgvector get the same M and ef_construction as facesearch.

pgvector's HNSW index (``vector_ip_ops`` on full vectors, as a PostgreSQL gallery had it before
the subspace and has it with ``reindex --project off``; ``--methods pgvector-cos`` for
``vector_cosine_ops``, ``pgvector-64d`` for the index on the model's 64-d subspace, as galleries
of both kinds now have it) lives in a throwaway pgserver (PostgreSQL 16 +
pgvector; ``_common.PG_SETTINGS``) or the server at ``--pg-url``: see ``PgVector`` for how it is
built, searched and measured, and docs/postgres.md for the results.

    python benchmarks/index_bench.py [--quick] [--n 10000 100000 1000000] [--json PATH]
        [--plot PATH] [--ef EF] [--target 0.995] [--M 16 --ef-construction 128]
        [--methods facesearch hnswlib faiss-hnsw pgvector] [--pg-url URL]

The contenders come from the benchmark-only extra: ``pip install -e '.[bench]'`` (hnswlib is
built from source there) and, for pgvector, ``pip install -e '.[test]'`` (pgserver, psycopg,
pgvector). A contender that is not installed is left out with a note.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import CACHE, LFW_DEV, PgServer, server_memory_mb, use_shared_models  # noqa: E402

K = 10
TIE = 1e-6
REPEATS = 3  # single-query passes; the fastest counts
EF_SWEEP = [10, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 384, 512]


# -- data ---------------------------------------------------------------------------------------


def real_embeddings() -> np.ndarray:
    """lfw_dev's subject embeddings, exactly as enroll computes them (cached between runs)."""
    from facesearch import FaceSearch
    from facesearch.evaluation.evalset import load_eval_set
    from facesearch.evaluation.protocols import default_cache_dir, embed_subjects

    use_shared_models()
    es = load_eval_set(LFW_DEV)
    emb = embed_subjects(es, FaceSearch("/nonexistent-unused-gallery"), default_cache_dir())
    return np.ascontiguousarray(emb.vectors[emb.found], np.float32)


def model_subspace() -> np.ndarray:
    """The embedding model's subspace basis, as a new gallery records it."""
    from facesearch.embedding import FaceEmbedder

    use_shared_models()
    basis = FaceEmbedder().subspace()
    assert basis is not None
    return basis


class FaceLike:
    """Samples unit vectors from a Gaussian fitted to real embeddings (mean and full covariance)."""

    def __init__(self, real: np.ndarray, seed: int) -> None:
        self.mean = real.mean(0)
        vals, vecs = np.linalg.eigh(np.cov(real, rowvar=False))
        self.factor = (vecs * np.sqrt(np.clip(vals, 0, None))).T.astype(np.float32)
        self.rng = np.random.default_rng(seed)

    def sample(self, n: int, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty((n, len(self.mean)), np.float32) if out is None else out
        for s in range(0, n, 65536):
            z = self.rng.standard_normal((min(65536, n - s), len(self.mean)), dtype=np.float32)
            x = z @ self.factor + self.mean
            out[s : s + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out


@dataclass
class Dataset:
    gallery: np.ndarray  # (N, D) unit vectors: real ones first, then synthetic
    queries: np.ndarray  # (Q, D): held-out real ones first, then synthetic
    n_real_queries: int
    n_real_gallery: int


def make_dataset(real: np.ndarray, n: int, n_queries: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(real))
    n_real_q = min(n_queries // 2, len(real) // 3)
    held, enrolled = real[order[:n_real_q]], real[order[n_real_q:]]
    enrolled = enrolled[: min(len(enrolled), n)]
    fake = FaceLike(real, seed + 1)
    gallery = np.empty((n, real.shape[1]), np.float32)
    gallery[: len(enrolled)] = enrolled
    fake.sample(n - len(enrolled), gallery[len(enrolled) :])
    queries = np.r_[held, fake.sample(n_queries - n_real_q)]
    return Dataset(gallery, np.ascontiguousarray(queries, np.float32), n_real_q, len(enrolled))


# -- exact search ---------------------------------------------------------------------------------


def exact_topk(gallery: np.ndarray, queries: np.ndarray, k: int, threads: int) -> np.ndarray:
    """(Q, k) gallery rows with the largest dot product, best first (torch matmul + topk)."""
    import torch

    torch.set_num_threads(threads)
    g = torch.from_numpy(gallery)
    out = []
    with torch.inference_mode():
        for s in range(0, len(queries), 256):
            sims = torch.from_numpy(queries[s : s + 256]) @ g.T
            out.append(sims.topk(k, dim=1).indices.numpy())
    return np.concatenate(out)


def best_pass(search: Callable[[np.ndarray], object], queries: np.ndarray) -> list[float]:
    """Seconds per query, one query per call, in the fastest of REPEATS passes (this machine is
    shared: the best pass is the least disturbed one)."""
    passes = []
    for _ in range(REPEATS):
        times = []
        for q in queries:
            t = time.perf_counter()
            search(q)
            times.append(time.perf_counter() - t)
        passes.append(times)
    return min(passes, key=sum)


def exact_single(gallery: np.ndarray, queries: np.ndarray, k: int) -> list[float]:
    """Seconds per query, one query per call on one thread."""
    import torch

    torch.set_num_threads(1)
    g = torch.from_numpy(gallery)
    with torch.inference_mode():
        return best_pass(lambda q: (torch.from_numpy(q[None]) @ g.T).topk(k, dim=1), queries)


# -- contenders (run inside a worker process) ---------------------------------------------------


class Contender:
    """One library's HNSW index with the same build parameters."""

    name = ""

    def __init__(self, dim: int, m: int, ef_construction: int, dtype: str) -> None:
        self.dim, self.m, self.efc, self.dtype = dim, m, ef_construction, dtype

    def build(self, vectors: np.ndarray) -> None: ...
    def set_ef(self, ef: int) -> None: ...
    def search(self, queries: np.ndarray, k: int, threads: int) -> np.ndarray: ...
    def save(self, path: str) -> None: ...
    def load(self, path: str) -> None: ...

    def view(self, path: str) -> bool:
        return False

    in_server = False  # the index lives in a database server: nothing to save or load

    def configure(self, spec: dict) -> None:
        """Settings from the run beside the build parameters (a server's URL)."""

    def prepare(self, vectors: np.ndarray) -> float | None:
        """Put the vectors where the build reads them (a table); seconds taken, or None."""
        return None

    def server_mb(self) -> float | None:
        """Memory a server holds for this index (its processes, not this one), if measurable."""
        return None


class Facesearch(Contender):
    """facesearch's index as a new gallery gets it: this CPU's choice, on the embedding model's
    subspace (``basis.npy``, ``FaceEmbedder.subspace``). A variant ``DTYPE[+rrK][+proj]`` is
    that storage type and re-rank depth on the full vectors, or with ``+proj`` projected."""

    name = "facesearch"

    def configure(self, spec: dict) -> None:
        self.basis = np.load(Path(spec["dir"]) / "basis.npy")

    def _params(self, ef: int | None = None):
        from dataclasses import replace

        from facesearch.gallery.index import params_for_cpu

        p = params_for_cpu(project=self.basis.shape[1])
        p = replace(
            p,
            connectivity=self.m or p.connectivity,
            expansion_add=self.efc or p.expansion_add,
            expansion_search=ef or p.expansion_search,
        )
        if self.dtype:
            dtype, *opts = self.dtype.split("+")
            rr = [int(o[2:]) for o in opts if o.startswith("rr")]
            project = self.basis.shape[1] if "proj" in opts else 0
            p = replace(p, dtype=dtype, rerank=rr[0] if rr else p.rerank, project=project)
            p = replace(p, chosen_for="")
        return p

    def build(self, vectors: np.ndarray) -> None:
        from facesearch.gallery.index import FaceIndex

        self.index = FaceIndex(self.dim, self._params(), self.basis)
        self.index.add(np.arange(len(vectors)), vectors)
        self.ef = self.index.search_breadth

    def set_ef(self, ef: int) -> None:
        self.ef = ef

    def search(self, queries: np.ndarray, k: int, threads: int) -> np.ndarray:
        return self.index.search(queries, k, ef=self.ef, threads=threads)[0]

    def save(self, path: str) -> None:
        self.index.save(Path(path))

    def load(self, path: str) -> None:
        from facesearch.gallery.index import FaceIndex

        self.index = FaceIndex.load(Path(path), self.dim, self._params(), basis=self.basis)

    def view(self, path: str) -> bool:
        from facesearch.gallery.index import FaceIndex

        self.index = FaceIndex.load(
            Path(path), self.dim, self._params(), view=True, basis=self.basis
        )
        return True


class Hnswlib(Contender):
    name = "hnswlib"

    def build(self, vectors: np.ndarray) -> None:
        import hnswlib

        self.index = hnswlib.Index(space="cosine", dim=self.dim)
        self.index.init_index(max_elements=len(vectors), M=self.m, ef_construction=self.efc)
        self.index.add_items(vectors, np.arange(len(vectors)), num_threads=os.cpu_count() or 1)

    def set_ef(self, ef: int) -> None:
        self.ef = ef
        self.index.set_ef(ef)

    def search(self, queries: np.ndarray, k: int, threads: int) -> np.ndarray:
        return self.index.knn_query(queries, k=k, num_threads=threads)[0].astype(np.int64)

    def save(self, path: str) -> None:
        self.index.save_index(path)

    def load(self, path: str) -> None:
        import hnswlib

        self.index = hnswlib.Index(space="cosine", dim=self.dim)
        self.index.load_index(path)


class FaissHNSW(Contender):
    name = "faiss-hnsw"

    def build(self, vectors: np.ndarray) -> None:
        import faiss

        faiss.omp_set_num_threads(os.cpu_count() or 1)
        self.index = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = self.efc
        self.index.add(vectors)  # the vectors are unit length: inner product = cosine

    def set_ef(self, ef: int) -> None:
        self.ef = ef
        self.index.hnsw.efSearch = ef

    def search(self, queries: np.ndarray, k: int, threads: int) -> np.ndarray:
        import faiss

        faiss.omp_set_num_threads(threads)
        return self.index.search(queries, k)[1].astype(np.int64)

    def save(self, path: str) -> None:
        import faiss

        faiss.write_index(self.index, path)

    def load(self, path: str) -> None:
        import faiss

        self.index = faiss.read_index(path)


class PgVector(Contender):
    """pgvector's HNSW index in PostgreSQL, as a PostgreSQL gallery has it (``vector_ip_ops`` on
    the unit vectors; built once over the filled table, as ``bulk_load`` and ``migrate`` do).

    The vectors go into ``items(id, embedding)`` by binary COPY (``prepare``, not counted in the
    build), then CREATE INDEX with ``maintenance_work_mem`` = PG_BUILD_MEMORY so that the graph is
    built in memory, by pgvector's parallel build (the table's ``parallel_workers`` = the cores,
    capped by the server's ``max_parallel_maintenance_workers``).
    ef is the sessions' ``hnsw.ef_search``. A single query is one prepared statement on one
    connection; a batch is split over one connection per thread, each sending its share in
    pipeline mode (no wait for one answer before the next query goes out).
    """

    name = "pgvector"
    opclass, operator = "vector_ip_ops", "<#>"
    indexed = "embedding"  # the column the HNSW index is on
    in_server = True

    def configure(self, spec: dict) -> None:
        self.url, self.pid = spec["pg_url"], spec.get("pg_pid")
        self.conns: list = []
        self.ef = 40  # pgvector's default ef_search

    def _connect(self):
        import psycopg
        from pgvector.psycopg import register_vector

        conn = psycopg.connect(self.url, autocommit=True)
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        conn.execute(f"SET hnsw.ef_search = {int(self.ef)}")
        return conn

    def _connections(self, n: int) -> list:
        while len(self.conns) < n:
            self.conns.append(self._connect())
        return self.conns[:n]

    def _columns(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """The table's vector columns, by name: one row of each per face."""
        return {"embedding": vectors}

    def prepare(self, vectors: np.ndarray) -> float:
        t = time.perf_counter()
        conn = self._connections(1)[0]
        columns = self._columns(vectors)
        declared = ", ".join(f"{name} vector({v.shape[1]})" for name, v in columns.items())
        conn.execute(f"CREATE TABLE items (id integer PRIMARY KEY, {declared})")
        names = ", ".join(columns)
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY items (id, {names}) FROM STDIN WITH (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["int4"] + ["vector"] * len(columns))
            for i, row in enumerate(zip(*columns.values())):
                copy.write_row((i, *row))
        conn.execute("VACUUM ANALYZE items")
        # the vectors (2 kB each) live in the TOAST table, so the planner sees a small heap and
        # builds the index serially; all cores, like the other contenders' builds
        conn.execute(f"ALTER TABLE items SET (parallel_workers = {os.cpu_count() or 1})")
        return time.perf_counter() - t

    def build(self, vectors: np.ndarray) -> None:
        conn = self._connections(1)[0]
        conn.execute(f"SET maintenance_work_mem = '{PG_BUILD_MEMORY}'")
        conn.execute(
            f"CREATE INDEX items_hnsw ON items USING hnsw ({self.indexed} {self.opclass})"
            f" WITH (m = {int(self.m)}, ef_construction = {int(self.efc)})"
        )

    def set_ef(self, ef: int) -> None:
        self.ef = ef
        for conn in self.conns:
            conn.execute(f"SET hnsw.ef_search = {int(ef)}")

    def _query(self, k: int) -> str:
        return f"SELECT id FROM items ORDER BY {self.indexed} {self.operator} %b LIMIT {int(k)}"

    def _ids(self, rows: list, k: int) -> np.ndarray:
        out = np.full(k, -1, np.int64)
        out[: len(rows)] = [r[0] for r in rows]
        return out

    def search(self, queries: np.ndarray, k: int, threads: int) -> np.ndarray:
        from concurrent.futures import ThreadPoolExecutor

        sql = self._query(k)
        if len(queries) == 1:
            rows = self._connections(1)[0].execute(sql, (queries[0],), prepare=True).fetchall()
            return self._ids(rows, k)[None]

        def share(conn, part: np.ndarray) -> list[np.ndarray]:
            with conn.pipeline() as pipe:
                curs = [conn.cursor() for _ in part]
                for cur, q in zip(curs, part):
                    cur.execute(sql, (q,), prepare=True)
                pipe.sync()
                return [self._ids(cur.fetchall(), k) for cur in curs]

        conns = self._connections(max(1, min(threads, len(queries))))
        parts = np.array_split(queries, len(conns))
        with ThreadPoolExecutor(len(conns)) as ex:
            found = list(ex.map(share, conns, parts))
        return np.stack([row for part in found for row in part])

    def load(self, path: str) -> None:
        self._connections(1)

    def server_mb(self) -> float | None:
        return server_memory_mb(self.pid)

    def disk_mb(self) -> tuple[float, float]:
        """(index, table with its TOAST) on disk, MB."""
        row = (
            self._connections(1)[0]
            .execute("SELECT pg_relation_size('items_hnsw'), pg_table_size('items')")
            .fetchone()
        )
        return row[0] / 2**20, row[1] / 2**20


class PgVectorCosine(PgVector):
    """pgvector with ``vector_cosine_ops`` (the product uses ``vector_ip_ops``), for comparison."""

    name = "pgvector-cos"
    opclass, operator = "vector_cosine_ops", "<=>"


class PgVectorProjected(PgVector):
    """pgvector's HNSW index on each face's coordinates in the model's subspace (a
    ``vector(64)`` column beside the full ``vector(512)``), as galleries of both kinds index
    them: a gallery face and a query lie in that subspace, so the 64 coordinates give their
    inner product to within a few millionths and the order needs no re-rank. (The product
    indexes an untyped ``coords`` column cast to ``vector(64)``, the same index.)"""

    name = "pgvector-64d"
    indexed = "proj"

    def configure(self, spec: dict) -> None:
        super().configure(spec)
        self.basis = np.load(Path(spec["dir"]) / "basis.npy")

    def _columns(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        return {"embedding": vectors, "proj": np.ascontiguousarray(vectors @ self.basis)}

    def search(self, queries: np.ndarray, k: int, threads: int) -> np.ndarray:
        return super().search(np.ascontiguousarray(queries @ self.basis, np.float32), k, threads)


CONTENDERS = {
    c.name: c for c in (Facesearch, Hnswlib, FaissHNSW, PgVector, PgVectorCosine, PgVectorProjected)
}
DEFAULT_METHODS = ["facesearch", "hnswlib", "faiss-hnsw", "pgvector"]
MODULES = {
    "facesearch": ["usearch"],
    "hnswlib": ["hnswlib"],
    "faiss-hnsw": ["faiss"],
    "pgvector": ["psycopg", "pgvector.psycopg"],
    "pgvector-cos": ["psycopg", "pgvector.psycopg"],
    "pgvector-64d": ["psycopg", "pgvector.psycopg"],
}
PG_METHODS = ("pgvector", "pgvector-cos", "pgvector-64d")
PG_DATABASE = "index_bench"
PG_BUILD_MEMORY = "1GB"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def recalls(found: np.ndarray, data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per query: top-1 found (ties count), and the share of the true top-10 found in the top 10."""
    gallery, queries, truth_sims = data["gallery"], data["queries"], data["truth_sims"]
    ok = found >= 0
    sims = np.einsum("qd,qkd->qk", queries, gallery[np.where(ok, found, 0)])
    sims[~ok] = -np.inf
    r1 = sims[:, 0] >= truth_sims[:, 0] - TIE
    r10 = np.minimum((sims[:, :K] >= truth_sims[:, K - 1 : K] - TIE).sum(1), K) / K
    return r1, r10


@dataclass
class Result:
    n: int
    method: str
    dtype: str = "f32"
    M: int | None = None
    ef_construction: int | None = None
    ef: int | None = None
    recall_at_1: float = 0.0
    recall_at_1_real: float = 0.0
    recall_at_1_synthetic: float = 0.0
    recall_at_10: float = 0.0
    qps_single: float = 0.0
    qps_batch: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    build_s: float = 0.0
    memory_mb: float = 0.0
    build_memory_mb: float = 0.0
    rerank: int = 0
    project: int = 0  # facesearch: the graph holds this many subspace coordinates (0: all)
    save_s: float | None = None
    load_s: float | None = None
    mmap_load_s: float | None = None
    file_mb: float | None = None  # pgvector: the index on disk (pg_relation_size)
    table_mb: float | None = None  # pgvector: the table the index points into (pg_table_size)
    copy_s: float | None = None  # pgvector: COPY of the vectors into the table, before the build
    growth_ef: int | None = None
    ms_at_growth_ef: float | None = None  # mean single-query ms at growth_ef (one thread)
    variant: bool = False  # a non-default storage type of facesearch, not the configured index
    sweep: list[dict] = field(default_factory=list)


def worker(spec: dict) -> Result:
    """One phase for one contender, in a fresh process.

    "build": build (memory = resident growth), sweep ef with batched queries, save, time a full
    load. "serve": open the saved index as a query process would (facesearch memory-maps it, as
    ``identify`` does; the others load it), then time single queries at the chosen ef; memory =
    resident growth of that process (mapped pages the queries touched included).
    """
    d = Path(spec["dir"])
    path = str(d / f"index-{spec['method']}-{spec['dtype'] or 'default'}")
    if spec["phase"] == "serve":
        return serve(spec, path, np.load(d / "queries.npy"))
    data = {k: np.load(d / f"{k}.npy") for k in ("gallery", "queries", "truth_sims")}
    n_real = int(spec["n_real_queries"])
    gc.collect()
    c = CONTENDERS[spec["method"]](
        data["gallery"].shape[1], spec["M"], spec["ef_construction"], spec["dtype"]
    )
    c.configure(spec)
    res = Result(n=len(data["gallery"]), method=c.name, variant=bool(spec["dtype"]))
    res.copy_s = c.prepare(data["gallery"])
    before = rss_mb() + (c.server_mb() or 0.0)
    t = time.perf_counter()
    c.build(data["gallery"])
    res.build_s = time.perf_counter() - t
    gc.collect()
    res.build_memory_mb = rss_mb() + (c.server_mb() or 0.0) - before
    if c.name == "facesearch":
        p = c.index.params  # type: ignore[attr-defined]
        res.M, res.ef_construction, res.dtype = p.connectivity, p.expansion_add, p.dtype
        res.rerank = p.rerank if p.exact_rerank else 0
        res.project = p.project
    else:
        res.M, res.ef_construction = c.m, c.efc
    queries = data["queries"]
    threads = os.cpu_count() or 1
    c.search(queries[:10], K, threads)  # warm up
    chosen = None
    # below the re-rank depth facesearch searches that many candidates anyway: same as ef = depth
    efs = sorted({max(ef, res.rerank) for ef in spec["efs"]})
    for ef in efs:
        c.set_ef(max(ef, K))
        t = time.perf_counter()
        found = c.search(queries, K, threads)
        secs = time.perf_counter() - t
        r1, r10 = recalls(found, data)
        row = {
            "ef": max(ef, K),
            "recall_at_1": float(r1.mean()),
            "recall_at_1_real": float(r1[:n_real].mean()),
            "recall_at_1_synthetic": float(r1[n_real:].mean()),
            "recall_at_10": float(r10.mean()),
            "qps_batch": len(queries) / secs,
        }
        res.sweep.append(row)
        if chosen is None and (spec["fixed_ef"] or row["recall_at_1"] >= spec["target"]):
            chosen = row
            if not spec["full_sweep"]:
                break
    chosen = chosen or res.sweep[-1]
    for key in ("ef", "recall_at_1", "recall_at_1_real", "recall_at_1_synthetic", "recall_at_10"):
        setattr(res, key, chosen[key])
    res.qps_batch = chosen["qps_batch"]
    if c.in_server:  # nothing to save or load: the file is the index's relation
        res.file_mb, res.table_mb = c.disk_mb()  # type: ignore[attr-defined]
        return res
    t = time.perf_counter()
    c.save(path)
    res.save_s = time.perf_counter() - t
    res.file_mb = sum(os.path.getsize(f) for f in glob.glob(path + "*")) / 2**20
    del c.index  # type: ignore[attr-defined]
    gc.collect()
    t = time.perf_counter()
    c.load(path)
    res.load_s = time.perf_counter() - t
    return res


def serve(spec: dict, path: str, queries: np.ndarray) -> Result:
    c = CONTENDERS[spec["method"]](
        queries.shape[1], spec["M"], spec["ef_construction"], spec["dtype"]
    )
    c.configure(spec)
    res = Result(n=0, method=c.name)
    gc.collect()
    before = rss_mb() + (c.server_mb() or 0.0)
    t = time.perf_counter()
    if c.view(path):
        res.mmap_load_s = time.perf_counter() - t
    else:
        c.load(path)
    c.set_ef(spec["ef"])
    c.search(queries, K, 1)  # warm up: page in what the queries touch (memory-mapped files)
    times = best_pass(lambda q: c.search(q[None], K, 1), queries)
    res.memory_mb = rss_mb() + (c.server_mb() or 0.0) - before
    if c.in_server and c.server_mb() is None:  # a server whose processes are not ours to see
        res.memory_mb += sum(c.disk_mb())  # type: ignore[attr-defined]
    res.qps_single = len(times) / sum(times)
    res.p50_ms, res.p99_ms = (float(np.percentile(times, p) * 1e3) for p in (50, 99))
    if spec.get("growth_ef"):
        c.set_ef(spec["growth_ef"])
        c.search(queries, K, 1)
        res.growth_ef = spec["growth_ef"]
        times = best_pass(lambda q: c.search(q[None], K, 1), queries)
        res.ms_at_growth_ef = float(np.mean(times) * 1e3)
    return res


def run_worker(spec: dict) -> Result | None:
    """Run ``worker(spec)`` in a fresh interpreter (clean memory accounting)."""
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        print(f"  {spec['method']} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return Result(**json.loads(proc.stdout.strip().splitlines()[-1]))


# -- the run ------------------------------------------------------------------------------------


def available(method: str, pg_url: str | None = None) -> bool:
    modules = MODULES[method] + (["pgserver"] if method in PG_METHODS and not pg_url else [])
    try:
        for module in modules:
            __import__(module)
    except ImportError:
        return False
    return True


def bench_n(args: argparse.Namespace, real: np.ndarray, n: int) -> list[Result]:
    t = time.perf_counter()
    ds = make_dataset(real, n, args.queries)
    print(
        f"\nN = {n:,}: {ds.n_real_gallery:,} real + {n - ds.n_real_gallery:,} synthetic faces; "
        f"{ds.n_real_queries} real + {len(ds.queries) - ds.n_real_queries} synthetic queries "
        f"(data {time.perf_counter() - t:.0f}s)",
        flush=True,
    )
    threads = os.cpu_count() or 1
    t = time.perf_counter()
    truth = exact_topk(ds.gallery, ds.queries, K, threads)
    exact_batch_s = time.perf_counter() - t
    truth_sims = np.einsum("qd,qkd->qk", ds.queries, ds.gallery[truth])
    n_single = len(ds.queries) if n <= 100_000 else max(50, len(ds.queries) // 10)
    single = exact_single(ds.gallery, ds.queries[:n_single], K)
    exact = Result(
        n=n,
        method="exact",
        recall_at_1=1.0,
        recall_at_1_real=1.0,
        recall_at_1_synthetic=1.0,
        recall_at_10=1.0,
        qps_single=len(single) / sum(single),
        qps_batch=len(ds.queries) / exact_batch_s,
        p50_ms=float(np.percentile(single, 50) * 1e3),
        p99_ms=float(np.percentile(single, 99) * 1e3),
        memory_mb=ds.gallery.nbytes / 2**20,
        ms_at_growth_ef=float(np.mean(single) * 1e3),
    )
    results = [exact]
    with tempfile.TemporaryDirectory(prefix="index-bench-", dir=args.workdir) as tmp:
        np.save(Path(tmp) / "gallery.npy", ds.gallery)
        np.save(Path(tmp) / "queries.npy", ds.queries)
        np.save(Path(tmp) / "truth_sims.npy", truth_sims.astype(np.float32))
        np.save(Path(tmp) / "basis.npy", model_subspace())
        del ds.gallery
        gc.collect()
        base = {
            "dir": tmp,
            "n_real_queries": ds.n_real_queries,
            "target": args.target,
            "fixed_ef": args.ef,
            "efs": [args.ef] if args.ef else EF_SWEEP,
            "full_sweep": args.full_sweep,
            "growth_ef": args.growth_ef,
        }
        jobs = [
            {"method": m, "M": args.M, "ef_construction": args.ef_construction, "dtype": None}
            for m in args.methods
        ]
        if n <= args.variants_max_n:
            jobs += [
                {
                    "method": "facesearch",
                    "M": args.M,
                    "ef_construction": args.ef_construction,
                    "dtype": dt,
                }
                for dt in args.variants
            ]
        for job in jobs:
            t = time.perf_counter()
            if job["method"] in PG_METHODS:  # a fresh database; the server empties its cache
                job["pg_url"], job["pg_pid"] = args.pg.database(PG_DATABASE), args.pg.pid
            r = run_worker({**base, **job, "phase": "build"})
            if r is not None and job["method"] in PG_METHODS:
                args.pg.restart()  # the serving process starts cold, as the others do
                job["pg_pid"] = args.pg.pid
            s = r and run_worker({**base, **job, "phase": "serve", "ef": r.ef})
            for f in glob.glob(str(Path(tmp) / "index-*")):
                os.unlink(f)
            if r is not None and s is not None:
                r.memory_mb, r.qps_single, r.p50_ms, r.p99_ms = (
                    s.memory_mb,
                    s.qps_single,
                    s.p50_ms,
                    s.p99_ms,
                )
                r.mmap_load_s, r.growth_ef, r.ms_at_growth_ef = (
                    s.mmap_load_s,
                    s.growth_ef,
                    s.ms_at_growth_ef,
                )
                results.append(r)
                print(
                    f"  {r.method:<11} {r.dtype:<4} built {r.build_s:6.1f}s  ef {r.ef:<4} "
                    f"recall@1 {r.recall_at_1:.4f}  ({time.perf_counter() - t:.0f}s)",
                    flush=True,
                )
    # facesearch's M / ef_construction are what the other contenders were given
    fs = next((r for r in results if r.method == "facesearch"), None)
    if fs is not None:
        for r in results:
            if r.method in ("hnswlib", "faiss-hnsw", *PG_METHODS):
                r.M, r.ef_construction = fs.M, fs.ef_construction
    return results


def stored_as(r: Result) -> str:
    """What the graph holds: "i8 of 64-d+rr16" (int8 of the subspace coordinates, the best 16
    re-ranked with the exact vectors), "f32"..."""
    if r.method == "exact":
        return "f32"
    stored = f"{r.dtype} of {r.project}-d" if r.project else r.dtype
    return f"{stored}+rr{r.rerank}" if r.rerank else stored


def print_table(results: list[Result]) -> None:
    exact = {r.n: r for r in results if r.method == "exact"}
    head = (
        f"{'N':>9} {'method':<11} {'stored as':<16} {'M':>3} {'efC':>4} {'ef':>4} {'R@1':>7} "
        f"{'R@1 real':>8} {'R@10':>7} {'q/s 1 thr':>9} {'vs exact':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'q/s batch':>9} {'vs exact':>8} {'build s':>8} {'mem MB':>7} "
        f"{'file MB':>7} {'save s':>6} {'load s':>6} {'mmap s':>6} {'ms@gef':>7}"
    )
    print("\n" + head + "\n" + "-" * len(head))

    def opt(v: float | None, fmt: str) -> str:
        return format(v, fmt) if v is not None else "-"

    for r in results:
        e = exact[r.n]
        print(
            f"{r.n:>9,} {r.method:<11} {stored_as(r):<16} "
            f"{opt(r.M, 'd'):>3} {opt(r.ef_construction, 'd'):>4} {opt(r.ef, 'd'):>4} "
            f"{r.recall_at_1:>7.4f} {r.recall_at_1_real:>8.4f} {r.recall_at_10:>7.4f} "
            f"{r.qps_single:>9,.0f} {r.qps_single / e.qps_single:>7.1f}x {r.p50_ms:>7.3f} "
            f"{r.p99_ms:>7.3f} {r.qps_batch:>9,.0f} {r.qps_batch / e.qps_batch:>7.1f}x "
            f"{r.build_s:>8.1f} {r.memory_mb:>7,.0f} {opt(r.file_mb, ',.0f'):>7} {opt(r.save_s, '.2f'):>6} "
            f"{opt(r.load_s, '.2f'):>6} {opt(r.mmap_load_s, '.3f'):>6} "
            f"{opt(r.ms_at_growth_ef, '.3f'):>7}"
        )


def plot(results: list[Result], path: Path) -> None:
    """Query time against N (log-log), and recall@1 against batched q/s at the largest N swept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.6))
    main_rows = [r for r in results if not r.variant]
    labels = dict.fromkeys(
        [r.method for r in main_rows] + [f"{r.method} {stored_as(r)}" for r in results if r.variant]
    )
    colour = {label: f"C{i}" for i, label in enumerate(labels)}
    for method in dict.fromkeys(r.method for r in main_rows):
        rs = sorted((r for r in main_rows if r.method == method), key=lambda r: r.n)
        ns = [r.n for r in rs]
        a.plot(ns, [1e3 / r.qps_single for r in rs], "o-", color=colour[method], label=method)
        fixed = [(r.n, r.ms_at_growth_ef, r.growth_ef) for r in rs if r.ms_at_growth_ef]
        if fixed and method != "exact":
            a.plot(
                [f[0] for f in fixed],
                [f[1] for f in fixed],
                "s--",
                color=colour[method],
                markersize=4,
                label=f"{method}, ef={fixed[0][2]}",
            )
        b.plot(ns, [r.qps_batch for r in rs], "o-", color=colour[method], label=method)
    a.set(
        xscale="log",
        yscale="log",
        xlabel="faces in the gallery (N)",
        ylabel="ms per query (one thread)",
        title="Single-query time: at recall@1 >= target (solid), fixed ef (dashed)",
    )
    b.set(
        xscale="log",
        yscale="log",
        xlabel="faces in the gallery (N)",
        ylabel="queries/s (batched, all cores)",
        title="Batched throughput",
    )
    swept = [r for r in results if r.sweep]
    if swept:
        n = (
            max(r.n for r in swept if r.n <= 100_000)
            if any(r.n <= 100_000 for r in swept)
            else max(r.n for r in swept)
        )
        for r in (r for r in swept if r.n == n):
            label = r.method + (f" {stored_as(r)}" if r.variant else "")
            c.plot(
                [p["qps_batch"] for p in r.sweep],
                [p["recall_at_1"] for p in r.sweep],
                "o-",
                color=colour[label],
                label=label,
                markersize=3,
            )
        c.set(
            xscale="log",
            xlabel="queries/s (batched)",
            ylabel="recall@1",
            title=f"Recall against throughput, N = {n:,} (ef swept)",
        )
    for ax in (a, b, c):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument(
        "--quick", action="store_true", help="N = 10,000 and 300 queries: about a minute"
    )
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=1000, help="half held-out real, half synthetic")
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, choices=list(CONTENDERS))
    ap.add_argument(
        "--pg-url",
        help="admin URL of a PostgreSQL server with pgvector for the pgvector contenders "
        "(default: a throwaway pgserver; its database index_bench is dropped and re-created)",
    )
    ap.add_argument("--M", type=int, default=None, help="graph degree (default: facesearch's)")
    ap.add_argument("--ef-construction", type=int, default=None)
    ap.add_argument("--ef", type=int, default=None, help="fixed search breadth instead of a sweep")
    ap.add_argument(
        "--growth-ef",
        type=int,
        default=128,
        help="also time single queries at this ef at every N (0: skip)",
    )
    ap.add_argument(
        "--target", type=float, default=0.995, help="recall@1 the operating point needs"
    )
    ap.add_argument(
        "--full-sweep", action="store_true", help="sweep every ef, not just up to the target"
    )
    ap.add_argument(
        "--variants",
        nargs="*",
        default=["f32", "f16"],
        help="facesearch with other storage types, for comparison (N <= --variants-max-n): "
        "DTYPE[+rrK][+proj] (re-rank depth K, 0: none; +proj: on the model's subspace, else on "
        "full vectors), e.g. i8+rr16 f16+rr0 f16+rr16+proj",
    )
    ap.add_argument("--variants-max-n", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=CACHE / "index_bench")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path, default=Path("out/index_growth.png"))
    ap.add_argument(
        "--replot", type=Path, metavar="JSON", help="redraw the plot and table from a --json file"
    )
    args = ap.parse_args()
    if args.replot:
        doc = json.loads(args.replot.read_text())
        old = [Result(**r) for r in doc["results"] + doc.get("variants", [])]
        print_table(old)
        plot(old, args.plot)
        print(f"growth plot: {args.plot}")
        return 0
    if args.worker:
        print(json.dumps(asdict(worker(json.loads(args.worker)))))
        return 0
    if args.quick:
        args.n, args.queries = [10_000], 300
    if args.M is None or args.ef_construction is None:
        from facesearch.gallery.index import params_for_cpu

        args.M = args.M or params_for_cpu().connectivity
        args.ef_construction = args.ef_construction or params_for_cpu().expansion_add
    missing = [m for m in args.methods if not available(m, args.pg_url)]
    for m in missing:
        hint = (
            "pip install -e '.[test]' or --pg-url"
            if m in PG_METHODS
            else "pip install -e '.[bench]'"
        )
        print(f"note: {m} is not installed ({hint}); left out")
    args.methods = [m for m in args.methods if m not in missing]
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    real = real_embeddings()
    print(
        f"{len(real):,} real lfw_dev embeddings; {os.cpu_count()} cores; target recall@1 {args.target}"
    )
    from facesearch.gallery.index import params_for_cpu

    project = model_subspace().shape[1]
    print(f"facesearch's index here: {params_for_cpu(project=project).choice}")
    args.pg, versions = None, {}
    if any(m in PG_METHODS for m in args.methods):
        if args.pg_url:
            args.pg = PgServer.external(args.pg_url)
        else:
            args.pg = PgServer.start(Path(tempfile.mkdtemp(prefix="index-bench-pg-")))
        versions["postgresql"], versions["pgvector"] = args.pg.versions()
        print(f"PostgreSQL {versions['postgresql']}, pgvector {versions['pgvector']}")
    results: list[Result] = []
    try:
        for n in args.n:
            results += bench_n(args, real, n)
    finally:
        if args.pg is not None:
            args.pg.stop()
    print_table(results)
    for r in results:
        if r.method in PG_METHODS:
            print(
                f"{r.method} at {r.n:,}: COPY into the table {r.copy_s:.1f}s (not in build s), "
                f"table {r.table_mb:,.0f} MB, index {r.file_mb:,.0f} MB on disk"
            )
    print(
        "\nR@1: top-1 is the exact nearest (ties count); R@10: share of the exact top 10 returned. "
        "q/s 1 thr: one query per call, one thread; batch: all queries in one call, all cores. "
        "mem: resident growth of a process that opened the saved index and ran the queries one by one "
        "(exact: the vectors). +rrK: graph on compressed vectors, best K re-ranked with exact ones. "
        "mmap: memory-mapped open. ms@gef: ms per single query at the fixed --growth-ef "
        "(exact: its single-query time). pgvector: build = CREATE INDEX over the filled table; "
        "file = the index's relation; mem = growth of the server's memory (PSS of all its "
        "processes, restarted cold before the single queries) plus the client's; batch = one "
        "connection per core, pipelined."
    )
    if args.plot:
        plot(results, args.plot)
        print(f"growth plot: {args.plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "results": [asdict(r) for r in results if not r.variant],
            "variants": [asdict(r) for r in results if r.variant],
            "target": args.target,
            "cores": os.cpu_count(),
            "versions": versions,
        }
        args.json.write_text(json.dumps(doc, indent=1))
        print(f"json: {args.json}")
    print(f"total {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
