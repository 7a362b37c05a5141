"""The product on a large gallery: open, identify, enroll one more person, remove one, info.

Builds a gallery of ``--n`` faces through the library (no photos to detect): lfw_dev's real
embeddings under their people's names, padded with synthetic face-like vectors (a Gaussian fitted
to the real ones, normalised; 5 faces per synthetic person). Then, each in a fresh process, as a
user would run them:

- open the gallery read-only (a directory's index is memory-mapped; a database is connected to)
  and answer searches of one face each (k_people=3, the default breadth): the first, then the
  mean, p50 and p95 of the next 100;
- ``facesearch identify`` on a group photo (wall time, models loaded included);
- ``facesearch enroll`` of one new person folder: the index takes the new faces incrementally
  (no rebuild: the index file grows, or pgvector inserts them into its graph);
- ``facesearch remove`` of that person; ``facesearch info``.

The gallery is a directory, or a PostgreSQL database with pgvector: ``--gallery
postgresql://...`` (an existing one, or an empty database to fill), or ``--postgres``, a throwaway
pgserver (PostgreSQL 16 + pgvector; shared_buffers 1GB) in a temporary directory. A database is
filled in one ``bulk_load`` (the rows first, the HNSW index built once with the gallery's default
parameters and maintenance_work_mem = 1GB, so that the graph is built in memory). A new gallery
indexes each face's coordinates in the model's 64-d subspace, as one ``enroll`` creates does;
``--full-vectors`` builds it on the full 512-d vectors instead, for a before/after;
``--then-project`` ends with ``facesearch reindex --project on`` (what an earlier gallery needs to
get the subspace index) and the searches again.

``--processes P`` also times P processes searching the gallery at once against one alone: each
opens it, waits until all are ready, then searches one face at a time for ``--seconds``.

    python benchmarks/large_gallery.py [--n 1000000] [--gallery DIR | URL | --postgres] [--keep]
        [--processes 4 --seconds 20] [--full-vectors [--then-project]]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from index_bench import PG_BUILD_MEMORY, FaceLike, model_subspace, real_embeddings

from _common import FACES, REPO, PgServer, use_shared_models

OPEN_AND_SEARCH = """
import sys, time, numpy as np
t = time.perf_counter()
from facesearch.gallery import open_gallery
g = open_gallery(sys.argv[1], sys.argv[2], 512)
opened = time.perf_counter() - t
q = np.load(sys.argv[3])
t = time.perf_counter()
g.search(q[:1], 3)
first = time.perf_counter() - t
times = []
for row in q[1:]:
    t = time.perf_counter()
    g.search(row[None], 3)
    times.append(time.perf_counter() - t)
rest = sum(times) / len(times)
view = g.index.view if hasattr(g, "index") else "-"
print(opened, first, rest, view, np.percentile(times, 50), np.percentile(times, 95))
"""

# one of --processes searchers: opens the gallery, says it is ready, waits for "go", then searches
# one face at a time for the given seconds; prints its count and latencies (JSON)
SEARCHER = """
import json, sys, time, numpy as np
from facesearch.gallery import open_gallery
g = open_gallery(sys.argv[1], sys.argv[2], 512)
q = np.load(sys.argv[3])
offset, seconds = int(sys.argv[4]), float(sys.argv[5])
for row in q[:10]:
    g.search(row[None], 3)
print("ready", flush=True)
sys.stdin.readline()
times, start = [], time.perf_counter()
while time.perf_counter() - start < seconds:
    row = q[(offset + len(times)) % len(q)]
    t = time.perf_counter()
    g.search(row[None], 3)
    times.append(time.perf_counter() - t)
