"""Shared helpers for the benchmarks: where the data is, and embedding a folder-per-person set once."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACESEARCH_SHARED", REPO.parent / "shared"))
FACES = SHARED / "faces"
LFW_DEV = FACES / "lfw_dev" / "images"
CACHE = REPO / ".cache"


def use_shared_models() -> None:
    """Point facesearch at ../shared/models unless the caller chose a directory."""
    if "FACESEARCH_MODELS" not in os.environ and (SHARED / "models").is_dir():
        os.environ["FACESEARCH_MODELS"] = str(SHARED / "models")


def person_photos(root: Path) -> dict[str, list[Path]]:
    """{person: sorted photo paths} for a folder-per-person set."""
    return {
        d.name: sorted(p for p in d.iterdir() if p.is_file())
        for d in sorted(root.iterdir())
        if d.is_dir()
    }


def embed_subjects(paths: list[Path], precision: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Embed the subject (most prominent face) of each photo, as enroll does.

    Returns (embeddings (N, 512), found (N,) bool); photos without a face get a zero row.
    Results are cached in .cache/ keyed by the file list and precision.
    """
    import hashlib

    import torch
    from tqdm import tqdm

    from facesearch.crops import crop_faces
    from facesearch.detection import FaceDetector, most_prominent
    from facesearch.embedding import FaceEmbedder
    from facesearch.images import load_image

    key = hashlib.sha256(("\n".join(map(str, paths)) + precision).encode()).hexdigest()[:16]
    cache = CACHE / f"subjects-{key}.npz"
    if cache.exists():
        data = np.load(cache)
        return data["emb"], data["found"]
    use_shared_models()
    det, emb = FaceDetector(), FaceEmbedder(precision=precision).load()
    out = np.zeros((len(paths), emb.dim), np.float32)
    found = np.zeros(len(paths), bool)
    crops, where = [], []
    t0 = time.perf_counter()
    for i, p in enumerate(tqdm(paths, desc="embed", unit="photo", file=sys.stderr)):
        img = load_image(p)
        faces = det.detect(img.image)
        if len(faces):
            crops.append(crop_faces(img.image, faces[most_prominent(faces, img.size)]))
            where.append(i)
        if len(crops) == 64 or (i == len(paths) - 1 and crops):
            out[where] = emb.embed(torch.cat(crops))
            found[where] = True
            crops, where = [], []
    print(
        f"embedded {found.sum()}/{len(paths)} photos in {time.perf_counter() - t0:.0f}s",
        file=sys.stderr,
    )
    CACHE.mkdir(exist_ok=True)
    np.savez(cache, emb=out, found=found)
    return out, found
