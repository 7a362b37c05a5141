"""The default threshold by gallery size: where its stranger tail comes from, and whether it holds.

``--table`` measures F(t), the chance that a stranger's person-distance to one random enrolled
person is <= t, on lfw_dev: every person is enrolled with their first K photos (person scoring
as ``identify``: the smaller of closest-face and template distance) and every photo of every
other person is a stranger to them (about 4.1 M distances at K=1). It prints the tail at
log-spaced probabilities, fits two extrapolations to the measured rows between 1e-2 and 1e-5
(Gaussian: probit(p) linear in t; exponential: log10(p) linear in t) and scores each on the
rows it was not fitted on, then prints the constants for ``facesearch/threshold.py``. With
``--enroll-per-person 1,2,3`` it compares the tails of people enrolled with several photos on
one population (people with >= 4 photos), which decides whether photos per person enter the rule.

The default run measures the rule: for each gallery size, ``--draws`` random sub-galleries of
people with >= 2 photos (``facesearch evaluate --gallery-sizes``, the same code), strangers =
every photo of every person not drawn. Reported: the rule's threshold, stranger false-accept
(mean over draws and the worst draw), known queries named correctly at the rule's threshold
and at the old fixed 0.307, and the largest threshold each draw itself would allow (mean).

    python benchmarks/threshold_bench.py --table
    python benchmarks/threshold_bench.py [--sizes 4,16,64,256,all] [--draws 20] [--enroll-per-person 1] [--json PATH]
    python benchmarks/threshold_bench.py --holdout --draws 50 --enroll-per-person 1,2,3

``--holdout`` splits the people in two random halves: the tail is derived (as ``--table`` does)
on one half only and the rule with that tail is measured on sub-galleries of the other half, so
nothing measured there was seen when the tail was made (the photo and safety factors were).

Embeddings come from facesearch's evaluation cache (~/.cache/facesearch/embeddings; the first
run embeds lfw_dev's 3,321 photos, a few minutes on one core); the rest takes seconds.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from _common import LFW_DEV, use_shared_models
from facesearch.evaluation.evalset import EvalSet, load_eval_set
from facesearch.evaluation.metrics import OpenSet
from facesearch.evaluation.protocols import (
    SubjectEmbeddings,
    by_gallery_size,
    default_cache_dir,
    embed_subjects,
    enrollable_people,
    parse_gallery_sizes,
)
from facesearch.gallery.scoring import ExactScorer
from facesearch.threshold import (
    SAFETY_FACTOR,
    Tail,
    Threshold,
    default_threshold,
    stranger_tail_p,
    tail_distance,
)

# probabilities of the tail table: 1, 2, 5 per decade from 1e-1 to 1e-6 (measured), then
# extrapolated rows to 1e-8
MEASURED = [m * 10.0**-e for e in range(1, 7) for m in (5, 2, 1)][1:]
EXTRAPOLATED = [m * 10.0**-e for e in (7, 8) for m in (5, 2, 1)]
FIT_RANGE = (1e-5, 1e-2)


def load(precision: str) -> tuple[EvalSet, SubjectEmbeddings]:
    from facesearch import FaceSearch

    use_shared_models()
    evalset = load_eval_set(LFW_DEV)
    with FaceSearch(precision=precision) as fs:
        emb = embed_subjects(evalset, fs, default_cache_dir())
    print(
        f"lfw_dev: {len(evalset)} photos of {len(evalset.people)} people, embeddings "
        + ("from cache" if emb.cached else f"computed in {emb.seconds:.0f}s"),
        file=sys.stderr,
    )
    return evalset, emb


def stranger_distances(
    evalset: EvalSet, emb: SubjectEmbeddings, k: int, min_photos: int | None = None
) -> np.ndarray:
    """Person-distances of every photo to every other person enrolled with their first k photos.

    Enrollable people: those with >= ``min_photos`` photos with a face (default k).
    """
    min_photos = min_photos or k
    found = np.flatnonzero(emb.found)
    owner = evalset.person_of[found]
    gal = [
        found[owner == p][:k]
        for p in range(len(evalset.people))
        if (owner == p).sum() >= min_photos
    ]
    gal_idx = np.concatenate(gal)
    scorer = ExactScorer(emb.vectors[gal_idx], evalset.person_of[gal_idx])
    out = []
    for start in range(0, len(found), 512):
        q = found[start : start + 512]
        d = scorer.distances(emb.vectors[q])
        other = scorer.people[None, :] != evalset.person_of[q][:, None]
        out.append(d[other])
    return np.sort(np.concatenate(out))


def quantile(sorted_d: np.ndarray, p: float) -> float:
    """The smallest t with F(t) >= p (the empirical quantile)."""
    i = max(int(np.ceil(p * len(sorted_d))) - 1, 0)
    return float(sorted_d[i])


def fit(ps: list[float], ts: list[float], kind: str) -> tuple[float, float]:
    """Least squares t = a + b * g(p), g = probit (Gaussian tail) or log10 (exponential tail)."""
    g = [_g(p, kind) for p in ps]
    b, a = np.polyfit(g, ts, 1)
    return float(a), float(b)


def _g(p: float, kind: str) -> float:
    return statistics.NormalDist().inv_cdf(p) if kind == "gaussian" else float(np.log10(p))


def table(evalset: EvalSet, emb: SubjectEmbeddings, ks: list[int]) -> dict:
    result: dict = {}
    if len(ks) > 1:
        # one population for every K: people with more photos than the largest K
        min_photos = max(ks) + 1
        print(f"\nTail by photos enrolled per person (people with >= {min_photos} photos):")
        tails = {k: stranger_distances(evalset, emb, k, min_photos) for k in ks}
        probs = [p for p in MEASURED if p * min(len(d) for d in tails.values()) >= 5]
        print(f"  {'F(t)':>7} " + " ".join(f"{f'K={k}':>8}" for k in ks))
        for p in probs:
            print(f"  {p:>7.0e} " + " ".join(f"{quantile(tails[k], p):>8.3f}" for k in ks))
        # how many more chances a K-photo person gives a stranger: F_K(t) / F_1(t) in the tail
        print(f"  {'t':>7} " + " ".join(f"{f'F_{k}/F_1':>8}" for k in ks))
        base = tails[ks[0]]
        for t in (0.30, 0.35, 0.40, 0.45, 0.50):
            f1 = np.searchsorted(base, t, side="right") / len(base)
            ratios = [np.searchsorted(tails[k], t, side="right") / len(tails[k]) / f1 for k in ks]
            print(f"  {t:>7.2f} " + " ".join(f"{r:>8.2f}" for r in ratios))
        result["by_enroll_per_person"] = {
            str(k): {f"{p:.0e}": round(quantile(tails[k], p), 4) for p in probs} for k in ks
        }
    d = stranger_distances(evalset, emb, ks[0])
    n = len(d)
    print(f"\nStranger tail, first {ks[0]} photo(s) enrolled: {n:,} stranger-person distances")
    rows = {p: quantile(d, p) for p in MEASURED}
    fit_ps = [p for p in MEASURED if FIT_RANGE[0] <= p <= FIT_RANGE[1]]
    fits = {kind: fit(fit_ps, [rows[p] for p in fit_ps], kind) for kind in ("gaussian", "exp")}
    print(f"  {'F(t)':>7} {'t':>7} {'samples':>8} {'gaussian':>9} {'exp':>9}")
    for p in MEASURED:
        pred = [a + b * _g(p, kind) for kind, (a, b) in fits.items()]
        print(
            f"  {p:>7.0e} {rows[p]:>7.4f} {int(round(p * n)):>8} "
            + " ".join(f"{x:>9.4f}" for x in pred)
        )
    held_out = [p for p in MEASURED if p < FIT_RANGE[0]]
    err = {
        kind: float(np.sqrt(np.mean([(a + b * _g(p, kind) - rows[p]) ** 2 for p in held_out])))
        for kind, (a, b) in fits.items()
    }
    best = min(err, key=lambda kind: err[kind])
    print(
        f"  fitted on {FIT_RANGE[0]:.0e}..{FIT_RANGE[1]:.0e}; RMS error on the held-out rows "
        + ", ".join(f"{kind} {e:.4f}" for kind, e in err.items())
        + f": {best} extrapolates"
    )
    a, b = fits[best]
    extra = {p: a + b * _g(p, best) for p in EXTRAPOLATED}
    # the measured rows below the fit range are noisy (few samples): anchor the extrapolation at
    # the last measured row so the table stays monotone
    shift = rows[MEASURED[-1]] - (a + b * _g(MEASURED[-1], best))
    extra = {p: t + shift for p, t in extra.items()}
    print("\nSTRANGER_TAIL = (")
    for p in MEASURED:
        print(f"    ({p:.0e}, {rows[p]:.4f}),")
    for p in EXTRAPOLATED:
        print(f"    ({p:.0e}, {extra[p]:.4f}),  # extrapolated ({best})")
    print(")")
    result.update(
        {
            "distances": n,
            "measured": {f"{p:.0e}": round(rows[p], 4) for p in MEASURED},
            "fits": {
                k: {"a": round(a_, 5), "b": round(b_, 5), "held_out_rms": round(err[k], 5)}
                for k, (a_, b_) in fits.items()
            },
            "extrapolation": best,
            "extrapolated": {f"{p:.0e}": round(t, 4) for p, t in extra.items()},
        }
    )
    return result


def tail_from(d: np.ndarray) -> Tail:
    """A ``STRANGER_TAIL``-like table from sorted distances, made as ``--table`` makes it:
    measured rows with >= 4 distances below them, then the Gaussian tail fitted on 1e-2..1e-5,
    anchored at the last measured row."""
    measured = [p for p in MEASURED if p * len(d) >= 4]
    rows = {p: quantile(d, p) for p in measured}
    fit_ps = [p for p in measured if FIT_RANGE[0] <= p <= FIT_RANGE[1]]
    a, b = fit(fit_ps, [rows[p] for p in fit_ps], "gaussian")
    last = measured[-1]
    shift = rows[last] - (a + b * _g(last, "gaussian"))
    extra = [p for p in MEASURED + EXTRAPOLATED if p < last]
    return tuple((p, rows[p]) for p in measured) + tuple(
        (p, a + b * _g(p, "gaussian") + shift) for p in extra
    )


def restrict(
    evalset: EvalSet, emb: SubjectEmbeddings, people: np.ndarray
) -> tuple[EvalSet, SubjectEmbeddings]:
    """The photos (and embeddings) of some of the people only."""
    people = np.sort(people)
    idx = np.flatnonzero(np.isin(evalset.person_of, people))
    sub = EvalSet(
        evalset.root,
        tuple(evalset.people[p] for p in people),
        tuple(evalset.paths[i] for i in idx),
        np.searchsorted(people, evalset.person_of[idx]),
    )
    return sub, SubjectEmbeddings(emb.vectors[idx], emb.found[idx], 0.0, True)


def sizes_table(
    evalset: EvalSet,
    emb: SubjectEmbeddings,
    sizes: list[int | None],
    draws: int,
    k: int,
    far: float,
    seed: int,
    rule: Callable[..., Threshold] = default_threshold,
    title: str = "",
) -> list[dict]:
    total = len(enrollable_people(emb, evalset, k))
    sizes = [n for n in sizes if n is None or n < total]  # "all" covers the rest
    rows = by_gallery_size(
        emb, evalset, sizes, far=far, enroll_per_person=k, draws=draws, seed=seed, rule=rule
    )
    print(
        f"\nThreshold by gallery size{title}, {k} photo(s) enrolled per person, {draws} draws, "
        f"target stranger false-accept {far:.0%}"
    )
    print(
        f"  {'people':>6} {'rule t':>7} {'FA mean':>8} {'± se':>6} {'FA worst':>8} {'known ok':>8} "
        f"{'| 0.307 FA':>10} {'known ok':>8} {'| own t':>8} {'strangers':>9}"
    )
    out = []
    for r in rows:
        d = r.to_dict()
        rule, fixed = d["rule"], d["fixed"]
        print(
            f"  {r.people:>6} {r.threshold.value:>7.3f} {rule['stranger_false_accept'] * 100:>7.2f}% "
            f"{rule['stranger_false_accept_se'] * 100:>6.2f}"
            f"{rule['stranger_false_accept_worst'] * 100:>7.2f}% {rule['known_correct'] * 100:>7.2f}% "
            f"{fixed['stranger_false_accept'] * 100:>9.2f}% {fixed['known_correct'] * 100:>7.2f}% "
            f"{d['measured_threshold']:>8.3f} {d['stranger_queries']:>9}"
        )
        out.append(d)
    last = rows[-1]
    if len(last.results) == 1:
        # how precisely one split measures a threshold: bootstrap its strangers
        r = last.results[0]
        rng = np.random.default_rng(seed)
        boot = [
            OpenSet(
                r.known_dist, r.known_right, rng.choice(r.stranger_dist, r.stranger_dist.size)
            ).threshold_for_far(far)
            for _ in range(1000)
        ]
        lo, mid, hi = np.percentile(boot, [5, 50, 95])
        print(
            f"  all {last.people}: the split's own threshold {r.threshold_for_far(far):.3f}, "
            f"bootstrap over its {r.stranger_dist.size} strangers: median {mid:.3f}, "
            f"90% interval {lo:.3f}..{hi:.3f}"
        )
        out[-1]["own_threshold_bootstrap_90"] = [round(lo, 4), round(hi, 4)]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", action="store_true", help="derive the stranger tail table")
    ap.add_argument("--sizes", default="4,16,64,256,all", help="gallery sizes (people)")
    ap.add_argument("--draws", type=int, default=20, help="random sub-galleries per size")
    ap.add_argument("--enroll-per-person", default="1", help="K, or a list: 1,2,3")
    ap.add_argument("--far", type=float, default=0.01, help="target stranger false-accept rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="auto")
    ap.add_argument(
        "--holdout",
        action="store_true",
        help="derive the tail on a random half of the people, measure the rule on the other half",
    )
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = ap.parse_args()
    ks = [int(x) for x in args.enroll_per_person.split(",")]
    t0 = time.perf_counter()
    evalset, emb = load(args.precision)
    doc: dict = {"enroll_per_person": ks}
    if args.table:
        doc["table"] = table(evalset, emb, ks)
        print(
            f"\ndefault_threshold(N), far 1% (chances = {SAFETY_FACTOR} x N x m(photos per person)):"
        )
        print(f"  {'N':>9} {'p (K=1)':>9} {'K=1':>6} {'K=2':>6} {'K=3':>6}")
        for n in (1, 2, 4, 8, 16, 32, 64, 128, 256, 471, 1000, 10_000, 100_000, 1_000_000):
            ts = [default_threshold(n, faces=k * n).value for k in (1, 2, 3)]
            print(
                f"  {n:>9,} {stranger_tail_p(SAFETY_FACTOR * n):>9.2e} "
                + " ".join(f"{t:>6.3f}" for t in ts)
            )
    elif args.holdout:
        sizes = parse_gallery_sizes(args.sizes)
        order = np.random.default_rng(args.seed).permutation(len(evalset.people))
        half = len(order) // 2
        ev_a, emb_a = restrict(evalset, emb, order[:half])
        ev_b, emb_b = restrict(evalset, emb, order[half:])
        tail = tail_from(stranger_distances(ev_a, emb_a, 1))
        print(
            f"\nHold-out: tail from {len(ev_a.people)} people ({len(ev_a)} photos), rule "
            f"measured on the other {len(ev_b.people)} ({len(ev_b)} photos); t at F=1e-3, 1e-4: "
            f"{tail_distance(1e-3, tail):.4f}, {tail_distance(1e-4, tail):.4f} "
            f"(all people: {tail_distance(1e-3):.4f}, {tail_distance(1e-4):.4f})"
        )
        doc["holdout_tail"] = [[p, round(t, 4)] for p, t in tail]
        doc["by_gallery_size"] = {
            str(k): sizes_table(
                ev_b,
                emb_b,
                sizes,
                args.draws,
                k,
                args.far,
                args.seed,
                rule=functools.partial(default_threshold, tail=tail),
                title=" (hold-out half)",
            )
            for k in ks
        }
    else:
        sizes = parse_gallery_sizes(args.sizes)
        doc["by_gallery_size"] = {
            str(k): sizes_table(evalset, emb, sizes, args.draws, k, args.far, args.seed) for k in ks
        }
    seconds = time.perf_counter() - t0
    doc["seconds"] = round(seconds, 1)
    print(f"\n{seconds:.1f}s", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
