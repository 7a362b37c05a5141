"""Recognition metrics on cosine distances (pure numpy): verification and open-set identification.

Convention throughout: a pair (or a query and its nearest enrolled person) is *accepted* as the
same person when its distance is ``<= threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..threshold import matches


@dataclass(frozen=True)
class Roc:
    """ROC points from the strictest threshold to the loosest (far and tar both rise)."""

    thresholds: np.ndarray  # accept d <= t
    far: np.ndarray  # fraction of different-person pairs accepted
    tar: np.ndarray  # fraction of same-person pairs accepted


def _check(dist: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(dist, np.float64).ravel()
    s = np.asarray(same, bool).ravel()
    if d.shape != s.shape:
        raise ValueError(f"{d.size} distances but {s.size} labels")
    if not s.any() or s.all():
        raise ValueError("need both same-person and different-person pairs")
    if not np.isfinite(d).all():
        raise ValueError("distances must be finite")
    return d, s


def roc_curve(dist: np.ndarray, same: np.ndarray) -> Roc:
    """Exact ROC: one point per distinct distance, plus the accept-nothing point."""
    d, s = _check(dist, same)
    order = np.argsort(d, kind="stable")
    d, s = d[order], s[order]
    last = np.r_[np.diff(d) > 0, True]  # last index of each run of equal distances
    tp = np.cumsum(s)[last]
    fp = np.cumsum(~s)[last]
    # the first point accepts nothing: a threshold just below the smallest distance
    thresholds = np.r_[np.nextafter(d[0], -np.inf), d[last]]
    return Roc(thresholds, np.r_[0, fp] / (~s).sum(), np.r_[0, tp] / s.sum())


def auc(roc: Roc) -> float:
    """Area under the ROC curve (trapezoids; ties count half, as in the Mann-Whitney U)."""
    return float(np.sum(np.diff(roc.far) * (roc.tar[1:] + roc.tar[:-1]) / 2))


def tar_at_far(roc: Roc, far: float) -> tuple[float, float]:
    """Highest TAR whose FAR is <= ``far``, and the (loosest) threshold that gives it."""
    ok = np.flatnonzero(roc.far <= far)
    i = ok[-1]  # far is non-decreasing, so the last allowed point has the highest tar
    return float(roc.tar[i]), float(roc.thresholds[i])


def best_threshold(dist: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(accuracy, threshold) maximising accuracy; the threshold is the midpoint of its gap."""
    d, s = _check(dist, same)
    roc = roc_curve(d, s)
    n_same, n_diff = s.sum(), (~s).sum()
    correct = roc.tar * n_same + (1 - roc.far) * n_diff
    i = int(np.argmax(correct))
    lo = roc.thresholds[i]
    t = (lo + roc.thresholds[i + 1]) / 2 if i + 1 < len(roc.thresholds) else lo
    return float(correct[i] / d.size), float(t)


@dataclass(frozen=True)
class KFold:
    """k-fold verification accuracy: threshold fitted on k-1 folds, scored on the held-out one."""

    accuracy: float
    accuracy_std: float
    fold_accuracy: tuple[float, ...]
    fold_threshold: tuple[float, ...]


def kfold_accuracy(
    dist: np.ndarray, same: np.ndarray, folds: int = 10, fold_of: np.ndarray | None = None
) -> KFold:
    """The LFW protocol: pairs split into ``folds`` contiguous folds (or as ``fold_of`` says)."""
    d, s = _check(dist, same)
    if fold_of is None:
        fold_of = np.arange(d.size) * folds // d.size
    fold_of = np.asarray(fold_of)
    accs, ts = [], []
    for k in np.unique(fold_of):
        test = fold_of == k
        _, t = best_threshold(d[~test], s[~test])
        accs.append(float(np.mean((d[test] <= t) == s[test])))
        ts.append(t)
    return KFold(float(np.mean(accs)), float(np.std(accs)), tuple(accs), tuple(ts))


@dataclass(frozen=True)
class OpenSet:
    """Open-set identification results for one gallery/probe split.

    ``known_dist``/``known_right``: per known query, the distance to its nearest enrolled person
    and whether that person is the right one. ``stranger_dist``: per stranger query, the distance
    to the nearest enrolled person.
    """

    known_dist: np.ndarray
    known_right: np.ndarray
    stranger_dist: np.ndarray

    @property
    def rank1(self) -> float:
        return float(np.mean(self.known_right)) if self.known_right.size else float("nan")

    def at(self, threshold: float) -> dict[str, float]:
        """Rates at one threshold: known correct / wrongly named / rejected, stranger FA."""
        kd, kr, sd = self.known_dist, self.known_right, self.stranger_dist
        accepted = matches(kd, threshold)  # identify's decision, on every query at once
        fa = float(np.mean(matches(sd, threshold))) if sd.size else float("nan")
        return {
            "known_correct": float(np.mean(kr & accepted)) if kd.size else float("nan"),
            "known_wrong": float(np.mean(~kr & accepted)) if kd.size else float("nan"),
            "known_rejected": float(np.mean(~accepted)) if kd.size else float("nan"),
            "stranger_false_accept": fa,
            "stranger_rejected": 1.0 - fa,
        }

    def threshold_for_far(self, far: float, step: float = 0.001) -> float:
        """Largest threshold on a ``step`` grid whose stranger false-accept rate is <= ``far``.

        With n strangers the rate moves in steps of 1/n, so a target below 1/n means no
        stranger may be accepted.
        """
        sd = np.sort(self.stranger_dist)
        if sd.size == 0:
            raise ValueError("no stranger queries: cannot pick a threshold for a false-accept rate")
        allowed = int(np.floor(far * sd.size + 1e-9))
        if allowed >= sd.size:
            return float(np.floor(sd[-1] / step) * step)
        # strictly below the first stranger that must be rejected
        t = np.ceil(sd[allowed] / step - 1e-9) * step - step
        return float(np.round(t, 6))

    def tradeoff(self, thresholds: np.ndarray) -> list[dict[str, float]]:
        """``at()`` over several thresholds (a DET-style table)."""
        return [{"threshold": float(t), **self.at(float(t))} for t in thresholds]
