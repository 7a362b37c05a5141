"""A directory gallery (SQLite + usearch) beside a PostgreSQL one (pgvector), same vectors.

``--n`` synthetic unit vectors (512-d, 5 faces per person) are added through the library in
batches of 1000; then ``--queries`` single-face searches (``Gallery.search``, k_people=3, the
default breadth) are timed one at a time, and recall@1 of the nearest person is compared with an
exact scan. PostgreSQL is a throwaway pgserver (a local Unix socket) unless ``--url`` is given.
With ``--opclass`` both pgvector operator classes are built and searched on the same data;
``--migrate`` times ``facesearch.gallery.migrate`` from the directory into a new database and back.

    OMP_NUM_THREADS=1 python benchmarks/pg_bench.py --n 10000 --queries 200 --opclass --migrate
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from facesearch.gallery import open_gallery
from facesearch.gallery.index import IndexParams
from facesearch.types import FaceRecord

MODEL, DIM = "bench", 512


def synthetic(n: int, seed: int = 0) -> tuple[list[FaceRecord], np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 5 + 1, DIM)).astype(np.float32)
    v = centres[np.arange(n) // 5] + 0.9 * rng.standard_normal((n, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    recs = [
        FaceRecord(f"p{i // 5}", f"p{i // 5}/{i}.jpg", f"h{i}", (0, 0, 1, 1), 0.9, v[i])
        for i in range(n)
    ]
    return recs, v


def fill(location: str, recs: list[FaceRecord], params: IndexParams | None = None) -> float:
    t = time.perf_counter()
    with open_gallery(location, MODEL, DIM, writable=True, params=params) as g:
        for s in range(0, len(recs), 1000):
            g.add(recs[s : s + 1000])
    return time.perf_counter() - t


def timed_search(location: str, queries: np.ndarray) -> tuple[list[str], float]:
    with open_gallery(location, MODEL, DIM) as g:
        g.search(queries[:1], k_people=3)  # warm
        names, t = [], time.perf_counter()
        for q in queries:
            hits = g.search(q[None], k_people=3)[0]
            names.append(hits[0].name if hits else "")
        return names, (time.perf_counter() - t) / len(queries)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--url", help="admin URL of a PostgreSQL server with pgvector")
    ap.add_argument("--opclass", action="store_true", help="also time vector_cosine_ops")
    ap.add_argument("--m", type=int, help="pgvector HNSW m (default: the gallery's)")
    ap.add_argument("--ef-construction", type=int, help="pgvector HNSW ef_construction")
    ap.add_argument("--skip-directory", action="store_true", help="time PostgreSQL only")
    ap.add_argument(
        "--migrate",
        action="store_true",
        help="also time migrate: directory -> new database -> back",
    )
    args = ap.parse_args()

    recs, v = synthetic(args.n)
    rng = np.random.default_rng(1)
    queries = v[rng.choice(args.n, args.queries, replace=False)] + 0.05 * rng.standard_normal(
        (args.queries, DIM)
    ).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    owners = np.array([r.person for r in recs])
    truth = owners[np.argmax(queries @ v.T, axis=1)]  # nearest face's owner, exact

    tmp = Path(tempfile.mkdtemp())
    server = None
    admin = args.url
    if admin is None:
        import pgserver

        server = pgserver.get_server(tmp / "pgdata", cleanup_mode="delete")
        admin = server.get_uri()
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS facesearch_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE facesearch_bench")
    from urllib.parse import urlsplit

    url = urlsplit(admin)._replace(path="/facesearch_bench").geturl()
    pg_params = None
    if args.m or args.ef_construction:
        d = IndexParams()
        pg_params = IndexParams(
            connectivity=args.m or d.connectivity,
            expansion_add=args.ef_construction or d.expansion_add,
        )
    runs = [("directory (usearch)", str(tmp / "g"), None), ("postgres (pgvector)", url, pg_params)]
    for name, location, params in runs[1:] if args.skip_directory and not args.migrate else runs:
        fill_s = fill(location, recs, params)
        names, per_query = timed_search(location, queries)
        recall = float(np.mean(np.array(names) == truth))
        print(
            f"{name:<22} n={args.n} add {fill_s:6.1f}s ({args.n / fill_s:7.0f} faces/s)"
            f"  search {per_query * 1e3:6.2f} ms/query  person recall@1 vs exact {recall:.3f}"
        )
    if args.opclass:
        with psycopg.connect(url, autocommit=True) as conn:
            for opclass in ("vector_ip_ops", "vector_cosine_ops"):
                conn.execute("DROP INDEX IF EXISTS faces_embedding")
                t = time.perf_counter()
                conn.execute(
                    "CREATE INDEX faces_embedding ON faces USING hnsw (embedding "
                    + opclass  # one of two fixed names
                    + ") WITH (m = 32, ef_construction = 128)"
                )
                build = time.perf_counter() - t
                op = "<#>" if opclass == "vector_ip_ops" else "<=>"
                sql = f"SELECT id FROM faces ORDER BY embedding {op} %s::vector LIMIT 64"
                conn.execute("SET hnsw.ef_search = 64")
                t = time.perf_counter()
                for q in queries:
                    conn.execute(sql, (q.tolist(),)).fetchall()
                per = (time.perf_counter() - t) / len(queries)
                print(f"  {opclass:<18} build {build:5.1f}s  64 nearest faces {per * 1e3:5.2f} ms")
            conn.execute("DROP INDEX IF EXISTS faces_embedding")
            conn.execute(
                "CREATE INDEX faces_embedding ON faces USING hnsw (embedding vector_ip_ops)"
                " WITH (m = 32, ef_construction = 128)"
            )
    if args.migrate:
        from facesearch.gallery.migrate import migrate

        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS facesearch_bench_copy WITH (FORCE)")
            conn.execute("CREATE DATABASE facesearch_bench_copy")
        copy_url = urlsplit(admin)._replace(path="/facesearch_bench_copy").geturl()
        for what, src, dst in (
            ("directory -> empty database", str(tmp / "g"), copy_url),
            ("database -> new directory", copy_url, str(tmp / "back")),
            ("re-run directory -> database", str(tmp / "g"), copy_url),
        ):
            t = time.perf_counter()
            report = migrate(src, dst, MODEL, DIM)
            print(
                f"migrate {what:<29} {report.copied:6d} copied {report.skipped:6d} skipped"
                f" in {time.perf_counter() - t:5.1f}s"
            )
    if server is not None:
        server.cleanup()


if __name__ == "__main__":
    main()
