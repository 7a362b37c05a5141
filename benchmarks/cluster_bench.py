"""Clustering unknown faces: facesearch's method against Immich's DBSCAN-like rule and HDBSCAN.

Data: every face of every photo of ``../shared/faces/lfw_dev`` (detected and embedded once as
``scan`` would, cached in ``.cache/``). A photo's identity is its folder, counted on the face at
the centre of the photo; its other faces are clustered too but not scored. For time, a 100k-face
synthetic set: lfw_dev's real embeddings plus face-like vectors around synthetic people.

Scores on the centre faces (an unclustered face counts as a cluster of its own):
pairwise precision/recall (pairs of faces put together / truly together), BCubed
precision/recall/F, ``right``: the share of photos of people with >= 2 photos whose face ends in
a cluster whose most common identity is theirs (with at least one other photo of them), and
``stranger_in``: the share of one-photo people's faces put in any cluster.

Contenders, each with its parameters chosen the same way (the best BCubed F with pairwise
precision >= 0.99 on a grid; ``--grid`` prints every point):

(a) ``dbscan``: the rule Immich uses (a face with >= min-faces neighbours within a distance
    starts or joins a person; density-connected faces share one), i.e. DBSCAN with cosine
    distance and min_samples = 3. Immich's default distance, 0.5, is on its ArcFace model's
    scale; on FaceNet's the same number is reported beside the tuned one.
(b) ``hdbscan``: scikit-learn's HDBSCAN on the unit vectors (Euclidean, monotonic in cosine).
(c) ``facesearch``: ``facesearch.library.cluster.FaceClusterer``.

    python benchmarks/cluster_bench.py [--grid] [--n-time 100000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import CACHE, LFW_DEV, use_shared_models  # noqa: E402

MIN_FACES = 3


# -- data ---------------------------------------------------------------------------------------


def lfw_faces() -> dict[str, np.ndarray]:
    """All faces of all lfw_dev photos: vectors, photo index, identity, and centre-face flag."""
    cache = CACHE / "cluster_bench_lfw_faces.npz"
    if cache.is_file():
        with np.load(cache) as data:
            return dict(data)
    use_shared_models()
    from facesearch import FaceSearch
    from facesearch.images import iter_files, prefetch_images

    people = sorted(d for d in LFW_DEV.iterdir() if d.is_dir())
    paths, who = [], []
    for k, d in enumerate(people):
        for p in iter_files(d):
            paths.append(p)
            who.append(k)
    fs = FaceSearch("/nonexistent-unused-gallery")
    vectors, photo, identity, centre = [], [], [], []
    t0 = time.perf_counter()
    for i, img in enumerate(prefetch_images(paths)):
        if isinstance(img, Exception):
            continue
        faces = fs.detect(img)
        if not len(faces):
            continue
        v = fs.embed_faces(img, faces)
        w, h = img.size
        cx = (faces.boxes[:, 0] + faces.boxes[:, 2]) / 2 - w / 2
        cy = (faces.boxes[:, 1] + faces.boxes[:, 3]) / 2 - h / 2
        mid = int(np.argmin(np.hypot(cx, cy)))
        vectors.append(v)
        photo += [i] * len(v)
        identity += [who[i]] * len(v)
        centre += [j == mid for j in range(len(v))]
        if i % 500 == 0:
            print(f"  scanned {i}/{len(paths)} photos ({time.perf_counter() - t0:.0f} s)")
    data = {
        "vectors": np.concatenate(vectors).astype(np.float32),
        "photo": np.array(photo),
        "identity": np.array(identity),
        "centre": np.array(centre),
    }
    CACHE.mkdir(exist_ok=True)
    np.savez(cache, **data)
    return data


def synthetic(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors: ``real`` plus synthetic people (6 faces each, spread like real ones).

    Each face is its person's centre plus noise of length ~0.55 within the span of the real
    embeddings (about 51 of 512 dimensions: FaceNet's output layer produces nothing outside it,
    ``FaceEmbedder.subspace``), so synthetic faces, like real ones, lie in that span."""
    from index_bench import FaceLike

    rng = np.random.default_rng(seed)
    extra = n - len(real)
    centres = FaceLike(real, seed).sample(extra // 6 + 1)
    values, vectors = np.linalg.eigh(real.T.astype(np.float64) @ real)
    span = vectors[:, values > 1e-6 * values[-1]].astype(np.float32)  # (512, ~51)
    noise = rng.standard_normal((extra, span.shape[1])).astype(np.float32) @ span.T
    v = centres[np.arange(extra) // 6] + 0.55 * noise / np.sqrt(span.shape[1])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return np.concatenate([real, v.astype(np.float32)])


# -- scores ---------------------------------------------------------------------------------------


def scores(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pairwise and BCubed precision/recall on faces with known identity (labels -1: singletons)."""
    labels = labels.copy()
    single = labels < 0
    labels[single] = labels.max(initial=-1) + 1 + np.arange(single.sum())
    _, lab = np.unique(labels, return_inverse=True)
    _, tru = np.unique(truth, return_inverse=True)
    # contingency counts n_ct of (cluster, identity)
    joint = lab.astype(np.int64) * (tru.max() + 1) + tru
    _, n_ct = np.unique(joint, return_counts=True)
    n_c = np.bincount(lab)
    n_t = np.bincount(tru)
    pairs = lambda x: float((x * (x - 1) // 2).sum())  # noqa: E731
    together, predicted, actual = pairs(n_ct), pairs(n_c), pairs(n_t)
    # BCubed: per face, share of its cluster with its identity, share of its identity in its cluster
    ct = dict(zip(joint.tolist(), [0] * len(joint)))
    for key, c in zip(*np.unique(joint, return_counts=True)):
        ct[int(key)] = int(c)
    same = np.array([ct[int(j)] for j in joint], np.float64)
    bp = float(np.mean(same / n_c[lab]))
    br = float(np.mean(same / n_t[tru]))
    return {
        "pair_precision": together / predicted if predicted else 1.0,
        "pair_recall": together / actual if actual else 1.0,
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_f": 2 * bp * br / (bp + br),
    }


def outcomes(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """``right`` (photos of repeat people in their own cluster) and ``stranger_in``."""
    photos_of = np.bincount(truth)
    repeat = photos_of[truth] >= 2
    right = np.zeros(len(labels), bool)
    for c in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == c)
        ids, counts = np.unique(truth[members], return_counts=True)
        top = ids[np.argmax(counts)]
        if counts.max() >= 2:
            right[members[truth[members] == top]] = True
    return {
        "right": float(right[repeat].mean()),
        "stranger_in": float((labels[~repeat] >= 0).mean()),
    }


# -- contenders -----------------------------------------------------------------------------------


def run_dbscan(v: np.ndarray, groups: np.ndarray, eps: float) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    return DBSCAN(eps=eps, min_samples=MIN_FACES, metric="cosine", algorithm="brute").fit(v).labels_


def run_hdbscan(v: np.ndarray, groups: np.ndarray, params: tuple[int, str]) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    # on unit vectors Euclidean distance is sqrt(2 * cosine distance): the same order
    min_samples, method = params
    model = HDBSCAN(
        min_cluster_size=MIN_FACES, min_samples=min_samples, cluster_selection_method=method
    )
    return model.fit(v).labels_


def run_facesearch(v: np.ndarray, groups: np.ndarray, params: tuple[float, float]) -> np.ndarray:
    from facesearch.library.cluster import FaceClusterer

    link, avg = params
    return FaceClusterer(link, avg, min_faces=MIN_FACES).fit(v, groups).labels_


GRIDS = {
    "dbscan": [0.14, 0.16, 0.18, 0.20, 0.22, 0.25, 0.28, 0.30, 0.34, 0.40, 0.50],
    "hdbscan": [(ms, m) for ms in (1, 2, 3, 5, 8) for m in ("eom", "leaf")],
    "facesearch": [(0.40, avg) for avg in (0.26, 0.28, 0.30, 0.32, 0.34, 0.36, 0.38, 0.40)],
}
RUNNERS = {"dbscan": run_dbscan, "hdbscan": run_hdbscan, "facesearch": run_facesearch}


def evaluate(name, param, data) -> dict:
    t0 = time.perf_counter()
    labels = RUNNERS[name](data["vectors"], data["photo"], param)
    seconds = time.perf_counter() - t0
    centre = data["centre"]
    row = {"method": name, "param": param, "seconds": round(seconds, 2)}
    row.update(scores(labels[centre], data["identity"][centre]))
    row.update(outcomes(labels[centre], data["identity"][centre]))
    row["clusters"] = int(len(np.unique(labels[labels >= 0])))
    return row


def _timed_child(name, param, path, out) -> None:
    v = np.load(path)
    t0 = time.perf_counter()
    RUNNERS[name](v, np.arange(len(v)), param)
    out.put(time.perf_counter() - t0)


def timed(name: str, param, v: np.ndarray, limit: float) -> float | None:
    """Seconds ``name`` takes on ``v`` in a fresh process, or None if over ``limit``."""
    import multiprocessing as mp
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.npy"
        np.save(path, v)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        proc = ctx.Process(target=_timed_child, args=(name, param, str(path), out))
        proc.start()
        proc.join(limit)
        if proc.is_alive():
            proc.terminate()
            proc.join()
            return None
        return out.get() if not out.empty() else None


def pick(rows: list[dict], floor: float = 0.99) -> dict:
    ok = [r for r in rows if r["pair_precision"] >= floor] or rows
    return max(ok, key=lambda r: r["bcubed_f"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", action="store_true", help="print every grid point")
    ap.add_argument("--n-time", type=int, default=100_000, help="faces in the timing set (0: skip)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--limit", type=int, default=600, help="seconds each timed run may take")
    args = ap.parse_args()
    data = lfw_faces()
    n, c = len(data["vectors"]), int(data["centre"].sum())
    print(
        f"lfw_dev: {n} faces in {len(np.unique(data['photo']))} photos, {c} centre faces, "
        f"{len(np.unique(data['identity']))} people"
    )
    best, everything = {}, []
    for name, grid in GRIDS.items():
        rows = [evaluate(name, p, data) for p in grid]
        everything += rows
        best[name] = pick(rows)
        if args.grid:
            for r in rows:
                print(fmt(r))
    from facesearch.library.cluster import FaceClusterer

    default = FaceClusterer()
    mine = evaluate("facesearch", (default.link_distance, default.average_distance), data)
    immich = evaluate("dbscan", 0.5, data)
    print("\nEach at its best BCubed F with pairwise precision >= 0.99 (lfw_dev):")
    print(HEADER)
    for name in GRIDS:
        print(fmt(best[name]))
    print(fmt({**mine, "method": "facesearch (its defaults)"}))
    print(fmt({**immich, "method": "dbscan (Immich's 0.5 as is)"}))
    timing: dict[str, float | None] = {}
    if args.n_time:
        v = synthetic(data["vectors"], args.n_time)
        print(
            f"\nTime to cluster {len(v):,} faces, each in its own process, {args.limit} s at most:"
        )
        for name in GRIDS:
            timing[name] = timed(name, best[name]["param"], v, args.limit)
            shown = f"{timing[name]:.1f} s" if timing[name] is not None else f"> {args.limit} s"
            print(f"  {name:<12} {shown}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"best": best, "immich_default": immich, "grid": everything, "time": timing},
                indent=2,
                default=str,
            )
        )


HEADER = (
    f"{'method':<28} {'param':<14} {'pairP':>6} {'pairR':>6} {'bcP':>6} {'bcR':>6} "
    f"{'bcF':>6} {'right':>6} {'strIn':>6} {'clus':>5} {'s':>6}"
)


def fmt(r: dict) -> str:
    p = r["param"]
    p = (
        "/".join(f"{x:g}" if isinstance(x, float) else str(x) for x in p)
        if isinstance(p, (tuple, list))
        else f"{p:g}"
    )
    return (
        f"{r['method']:<28} {p:<14} {r['pair_precision']:6.3f} {r['pair_recall']:6.3f} "
        f"{r['bcubed_precision']:6.3f} {r['bcubed_recall']:6.3f} {r['bcubed_f']:6.3f} "
        f"{r['right']:6.3f} {r['stranger_in']:6.3f} {r['clusters']:5d} {r['seconds']:6.1f}"
    )


if __name__ == "__main__":
    main()
