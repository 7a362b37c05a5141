"""The product on a large gallery: open, identify, enroll one more person, remove one, info.

Builds a gallery of ``--n`` faces through the library (no photos to detect): lfw_dev's real
embeddings under their people's names, padded with synthetic face-like vectors (a Gaussian fitted
to the real ones, normalised; 5 faces per synthetic person). Then, each in a fresh process, as a
user would run them:

- open the gallery read-only (the index is memory-mapped) and answer one search;
- ``facesearch identify`` on a group photo (wall time, models loaded included);
- ``facesearch enroll`` of one new person folder: the index takes the new faces incrementally
  (no rebuild: the index file grows, it is not rebuilt from the database);
- ``facesearch remove`` of that person; ``facesearch info``.

    python benchmarks/large_gallery.py [--n 1000000] [--gallery DIR] [--keep]
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
from index_bench import FaceLike, real_embeddings

from _common import FACES, REPO, use_shared_models

OPEN_AND_SEARCH = """
import sys, time, numpy as np
t = time.perf_counter()
from facesearch.gallery import Gallery
g = Gallery(sys.argv[1], sys.argv[2], 512)
opened = time.perf_counter() - t
q = np.load(sys.argv[3])
t = time.perf_counter()
g.search(q[:1], 3)
first = time.perf_counter() - t
t = time.perf_counter()
for row in q[1:]:
    g.search(row[None], 3)
rest = (time.perf_counter() - t) / (len(q) - 1)
print(opened, first, rest, g.index.view)
"""


def build(gallery: Path, n: int, model_id: str) -> float:
    from _common import LFW_DEV
    from facesearch.evaluation.evalset import load_eval_set
    from facesearch.gallery import Gallery
    from facesearch.types import FaceRecord

    real = real_embeddings()
    es = load_eval_set(LFW_DEV)
    from facesearch import FaceSearch
    from facesearch.evaluation.protocols import default_cache_dir, embed_subjects

    emb = embed_subjects(es, FaceSearch("/nonexistent-unused-gallery"), default_cache_dir())
    names = [es.people[es.person_of[i]] for i in np.flatnonzero(emb.found)]
    fake = FaceLike(real, 1)
    t = time.perf_counter()
    with Gallery(gallery, model_id, real.shape[1], writable=True) as g:
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
    return time.perf_counter() - t


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
    ap.add_argument("--gallery", type=Path, help="reuse (or create) this gallery directory")
    ap.add_argument("--keep", action="store_true", help="keep the gallery afterwards")
    args = ap.parse_args()
    use_shared_models()
    from facesearch.embedding import FaceEmbedder

    model_id = FaceEmbedder().model_id
    tmp = None
    if args.gallery is None:
        tmp = Path(tempfile.mkdtemp(prefix="large-gallery-", dir=REPO / ".cache"))
        args.gallery = tmp / "gallery"
    fs_cmd = [sys.executable, "-m", "facesearch.cli", "--gallery", str(args.gallery)]
    rows: list[tuple[str, str]] = []
    try:
        if not (args.gallery / "gallery.sqlite3").exists():
            print(f"building a {args.n:,}-face gallery in {args.gallery}", flush=True)
            secs = build(args.gallery, args.n, model_id)
            rows.append(("build (SQLite + HNSW index, library API)", f"{secs:.0f} s"))
        _, out = run(fs_cmd + ["info", "--json"])
        info = json.loads(out)
        files = info["files"]
        rows.append(("faces / people", f"{info['faces']:,} / {info['people']:,}"))
        rows.append(("index", ", ".join(f"{k}={v}" for k, v in info["index"].items())))
        rows.append(("files", ", ".join(f"{k} {v / 2**20:,.0f} MB" for k, v in files.items() if v)))
        queries = Path(tempfile.mkdtemp()) / "q.npy"
        np.save(queries, FaceLike(real_embeddings(), 7).sample(101))
        _, out = run(
            [sys.executable, "-c", OPEN_AND_SEARCH, str(args.gallery), model_id, str(queries)]
        )
        opened, first, rest, view = out.split()
        rows.append(
            (
                "open read-only (fresh process)",
                f"{float(opened) * 1e3:.0f} ms (memory-mapped: {view})",
            )
        )
        rows.append(
            (
                "first search / next ones",
                f"{float(first) * 1e3:.1f} ms / {float(rest) * 1e3:.2f} ms",
            )
        )
        photo = FACES / "bbt" / "group" / sorted(os.listdir(FACES / "bbt" / "group"))[0]
        secs, out = run(fs_cmd + ["identify", str(photo)])
        rows.append(
            (f"facesearch identify {photo.name} (cold CLI, models included)", f"{secs:.1f} s")
        )
        index_file = args.gallery / "faces.usearch"
        before = index_file.stat().st_mtime
        person = Path(tempfile.mkdtemp()) / "Newcomer"
        shutil.copytree(
            FACES / "celebrity5" / "train" / sorted(os.listdir(FACES / "celebrity5" / "train"))[0],
            person,
        )
        secs, _ = run(fs_cmd + ["enroll", str(person.parent)])
        _, out = run(fs_cmd + ["info", "--json"])
        after = json.loads(out)
        rows.append(
            (
                f"facesearch enroll 1 person ({after['faces'] - info['faces']} photos)",
                f"{secs:.1f} s (index {info['index']['size']:,} -> {after['index']['size']:,}, "
                f"saved again: {index_file.stat().st_mtime != before})",
            )
        )
        secs, _ = run(fs_cmd + ["remove", "Newcomer"])
        rows.append(("facesearch remove 1 person", f"{secs:.1f} s"))
        secs, _ = run(fs_cmd + ["info"])
        rows.append(("facesearch info", f"{secs:.1f} s"))
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
