"""How the default match threshold is chosen: open-set identification on lfw_dev.

Protocol: people with >= 2 photos have their first photo enrolled and the rest queried
("known" queries); people with one photo are strangers, who must come back unknown. For each
cosine-distance threshold T, a known query is correct when its nearest enrolled person is right
and within T; a stranger is falsely accepted when anyone is within T. The default is the largest
T (on a 0.01 grid) whose stranger false-accept rate is at most --far.

    python benchmarks/threshold_openset.py [--far 0.01] [--precision auto|fp32|bf16]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from _common import LFW_DEV, embed_subjects, person_photos


def pair_accuracy(emb: np.ndarray, index: dict[str, int], pairs_file) -> tuple[float, float]:
    """Best-threshold accuracy over LFW pairs (a sanity check of the pipeline; issue 3 does 10-fold)."""
    same, dist = [], []
    lines = pairs_file.read_text().split("\n")[1:]
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            a, b, s = f"{parts[0]}/{int(parts[1])}", f"{parts[0]}/{int(parts[2])}", True
        elif len(parts) == 4:
            a, b, s = f"{parts[0]}/{int(parts[1])}", f"{parts[2]}/{int(parts[3])}", False
        else:
            continue
        same.append(s)
        dist.append(1.0 - float(emb[index[a]] @ emb[index[b]]))
    same_a, dist_a = np.array(same), np.array(dist)
    best = max(
        ((np.mean((dist_a <= t) == same_a), t) for t in np.arange(0.2, 1.2, 0.005)),
        key=lambda x: x[0],
    )
    return float(best[0]), float(best[1])


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--far", type=float, default=0.01, help="target stranger false-accept rate")
    ap.add_argument("--precision", default="auto")
    args = ap.parse_args()

    people = person_photos(LFW_DEV)
    paths = [p for ps in people.values() for p in ps]
    t0 = time.perf_counter()
    emb, found = embed_subjects(paths, args.precision)
    seconds = time.perf_counter() - t0
    row = {f"{p.parent.name}/{int(p.stem.rsplit('_', 1)[1])}": i for i, p in enumerate(paths)}

    pos = 0
    gallery, gallery_owner, known_q, known_owner, strangers = [], [], [], [], []
    for pid, (_name, ps) in enumerate(people.items()):
        idx = [pos + k for k in range(len(ps)) if found[pos + k]]
        pos += len(ps)
        if len(ps) >= 2 and idx:
            gallery.append(idx[0])
            gallery_owner.append(pid)
            known_q += idx[1:]
            known_owner += [pid] * (len(idx) - 1)
        elif len(ps) == 1 and idx:
            strangers += idx
    G, owner = emb[gallery], np.array(gallery_owner)

    def nearest(q: list[int]) -> tuple[np.ndarray, np.ndarray]:
        d = 1.0 - emb[q] @ G.T
        j = d.argmin(1)
        return d[np.arange(len(q)), j], owner[j]

    kd, kwho = nearest(known_q)
    kright = kwho == np.array(known_owner)
    sd, _ = nearest(strangers)
    print(
        f"lfw_dev: {len(paths)} photos, {int(found.sum())} with a face, embedded in {seconds:.0f}s "
        f"(cached runs are instant)"
    )
    acc, t_ver = pair_accuracy(emb, row, LFW_DEV.parent / "pairs.txt")
    print(
        f"verification sanity check, 1800 LFW pairs: best accuracy {acc:.4f} at distance {t_ver:.3f}"
    )
    print(
        f"open set: {len(gallery)} people enrolled (1 photo each), {len(known_q)} known queries, "
        f"{len(strangers)} strangers; rank-1 {kright.mean():.4f}"
    )
    print(
        f"{'threshold':>9} {'known correct':>13} {'known wrong name':>16} {'stranger false accept':>21}"
    )
    for t in np.round(np.arange(0.25, 0.625, 0.025), 3):
        print(
            f"{t:>9.3f} {np.mean(kright & (kd <= t)):>13.4f} {np.mean(~kright & (kd <= t)):>16.4f} "
            f"{np.mean(sd <= t):>21.4f}"
        )
    grid = np.round(np.arange(0.10, 1.0, 0.01), 2)
    ok = [t for t in grid if np.mean(sd <= t) <= args.far]
    chosen = max(ok)
    print(
        f"chosen: threshold {chosen:.2f} = largest with stranger false-accept <= {args.far:g}: "
        f"stranger FA {np.mean(sd <= chosen):.4f}, known correct {np.mean(kright & (kd <= chosen)):.4f}, "
        f"known wrong name {np.mean(~kright & (kd <= chosen)):.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
