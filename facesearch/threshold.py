"""When a face is unknown: the match threshold in force and the one decision made with it.

Every caller that names faces (``FaceSearch.identify``, the live loop, a server) asks
``Gallery.threshold()`` for the ``Threshold`` in force and decides with ``name_for``, so the rule
is written once. Precedence: a value the caller gives (``--threshold``) > the gallery's
calibrated value (``facesearch calibrate``) > ``default_threshold(people enrolled)``.

The default follows the gallery's size. A stranger has one chance per enrolled person to
resemble someone: with ``F(t)`` the chance that a stranger's distance to one random enrolled
person is ``<= t``, the chance that a gallery of ``N`` people names them is
``1 - (1 - F(t))**N``. ``default_threshold`` solves that for the target rate (1 %) with ``F``
measured on lfw_dev (``STRANGER_TAIL``), so 4 enrolled people get a looser threshold than 471
for the same stranger false-accept rate. People enrolled with several photos count as more
chances (``chances_per_person``), and every person as ``SAFETY_FACTOR`` of them.
docs/threshold.md has the method and the measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from .errors import InputError
from .types import Candidate

ThresholdKind = Literal["user", "calibrated", "default"]

DEFAULT_FAR = 0.01  # the stranger false-accept rate the default is chosen for

# F(t) = P(a stranger's person-distance to one random enrolled person <= t): (probability,
# cosine distance) from the loose end to the strict end. Measured on lfw_dev (1,241 people, each
# enrolled with their first photo, against every photo of every other person: 4.1 M distances,
# person scoring as in ``Gallery.search``). Rows down to 1e-6 are measured; beyond, the Gaussian
# tail fitted to the rows 1e-2..1e-5 (probit(p) linear in t; it predicts the held-out rows
# 5e-6..1e-6 to 0.002 RMS, an exponential tail to 0.030), anchored at the last measured row:
#     python benchmarks/threshold_bench.py --table
STRANGER_TAIL: tuple[tuple[float, float], ...] = (
    (2e-01, 0.8344),
    (1e-01, 0.7631),
    (5e-02, 0.7015),
    (2e-02, 0.6301),
    (1e-02, 0.5815),
    (5e-03, 0.5372),
    (2e-03, 0.4839),
    (1e-03, 0.4468),
    (5e-04, 0.4122),
    (2e-04, 0.3727),
    (1e-04, 0.3422),
    (5e-05, 0.3181),
    (2e-05, 0.2780),
    (1e-05, 0.2538),
    (5e-06, 0.2256),
    (2e-06, 0.1960),
    (1e-06, 0.1720),  # 4 distances below it: the last measured row
    (5e-07, 0.1487),  # extrapolated (Gaussian tail)
    (2e-07, 0.1188),  # extrapolated
    (1e-07, 0.0969),  # extrapolated
    (5e-08, 0.0754),  # extrapolated
    (2e-08, 0.0478),  # extrapolated
    (1e-08, 0.0274),  # extrapolated
)
MEASURED_DOWN_TO = 1e-6

# A person enrolled with k photos gives a stranger more chances than one photo does (the closest
# of k faces, and the template): F_k(t) ~ m(k) * F(t) in the tail. Measured on lfw_dev people
# with >= 6 photos enrolled with their first k, over t = 0.30..0.50: m = 1.8-2.1 at k=2, 2.1-2.5
# at k=3, 2.3-2.8 at k=4, 2.5-3.1 at k=5 (``--table --enroll-per-person 1,2,3,4,5``); the rule
# takes the upper end, m(k) = 1 + 1.5 ln k, with the gallery's mean faces per person (m is
# concave, so the mean errs on the strict side).
CHANCES_PER_LOG_PHOTO = 1.5

# The rule counts 1.3 chances per (one-photo) person. Without it the mean stranger false-accept
# over 50 random lfw_dev sub-galleries came out at 1.07-1.19 % for 16 people and 1.3-1.4 % for
# 64 people with 2-3 photos each (the tail is measured on everyone as the enrolled person, the
# galleries hold people with several photos, and galleries differ). 1.3 was chosen on the draws
# of seeds 1 and 2; on seed 0's it gives 0.39-0.90 % with one photo per person and at most
# 1.07 % (within one standard error of 1 %) with 2-3 (docs/threshold.md).
SAFETY_FACTOR = 1.3

# Never looser than the distance where verification pairs separate best (lfw_dev 1:1 optimum):
# beyond it a match is more likely a different person than the same one, whatever the gallery.
MAX_THRESHOLD = 0.585
# Never stricter than the last (extrapolated) row of STRANGER_TAIL: about 10^6 one-photo people at
# 1 %. Galleries beyond lfw_dev's measured range (10^4 chances) are told to calibrate.
MIN_THRESHOLD = STRANGER_TAIL[-1][1]


@dataclass(frozen=True)
class Threshold:
    """The largest cosine distance accepted as a match, and why it is that value.

    ``kind``: "user" (given by the caller), "calibrated" (stored in the gallery by
    ``calibrate``) or "default" (``default_threshold`` for the people enrolled). ``source`` is
    the sentence ``info`` and ``identify --json`` show as ``threshold_source``.
    """

    value: float
    source: str
    kind: ThresholdKind = "default"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and 0.0 <= self.value <= 2.0):
            raise ValueError(f"a threshold is a cosine distance from 0 to 2, got {self.value}")

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": round(self.value, 4), "threshold_source": self.source}


def given(value: float, source: str = "given by caller") -> Threshold:
    """A threshold set for one call (``identify --threshold``); InputError unless 0..2."""
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 2.0):
        raise InputError(f"a threshold is a cosine distance between 0 and 2, got {value}")
    return Threshold(value, source, "user")


def stranger_tail_p(chances: float, far: float = DEFAULT_FAR) -> float:
    """The per-person false-accept probability p with ``1 - (1 - p)**chances == far``."""
    if not 0.0 < far < 1.0:
        raise ValueError(f"far must be between 0 and 1, got {far}")
    # -expm1(log1p(-far)/n) is 1 - (1-far)**(1/n) without cancellation for large n
    return -math.expm1(math.log1p(-far) / max(chances, 1.0))


Tail = tuple[tuple[float, float], ...]


def tail_distance(p: float, tail: Tail = STRANGER_TAIL) -> float:
    """The distance t with ``F(t) == p``: the tail table interpolated linearly in log10(p)."""
    probs = np.log10([row[0] for row in tail])[::-1]  # ascending for np.interp
    dists = np.array([row[1] for row in tail])[::-1]
    return float(np.interp(math.log10(max(p, 1e-300)), probs, dists))


def chances_per_person(photos_per_person: float) -> float:
    """How many one-photo people a person enrolled with this many photos counts as (>= 1)."""
    return 1.0 + CHANCES_PER_LOG_PHOTO * math.log(max(photos_per_person, 1.0))


def default_threshold(
    n_people: int, far: float = DEFAULT_FAR, faces: int | None = None, tail: Tail = STRANGER_TAIL
) -> Threshold:
    """The threshold at which a stranger is named as one of ``n_people`` with chance ``far``.

    Solves ``1 - (1 - F(t))**chances = far`` on the measured stranger tail, with
    ``chances = SAFETY_FACTOR * n_people * chances_per_person(faces / n_people)`` (``faces``
    None: one photo each), clamped to ``[MIN_THRESHOLD, MAX_THRESHOLD]``. Non-increasing in both
    counts. ``tail`` is for measuring the rule with a tail measured elsewhere (the benchmark's
    hold-out).

    >>> default_threshold(4).value > default_threshold(471).value > default_threshold(50_000).value
    True
    """
    if n_people < 0 or (faces is not None and faces < 0):
        raise ValueError(f"counts must be >= 0, got {n_people} people, {faces} faces")
    per_person = faces / n_people if faces and n_people else 1.0
    chances = SAFETY_FACTOR * max(n_people, 1) * chances_per_person(per_person)
    p = stranger_tail_p(chances, far)
    t = tail_distance(p, tail)
    note = ""
    if t >= MAX_THRESHOLD:
        t, note = MAX_THRESHOLD, f"; capped at {MAX_THRESHOLD}, the best 1:1 threshold"
    elif t <= MIN_THRESHOLD:
        t, note = MIN_THRESHOLD, "; at the floor, far beyond the measured range: calibrate"
    elif p < MEASURED_DOWN_TO:
        note = "; extrapolated beyond the measured range: calibrate on your photos"
    who = f"{n_people} person" if n_people == 1 else f"{n_people} people"
    if faces is not None and faces != n_people:
        who += f" with {faces} faces"
    source = f"default for {who}: stranger false-accept <= {far:.0%} (lfw_dev measurement){note}"
    return Threshold(round(t, 3), source, "default")


def verification_threshold(far: float = DEFAULT_FAR) -> Threshold:
    """The default threshold of a 1:1 comparison (``FaceSearch.verify``): one stranger, one
    chance, so ``default_threshold`` of one person, worded for what it is."""
    rule = default_threshold(1, far)
    source = f"default for 1:1 verification: a stranger accepted <= {far:.0%} (lfw_dev measurement)"
    return Threshold(rule.value, source, "default")


def is_match(distance: float | None, threshold: Threshold | float) -> bool:
    """Whether a face at ``distance`` from its nearest person is that person (``<=``)."""
    return distance is not None and bool(matches(distance, threshold))


def matches(distances: ArrayLike, threshold: Threshold | float) -> np.ndarray:
    """``is_match`` over an array of distances (what ``evaluate`` counts with)."""
    value = threshold.value if isinstance(threshold, Threshold) else threshold
    return np.asarray(distances) <= value


def name_for(candidate: Candidate | None, threshold: Threshold | float) -> str | None:
    """The nearest candidate's name if it is within the threshold, else None (unknown)."""
    if candidate is None or not is_match(candidate.distance, threshold):
        return None
    return candidate.name
