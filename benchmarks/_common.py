"""Shared helpers for the benchmarks: where the data is, and the shared weights."""

from __future__ import annotations

import os
from pathlib import Path

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
