"""How ``gallery/`` here was made: with facesearch at commit 76683fd (gallery schema 2).

Run from the repository root at that commit:
``PYTHONPATH=. python tests/data/gallery_v2/make_fixture.py``. The embeddings come from
``vector(k)`` (no random generator, so the tests can recompute them). It holds people, an
unassigned face and thumbnails: what schema 2 added.
"""

from pathlib import Path

import numpy as np

from facesearch.gallery import open_gallery
from facesearch.types import FaceRecord

MODEL, DIM = "test-model", 32
HERE = Path(__file__).resolve().parent
# (person, number of faces); None: unassigned; "gone" is removed again
PEOPLE = [("ann", 3), ("bob", 2), (None, 2), ("gone", 1)]


def vector(k: int) -> np.ndarray:
    v = np.cos(np.arange(DIM) * (0.1 + 0.37 * k) + k)
    return (v / np.linalg.norm(v)).astype(np.float32)


def fixture_records() -> list[FaceRecord]:
    out, k = [], 0
    for person, n in PEOPLE:
        for i in range(n):
            box = (10.0 + k, 20.0, 110.0 + k, 140.0)
            thumb = f"jpeg-{k}".encode() if k % 2 == 0 else None
            out.append(
                FaceRecord(
                    person, f"{person}/{i}.jpg", f"sha-{k}", box, 0.9 + k / 100, vector(k), thumb
                )
            )
            k += 1
    return out


if __name__ == "__main__":
    with open_gallery(HERE / "gallery", MODEL, DIM, writable=True) as g:
        g.add(fixture_records())
        g.remove_person("gone")
        g.set_threshold(0.3, "calibrated for the fixture")
