"""``facesearch evaluate`` / ``calibrate``: how well recognition works on the user's labelled photos.

Every photo's subject is embedded once (as enroll would: the most prominent face), cached on disk,
and then both protocols run on the cached embeddings:

* verification: 1:1 pairs (LFW ``pairs.txt`` or sampled), 10-fold accuracy, ROC AUC, TAR@FAR;
* open-set identification: for people with more than ``enroll_per_person`` photos the first ones
  are enrolled and the rest queried; one-photo people are strangers who must come back unknown.
  Scores are what ``identify`` computes (``gallery.scoring.ExactScorer``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import FIXED_THRESHOLD, user_cache_dir
from ..errors import InputError
from ..gallery.scoring import ExactScorer
from ..threshold import Threshold, default_threshold
from . import metrics
from .evalset import EvalSet, Pairs, read_lfw_pairs, sample_pairs

if TYPE_CHECKING:
    from ..pipeline import FaceSearch

log = logging.getLogger(__name__)

FARS = (0.01, 0.001)  # reported TAR@FAR points
NO_FACE_DISTANCE = 2.0  # a pair or query whose photo has no face counts as the farthest possible
TRADEOFF_GRID = np.round(np.arange(0.20, 0.705, 0.05), 2)  # thresholds of the trade-off table


@dataclass
class SubjectEmbeddings:
    """One embedding per photo of an ``EvalSet`` (zero row where no face was found)."""

    vectors: np.ndarray
    found: np.ndarray
    seconds: float
    cached: bool


@dataclass
class Verification:
    pairs: int
    source: str
    no_face_pairs: int
    kfold: metrics.KFold
    auc: float
    tar_at_far: dict[float, float]
    threshold: float  # best-accuracy threshold over all pairs
    dist: np.ndarray = field(repr=False)
    same: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "pairs_source": self.source,
            "pairs_without_face": self.no_face_pairs,
            "accuracy": round(self.kfold.accuracy, 5),
            "accuracy_std": round(self.kfold.accuracy_std, 5),
            "folds": len(self.kfold.fold_accuracy),
            "auc": round(self.auc, 6),
            "threshold": round(self.threshold, 4),
            "tar_at_far": {f"{far:g}": round(tar, 5) for far, tar in self.tar_at_far.items()},
        }


@dataclass
class Identification:
    enrolled_people: int
    enrolled_photos: int
    known_queries: int
    stranger_queries: int
    strangers_simulated: bool
    far_target: float
    threshold: float
    result: metrics.OpenSet = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        at = self.result.at(self.threshold)
        return {
            "enrolled_people": self.enrolled_people,
            "enrolled_photos": self.enrolled_photos,
            "known_queries": self.known_queries,
            "stranger_queries": self.stranger_queries,
            "strangers_simulated": self.strangers_simulated,
            "rank1": round(self.result.rank1, 5),
            "far_target": self.far_target,
            "threshold": round(self.threshold, 4),
            **{k: round(v, 5) for k, v in at.items()},
            "tradeoff": [
                {k: round(v, 5) for k, v in row.items()}
                for row in self.result.tradeoff(TRADEOFF_GRID)
            ],
        }


@dataclass
class GallerySize:
    """Open-set identification on random sub-galleries of one size (``--gallery-sizes``).

    Per draw: ``people`` people with more than ``enroll_per_person`` photos are drawn and enrolled
    with their first photos, their other photos are the known queries, and every photo of every
    person not drawn is a stranger. Rates are compared at the default rule's threshold for this
    many people and at the fixed ``FIXED_THRESHOLD``; ``results`` holds one ``OpenSet`` per draw.
    """

    people: int
    threshold: Threshold
    fixed_threshold: float
    far_target: float
    results: list[metrics.OpenSet] = field(repr=False)

    def _rates(self, threshold: float) -> dict[str, float]:
        at = [r.at(threshold) for r in self.results]
        fa = [a["stranger_false_accept"] for a in at]
        kc = [a["known_correct"] for a in at]
        return {
            "known_correct": round(float(np.mean(kc)), 5),
            "known_correct_worst": round(float(np.min(kc)), 5),
            "known_wrong": round(float(np.mean([a["known_wrong"] for a in at])), 5),
            "stranger_false_accept": round(float(np.mean(fa)), 5),
            # standard error of that mean over the draws (0 with one draw)
            "stranger_false_accept_se": round(
                float(np.std(fa, ddof=1) / np.sqrt(len(fa))) if len(fa) > 1 else 0.0, 5
            ),
            "stranger_false_accept_worst": round(float(np.max(fa)), 5),
        }

    def to_dict(self) -> dict[str, Any]:
        own = [r.threshold_for_far(self.far_target) for r in self.results]
        return {
            "people": self.people,
            "draws": len(self.results),
            "known_queries": round(float(np.mean([r.known_dist.size for r in self.results])), 1),
            "stranger_queries": round(
                float(np.mean([r.stranger_dist.size for r in self.results])), 1
            ),
            "far_target": self.far_target,
            **self.threshold.to_dict(),
            "rule": self._rates(self.threshold.value),
            "fixed": {"threshold": self.fixed_threshold, **self._rates(self.fixed_threshold)},
            # the largest threshold each draw itself allows for far_target (what calibrate finds)
            "measured_threshold": round(float(np.mean(own)), 4),
            "measured_threshold_min": round(float(np.min(own)), 4),
        }


@dataclass
class Evaluation:
    folder: str
    photos: int
    people: int
    photos_without_face: int
    embed_seconds: float
    embeddings_cached: bool
    model: str
    verification: Verification | None = None
    identification: Identification | None = None
    by_gallery_size: list[GallerySize] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "folder": self.folder,
            "photos": self.photos,
            "people": self.people,
            "photos_without_face": self.photos_without_face,
            "embed_seconds": round(self.embed_seconds, 1),
            "embeddings_cached": self.embeddings_cached,
            "model": self.model,
        }
        if self.verification is not None:
            out["verification"] = self.verification.to_dict()
        if self.identification is not None:
            out["identification"] = self.identification.to_dict()
        if self.by_gallery_size:
            out["by_gallery_size"] = [g.to_dict() for g in self.by_gallery_size]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# -- embeddings --------------------------------------------------------------------------------


def _cache_key(evalset: EvalSet, fs: FaceSearch) -> str:
    h = hashlib.sha256()
    emb = fs.embedder
    h.update(f"{emb.model_id}|{emb.precision}|{emb.runtime}|{fs.detector.settings_key()}".encode())
    h.update(f"|gate {fs.quality_gate}".encode())  # which faces may be a photo's subject
    for p in evalset.paths:
        st = p.stat()
        h.update(f"\n{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def embed_subjects(
    evalset: EvalSet,
    fs: FaceSearch,
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> SubjectEmbeddings:
    """Embed each photo's subject as enroll does (``FaceSearch.embed_photos``); reuse a cached
    result for unchanged files."""
    fs.embedder.load()
    cache = cache_dir / f"subjects-{_cache_key(evalset, fs)}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        try:
            with np.load(cache) as data:
                vectors, found = data["vectors"], data["found"]
            if vectors.shape == (len(evalset), fs.embedder.dim):
                if progress:
                    progress(len(evalset))
                return SubjectEmbeddings(vectors, found, 0.0, cached=True)
        except (OSError, ValueError, KeyError) as err:
            log.warning("ignoring unreadable embedding cache %s (%s)", cache, err)
    t0 = time.perf_counter()
    vectors, found = fs.embed_photos(evalset.paths, progress)
    seconds = time.perf_counter() - t0
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, vectors=vectors, found=found)
        tmp.replace(cache)
    return SubjectEmbeddings(vectors, found, seconds, cached=False)


# -- protocols ---------------------------------------------------------------------------------


def verify_pairs(emb: SubjectEmbeddings, pairs: Pairs) -> Verification:
    """Verification metrics over ``pairs`` (10-fold accuracy in LFW's folds when it has them)."""
    v = emb.vectors
    dist = 1.0 - np.sum(v[pairs.a] * v[pairs.b], axis=1, dtype=np.float64)
    missing = ~(emb.found[pairs.a] & emb.found[pairs.b])
    dist[missing] = NO_FACE_DISTANCE
    roc = metrics.roc_curve(dist, pairs.same)
    # LFW's 10-fold protocol over the pairs in order (a 3-fold file still gives 10 folds of
    # its pairs, as facenet's validate_on_lfw does); sampled pairs are already shuffled.
    kfold = metrics.kfold_accuracy(dist, pairs.same, folds=10)
    _, best_t = metrics.best_threshold(dist, pairs.same)
    return Verification(
        pairs=len(pairs),
        source=pairs.source,
        no_face_pairs=int(missing.sum()),
        kfold=kfold,
        auc=metrics.auc(roc),
        tar_at_far={far: metrics.tar_at_far(roc, far)[0] for far in FARS},
        threshold=best_t,
        dist=dist,
        same=pairs.same,
    )


def open_set(
    emb: SubjectEmbeddings, evalset: EvalSet, far: float, enroll_per_person: int = 1
) -> Identification:
    """Open-set identification with the first ``enroll_per_person`` photos of each person enrolled."""
    if enroll_per_person < 1:
        raise InputError("--enroll-per-person must be at least 1")
    gal: list[int] = []
    known: list[int] = []
    strangers: list[int] = []
    known_missing = stranger_missing = 0
    for k in range(len(evalset.people)):
        photos = evalset.photos_of(k)
        with_face = [int(i) for i in photos if emb.found[i]]
        if len(photos) > enroll_per_person:
            if len(with_face) <= enroll_per_person:
                continue  # too few usable photos to both enroll and query this person
            gal += with_face[:enroll_per_person]
            known += with_face[enroll_per_person:]
            known_missing += len(photos) - len(with_face)
        elif len(photos) == 1:
            strangers += with_face
            stranger_missing += len(photos) - len(with_face)
    if not known:
        raise InputError(
            f"{evalset.root}: open-set identification needs people with more than "
            f"{enroll_per_person} photo(s) to enroll and query"
        )
    v = emb.vectors
    scorer = ExactScorer(v[gal], evalset.person_of[gal])
    kd, kwho = scorer.nearest(v[known])
    kright = kwho == evalset.person_of[known]
    simulated = not strangers
    if simulated:
        # No one-photo people: each known query, with its own person left out, is a stranger.
        if len(scorer.people) < 2:
            raise InputError(f"{evalset.root}: needs at least 2 people to measure strangers")
        sd, _ = scorer.nearest(v[known], exclude=evalset.person_of[known])
    else:
        sd, _ = scorer.nearest(v[strangers])
    # photos where no face was found: a known query is missed, a stranger is (trivially) rejected
    kd = np.r_[kd, np.full(known_missing, NO_FACE_DISTANCE)]
    kright = np.r_[kright, np.zeros(known_missing, bool)]
    sd = np.r_[sd, np.full(0 if simulated else stranger_missing, NO_FACE_DISTANCE)]
    result = metrics.OpenSet(kd, kright, sd)
    return Identification(
        enrolled_people=len(scorer.people),
        enrolled_photos=len(gal),
        known_queries=len(kd),
        stranger_queries=len(sd),
        strangers_simulated=simulated,
        far_target=far,
        threshold=result.threshold_for_far(far),
        result=result,
    )


def parse_gallery_sizes(text: str) -> list[int | None]:
    """``"4,16,all"`` -> ``[4, 16, None]`` (None: every person who can be enrolled and queried)."""
    sizes: list[int | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == "all":
            sizes.append(None)
        elif part.isdigit() and int(part) >= 1:
            sizes.append(int(part))
        else:
            raise InputError(
                f"--gallery-sizes takes numbers of people >= 1 or 'all', comma-separated "
                f"(e.g. 4,16,64,all); got {part!r}"
            )
    return sizes


def enrollable_people(
    emb: SubjectEmbeddings, evalset: EvalSet, enroll_per_person: int = 1
) -> np.ndarray:
    """People who can be enrolled and queried: more than ``enroll_per_person`` photos with a face."""
    return np.array(
        [
            k
            for k in range(len(evalset.people))
            if emb.found[evalset.photos_of(k)].sum() > enroll_per_person
        ],
        np.int64,
    )


def by_gallery_size(
    emb: SubjectEmbeddings,
    evalset: EvalSet,
    sizes: Sequence[int | None],
    *,
    far: float = 0.01,
    enroll_per_person: int = 1,
    draws: int = 10,
    seed: int = 0,
    rule: Callable[..., Threshold] = default_threshold,
) -> list[GallerySize]:
    """Open-set identification on ``draws`` random sub-galleries of each size (see ``GallerySize``).

    Scores come from ``gallery.scoring.ExactScorer`` as in ``open_set``; a size of None (or all of them) is one
    draw, since every draw would be the same. ``rule(people, far, faces=...)`` gives the threshold
    measured (the default rule unless a benchmark swaps in another).
    """
    if enroll_per_person < 1:
        raise InputError("--enroll-per-person must be at least 1")
    if draws < 1:
        raise InputError("--draws must be at least 1")
    photos = [evalset.photos_of(k) for k in range(len(evalset.people))]
    with_face = [p[emb.found[p]] for p in photos]
    eligible = enrollable_people(emb, evalset, enroll_per_person)
    total = len(eligible)
    for n in sizes:
        if n is not None and n > total:
            raise InputError(
                f"--gallery-sizes {n}: only {total} people in {evalset.root} have more than "
                f"{enroll_per_person} photo(s) to enroll and query (use a smaller size or all)"
            )
    if total < 1:
        raise InputError(
            f"{evalset.root}: open-set identification needs people with more than "
            f"{enroll_per_person} photo(s) to enroll and query"
        )
    rng = np.random.default_rng(seed)
    v = emb.vectors
    out = []
    for n in sizes:
        n = total if n is None else n
        results = []
        for _ in range(1 if n == total else draws):
            drawn = np.zeros(len(photos), bool)
            drawn[rng.choice(eligible, n, replace=False)] = True
            gal = np.concatenate([with_face[k][:enroll_per_person] for k in np.flatnonzero(drawn)])
            known = np.concatenate(
                [with_face[k][enroll_per_person:] for k in np.flatnonzero(drawn)]
            )
            known_missing = sum(len(photos[k]) - len(with_face[k]) for k in np.flatnonzero(drawn))
            strangers = np.flatnonzero(~drawn[evalset.person_of] & emb.found)
            stranger_missing = int((~drawn[evalset.person_of] & ~emb.found).sum())
            scorer = ExactScorer(v[gal], evalset.person_of[gal])
            kd, kwho = scorer.nearest(v[known])
            sd, _ = scorer.nearest(v[strangers])
            results.append(
                metrics.OpenSet(
                    np.r_[kd, np.full(known_missing, NO_FACE_DISTANCE)],
                    np.r_[kwho == evalset.person_of[known], np.zeros(known_missing, bool)],
                    np.r_[sd, np.full(stranger_missing, NO_FACE_DISTANCE)],
                )
            )
        out.append(
            GallerySize(
                n,
                rule(n, far, faces=n * enroll_per_person),
                FIXED_THRESHOLD,
                far,
                results,
            )
        )
    return out


def evaluate(
    fs: FaceSearch,
    folder: str | Path,
    *,
    pairs: str | Path | None = None,
    verification: bool = True,
    identification: bool = True,
    far: float = 0.01,
    enroll_per_person: int = 1,
    gallery_sizes: Sequence[int | None] = (),
    draws: int = 10,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Evaluation:
    """Run the chosen protocols on a folder-per-person set; see the module docstring."""
    from .evalset import load_eval_set

    if not 0.0 < far < 1.0:
        raise InputError("--far must be between 0 and 1 (e.g. 0.01)")
    if enroll_per_person < 1:
        raise InputError("--enroll-per-person must be at least 1")
    if gallery_sizes and not identification:
        raise InputError(
            "--gallery-sizes is part of open-set identification, which is switched off"
        )
    if draws < 1:
        raise InputError("--draws must be at least 1")
    evalset = load_eval_set(folder)
    pair_list = read_lfw_pairs(pairs, evalset) if pairs else None
    if on_total:
        on_total(len(evalset))
    emb = embed_subjects(evalset, fs, cache_dir, progress)
    ev = Evaluation(
        folder=str(evalset.root),
        photos=len(evalset),
        people=len(evalset.people),
        photos_without_face=int((~emb.found).sum()),
        embed_seconds=emb.seconds,
        embeddings_cached=emb.cached,
        model=fs.embedder.model_id,
    )
    if verification:
        ev.verification = verify_pairs(emb, pair_list or sample_pairs(evalset))
    if identification:
        ev.identification = open_set(emb, evalset, far, enroll_per_person)
    if gallery_sizes:
        ev.by_gallery_size = by_gallery_size(
            emb,
            evalset,
            gallery_sizes,
            far=far,
            enroll_per_person=enroll_per_person,
            draws=draws,
            seed=seed,
        )
    return ev


def default_cache_dir() -> Path:
    return user_cache_dir() / "embeddings"
