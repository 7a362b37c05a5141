"""Which crop, test-time augmentation and person scoring facesearch uses, and why: lfw_dev.

For each crop margin (output pixels at 160x160) the subject of every lfw_dev photo is embedded
with and without horizontal-flip TTA (faces are detected once). Reported per variant:
verification on the 1,800 LFW pairs (10-fold accuracy, best-threshold accuracy, EER, TAR at
FAR 1e-2) and open-set identification (first photo enrolled, one-photo people as strangers):
rank-1 and the share of known queries correctly named at stranger false-accept 0.5/1/2/5 %.
A second table compares ways to score a person enrolled with k photos (closest face, template =
normalised mean, the smaller of the two: facesearch's rule) on one population: people with >= 4
photos, queries = their 4th photo on, strangers = one-photo people. Cohort score normalisation
(gallery-as-cohort S-norm, and the top-1 minus top-20 gap) is in the first table's last rows.

    python benchmarks/accuracy_variants.py [--margins 14,24,32,40] [--precision auto]

About 70 s per margin on a 2-core CPU (bf16), plus 70 s of detection; results are cached in
.cache/. Differences below ~0.2 % verification accuracy are ~4 pairs: read the columns together.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from _common import CACHE, LFW_DEV, use_shared_models
from facesearch.evaluation import metrics
from facesearch.evaluation.evalset import load_eval_set, read_lfw_pairs
from facesearch.gallery.scoring import ExactScorer

FARS = (0.005, 0.01, 0.02, 0.05)


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def detect_subjects(paths) -> list[np.ndarray | None]:
    """The enrolled face (most prominent) box of every photo, cached."""
    import pickle

    cache = CACHE / "lfw_dev-subject-boxes.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    from facesearch.detection import FaceDetector, most_prominent
    from facesearch.images import load_image

    det, boxes = FaceDetector(), []
    for p in paths:
        img = load_image(p)
        faces = det.detect(img.image)
        boxes.append(faces.boxes[most_prominent(faces, img.size)] if len(faces) else None)
    CACHE.mkdir(exist_ok=True)
    cache.write_bytes(pickle.dumps(boxes))
    return boxes


def embed_variant(paths, boxes, margin: int, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """(plain, mirrored) unit embeddings for one crop margin, cached."""
    cache = CACHE / f"lfw_dev-m{margin}-{precision}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return z["plain"], z["mirrored"]
    import torch
    from facenet_pytorch.models.utils.detect_face import extract_face

    from facesearch.embedding import FaceEmbedder
    from facesearch.images import load_image

    emb = FaceEmbedder(precision=precision, flip=False).load()
    plain = np.zeros((len(paths), emb.dim), np.float32)
    mirrored = plain.copy()
    rows = [i for i, b in enumerate(boxes) if b is not None]
    for start in range(0, len(rows), 256):
        part = rows[start : start + 256]
        crops = torch.stack(
            [extract_face(load_image(paths[i]).image, boxes[i], 160, margin) for i in part]
        )
        crops = (crops - 127.5) / 128.0
        plain[part] = emb.embed(crops)
        mirrored[part] = emb.embed(torch.flip(crops, dims=[3]))
    np.savez(cache, plain=plain, mirrored=mirrored)
    return plain, mirrored


def open_set(v: np.ndarray, owner: np.ndarray, k: int, min_photos: int, scoring: str):
    """Known queries (photos after the first k of people with >= min_photos) and strangers."""
    gal, known, strangers = [], [], []
    for person in np.unique(owner):
        idx = np.flatnonzero(owner == person)
        if len(idx) == 1:
            strangers += idx.tolist()
        elif len(idx) >= min_photos:
            gal += idx[:k].tolist()
            known += idx[max(k, min_photos - 1) :].tolist()
    scorer = ExactScorer(v[gal], owner[gal])
    if scoring == "facesearch":
        dist = scorer.distances
    elif scoring == "closest face":

        def dist(q):
            return np.minimum.reduceat(1 - q @ scorer.faces.T, scorer.starts, axis=1)
    else:  # template

        def dist(q):
            return 1 - q @ scorer.templates.T

    def nearest(q):
        d = dist(v[q])
        j = d.argmin(1)
        return d[np.arange(len(q)), j], scorer.people[j]

    kd, kwho = nearest(known)
    sd, _ = nearest(strangers)
    return metrics.OpenSet(kd, kwho == owner[known], sd)


def normalised_open_set(v: np.ndarray, owner: np.ndarray, kind: str, cohort: int = 50):
    """Cohort score normalisation with the other enrolled people as the cohort (k = 1)."""
    gal, known, strangers = [], [], []
    for person in np.unique(owner):
        idx = np.flatnonzero(owner == person)
        if len(idx) == 1:
            strangers += idx.tolist()
        else:
            gal.append(idx[0])
            known += idx[1:].tolist()
    g = v[gal]
    gg = g @ g.T
    np.fill_diagonal(gg, -1)
    top = np.sort(gg, 1)[:, -cohort:]
    g_mu, g_sd = top.mean(1), top.std(1)

    def nearest(q):
        s = v[q] @ g.T
        srt = np.sort(s, 1)[:, ::-1]
        if kind == "s-norm":
            q_mu, q_sd = srt[:, 1 : cohort + 1].mean(1), srt[:, 1 : cohort + 1].std(1)
            z = 0.5 * ((s - g_mu) / g_sd + (s - q_mu[:, None]) / q_sd[:, None])
        else:  # gap: best similarity minus the mean of the next 20 people's
            z = s - srt[:, 1:21].mean(1)[:, None]
        j = z.argmax(1)
        return -z[np.arange(len(q)), j], owner[gal][j]

    kd, kwho = nearest(known)
    sd, _ = nearest(strangers)
    return metrics.OpenSet(kd, kwho == owner[known], sd)


def known_correct(result: metrics.OpenSet, step: float = 0.001) -> list[float]:
    return [result.at(result.threshold_for_far(f, step))["known_correct"] for f in FARS]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--margins", default="14,24,32,40")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    args = ap.parse_args()
    use_shared_models()
    from facesearch.device import resolve_device, resolve_precision

    precision = resolve_precision(args.precision, resolve_device(None))
    es = load_eval_set(LFW_DEV)
    pairs = read_lfw_pairs(LFW_DEV.parent / "pairs.txt", es)
    t0 = time.perf_counter()
    boxes = detect_subjects(es.paths)
    owner = es.person_of

    print(f"lfw_dev, {len(es)} photos, precision {precision}")
    head = (
        f"{'variant':<24} {'10-fold':>8} {'best':>7} {'EER':>6} {'TAR@1e-2':>8} | "
        f"{'rank-1':>6} " + " ".join(f"{'kc@' + format(f * 100, 'g') + '%':>8}" for f in FARS)
    )
    print(head)
    print("-" * len(head))
    chosen = None
    for margin in [int(m) for m in args.margins.split(",")]:
        plain, mirrored = embed_variant(es.paths, boxes, margin, precision)
        for flip in (False, True):
            v = normalise(plain + mirrored) if flip else plain
            if margin == 32 and flip:
                chosen = v
            d = 1 - np.sum(v[pairs.a] * v[pairs.b], 1)
            kf = metrics.kfold_accuracy(d, pairs.same)
            roc = metrics.roc_curve(d, pairs.same)
            eer_i = np.argmin(np.abs(1 - roc.tar - roc.far))
            eer = (1 - roc.tar[eer_i] + roc.far[eer_i]) / 2
            os_ = open_set(v, owner, 1, 2, "facesearch")
            name = f"margin {margin}" + (" + flip" if flip else "")
            print(
                f"{name:<24} {kf.accuracy * 100:>7.2f}% {metrics.best_threshold(d, pairs.same)[0] * 100:>6.2f}% "
                f"{eer * 100:>5.2f}% {metrics.tar_at_far(roc, 1e-2)[0] * 100:>7.2f}% | "
                f"{os_.rank1 * 100:>5.1f}% "
                + " ".join(f"{x * 100:>7.1f}%" for x in known_correct(os_))
            )
    if chosen is not None:
        for kind in ("s-norm", "gap"):
            r = normalised_open_set(chosen, owner, kind)
            print(
                f"{'m32+flip, ' + kind:<24} {'':>8} {'':>7} {'':>6} {'':>8} | {r.rank1 * 100:>5.1f}% "
                + " ".join(f"{x * 100:>7.1f}%" for x in known_correct(r, step=0.001))
            )
        print()
        print("Several photos per person (margin 32 + flip; people with >= 4 photos,")
        print("queries = 4th photo on, one-photo strangers):")
        print(
            f"{'k enrolled':>10} {'scoring':<14} {'rank-1':>7} "
            + " ".join(f"{'kc@' + format(f * 100, 'g') + '%':>8}" for f in FARS)
        )
        for k in (1, 2, 3):
            for scoring in ("closest face", "template", "facesearch"):
                r = open_set(chosen, owner, k, 4, scoring)
                print(
                    f"{k:>10} {scoring:<14} {r.rank1 * 100:>6.2f}% "
                    + " ".join(f"{x * 100:>7.1f}%" for x in known_correct(r))
                )
    print(f"\n({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