wall = time.perf_counter() - start
print(json.dumps({"searches": len(times), "wall": wall, "times": times}))
"""


def build(gallery: str | Path, n: int, model_id: str, full_vectors: bool = False) -> float:
    from _common import LFW_DEV
    from facesearch.evaluation.evalset import load_eval_set
    from facesearch.gallery import is_postgres_url, open_gallery
    from facesearch.types import FaceRecord

    real = real_embeddings()
    es = load_eval_set(LFW_DEV)
    from facesearch import FaceSearch
    from facesearch.evaluation.protocols import default_cache_dir, embed_subjects

    emb = embed_subjects(es, FaceSearch("/nonexistent-unused-gallery"), default_cache_dir())
    names = [es.people[es.person_of[i]] for i in np.flatnonzero(emb.found)]
    fake = FaceLike(real, 1)
    t = time.perf_counter()
    pg = is_postgres_url(gallery)
    if pg:  # the index is built once at the end of bulk_load: let the graph fit in memory
        os.environ["PGOPTIONS"] = f"-c maintenance_work_mem={PG_BUILD_MEMORY}"
    # a new gallery indexes the model's subspace coordinates, as enroll's does
    subspace = None if full_vectors else model_subspace
    g = open_gallery(gallery, model_id, real.shape[1], writable=True, subspace=subspace)
    with g, g.bulk_load():
        g.add(
            [
                FaceRecord(name, f"lfw/{i}", f"real-{i}", (0, 0, 1, 1), 1.0, v)
                for i, (name, v) in enumerate(zip(names, real))
            ]
        )
        done, batch = len(real), 50_000
        while done < n:
            m = min(batch, n - done)
            vecs = fake.sample(m)
            g.add(
                [
                    FaceRecord(
                        f"synthetic-{(done + j) // 5}",
                        f"syn/{done + j}",
                        f"syn-{done + j}",
                        (0, 0, 1, 1),
                        1.0,
                        v,
                    )
                    for j, v in enumerate(vecs)
                ]
            )
            done += m
            print(f"  {done:,} faces ({time.perf_counter() - t:.0f}s)", flush=True)
    os.environ.pop("PGOPTIONS", None)
    return time.perf_counter() - t


def has_gallery(gallery: str | Path, model_id: str) -> bool:
    """Whether ``gallery`` already holds faces (a directory's database, or a database's table)."""
    from facesearch.errors import GalleryError
    from facesearch.gallery import is_postgres_url, open_gallery

    if not is_postgres_url(gallery):
        return (Path(gallery) / "gallery.sqlite3").exists()
    try:
        with open_gallery(gallery, model_id, 512) as g:
            return g.count_faces() > 0
    except GalleryError:
        return False


def concurrent_searches(
    gallery: str, model_id: str, queries: Path, processes: int, seconds: float
) -> dict:
    """``processes`` fresh processes searching ``gallery`` at once, one face at a time each."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SEARCHER, gallery, model_id, str(queries)]
            + [str(i * 997), str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    for p in procs:
        if p.stdout.readline().strip() != "ready":  # type: ignore[union-attr]
            raise SystemExit(f"a searcher failed to open {gallery}")
    for p in procs:
        p.stdin.write("go\n")  # type: ignore[union-attr]
        p.stdin.flush()  # type: ignore[union-attr]
    outs = [json.loads(p.communicate()[0]) for p in procs]
    times = np.concatenate([o["times"] for o in outs])
    per = [o["searches"] / o["wall"] for o in outs]
    return {
        "per_process": per,
        "total": sum(per),
        "p50_ms": float(np.percentile(times, 50) * 1e3),
        "p95_ms": float(np.percentile(times, 95) * 1e3),
    }


def timed_searches(gallery: str, model_id: str, queries: Path) -> tuple[str, str]:
    """(how long a fresh process took to open the gallery, its first and next searches)."""
    _, out = run([sys.executable, "-c", OPEN_AND_SEARCH, gallery, model_id, str(queries)])
    opened, first, rest, view, p50, p95 = out.split()
    pg = gallery.startswith(("postgresql://", "postgres://"))
    return (
        f"{float(opened) * 1e3:.0f} ms"
        + (" (a connection)" if pg else f" (memory-mapped: {view})"),
        f"{float(first) * 1e3:.1f} ms / {float(rest) * 1e3:.2f} ms "
        f"(p50 {float(p50) * 1e3:.2f}, p95 {float(p95) * 1e3:.2f} ms)",
    )


def run(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return secs, proc.stdout


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument(
        "--gallery",
        help="reuse (or create) this gallery: a directory, or a postgresql:// database URL",
    )
    ap.add_argument(
        "--postgres",
        action="store_true",
        help="a PostgreSQL gallery in a throwaway pgserver (PostgreSQL 16 + pgvector)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the gallery afterwards")
    ap.add_argument(
        "--full-vectors",
        action="store_true",
        help="build the new gallery's index on the full 512-d vectors (as before the subspace)",
    )
    ap.add_argument(
        "--then-project",
        action="store_true",
        help="at the end, time facesearch reindex --project on and the searches after it",
    )
    ap.add_argument(
        "--processes", type=int, default=0, help="also time this many processes searching at once"
    )
    ap.add_argument("--seconds", type=float, default=20.0, help="each --processes run's length")
    args = ap.parse_args()
    use_shared_models()
    from facesearch.embedding import FaceEmbedder
    from facesearch.gallery import is_postgres_url

    model_id = FaceEmbedder().model_id
    tmp = server = None
    if args.gallery is None:
        tmp = Path(tempfile.mkdtemp(prefix="large-gallery-", dir=REPO / ".cache"))
        if args.postgres:
            server = PgServer.start(Path(tempfile.mkdtemp(prefix="large-gallery-pg-")))
            args.gallery = server.database("large_gallery")
        else:
            args.gallery = str(tmp / "gallery")
    pg = is_postgres_url(args.gallery)
    fs_cmd = [sys.executable, "-m", "facesearch.cli", "--gallery", str(args.gallery)]
    rows: list[tuple[str, str]] = []
    try:
        if not has_gallery(args.gallery, model_id):
            print(f"building a {args.n:,}-face gallery in {args.gallery}", flush=True)
            secs = build(args.gallery, args.n, model_id, args.full_vectors)
            what = "PostgreSQL + pgvector HNSW, bulk load" if pg else "SQLite + HNSW index"
            rows.append((f"build ({what}, library API)", f"{secs:.0f} s"))
        _, out = run(fs_cmd + ["info", "--json"])
        info = json.loads(out)
        rows.append(("faces / people", f"{info['faces']:,} / {info['people']:,}"))
        rows.append(("index", ", ".join(f"{k}={v}" for k, v in info["index"].items())))
        if pg:
            server_info = info["server"]
            rows.append(
                (
                    "server",
                    f"PostgreSQL {server_info['postgresql']}, database "
                    f"{server_info['database_bytes'] / 2**20:,.0f} MB, index "
                    f"{info['index']['memory_bytes'] / 2**20:,.0f} MB",
                )
            )
        else:
            files = info["files"]
            rows.append(
                ("files", ", ".join(f"{k} {v / 2**20:,.0f} MB" for k, v in files.items() if v))
            )
        queries = Path(tempfile.mkdtemp()) / "q.npy"
        np.save(queries, FaceLike(real_embeddings(), 7).sample(101))
        opened, searches = timed_searches(args.gallery, model_id, queries)
        rows.append(("open read-only (fresh process)", opened))
        rows.append(("first search / next ones", searches))
        if args.processes:
            many = Path(tempfile.mkdtemp()) / "q.npy"
            np.save(many, FaceLike(real_embeddings(), 8).sample(5000))
            for procs in dict.fromkeys([1, args.processes]):
                r = concurrent_searches(args.gallery, model_id, many, procs, args.seconds)
                rows.append(
                    (
                        f"{procs} process{'es' if procs > 1 else ''} searching at once "
                        f"({os.cpu_count()} cores)",
                        f"{r['total']:.0f} searches/s in all ("
                        + ", ".join(f"{x:.0f}" for x in r["per_process"])
                        + f" per process), p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms",
                    )
                )
        photo = FACES / "bbt" / "group" / sorted(os.listdir(FACES / "bbt" / "group"))[0]
        secs, out = run(fs_cmd + ["identify", str(photo)])
        rows.append(
            (f"facesearch identify {photo.name} (cold CLI, models included)", f"{secs:.1f} s")
        )
        index_file = None if pg else Path(args.gallery) / "faces.usearch"
        before = None if index_file is None else index_file.stat().st_mtime
        person = Path(tempfile.mkdtemp()) / "Newcomer"
        shutil.copytree(
            FACES / "celebrity5" / "train" / sorted(os.listdir(FACES / "celebrity5" / "train"))[0],
            person,
        )
        secs, _ = run(fs_cmd + ["enroll", str(person.parent)])
        _, out = run(fs_cmd + ["info", "--json"])
        after = json.loads(out)
        saved = (
            "inserted into pgvector's graph"
            if index_file is None
            else f"saved again: {index_file.stat().st_mtime != before}"
        )
        rows.append(
            (
                f"facesearch enroll 1 person ({after['faces'] - info['faces']} photos)",
                f"{secs:.1f} s (index {info['index']['size']:,} -> {after['index']['size']:,}, "
                f"{saved})",
            )
        )
        secs, _ = run(fs_cmd + ["remove", "Newcomer"])
        rows.append(("facesearch remove 1 person", f"{secs:.1f} s"))
        secs, _ = run(fs_cmd + ["info"])
        rows.append(("facesearch info", f"{secs:.1f} s"))
        if args.then_project:
            secs, _ = run(fs_cmd + ["reindex", "--project", "on"])
            rows.append(("facesearch reindex --project on", f"{secs:.1f} s"))
            rows.append(
                (
                    "first search / next ones, after",
                    timed_searches(args.gallery, model_id, queries)[1],
                )
            )
    finally:
        if server is not None:  # a throwaway server goes, --keep or not
            server.stop()
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
