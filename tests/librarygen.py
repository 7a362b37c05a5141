"""A photo library assembled from ../shared/faces for the library and server tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import FACES

CELEBRITIES = ["ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"]
STRANGERS = ["Tony_Blair", "Hugo_Chavez", "Laura_Bush"]


def build_library(root: Path, per_person: int = 8, strangers: bool = True) -> dict[str, str]:
    """A photo folder: per person their 5 val photos and the first train ones, the two BBT
    group photos, one photo of each stranger. Returns {photo path: person or ""}."""
    who: dict[str, str] = {}
    for person in CELEBRITIES:
        folder = root / "people" / person
        folder.mkdir(parents=True)
        sources = sorted((FACES / "celebrity5" / "val" / person).iterdir())
        sources += sorted((FACES / "celebrity5" / "train" / person).iterdir())
        for k, src in enumerate(sources[:per_person]):
            dst = folder / f"{k:02d}{src.suffix}"
            shutil.copy(src, dst)
            who[str(dst.resolve())] = person
    if strangers:
        (root / "group").mkdir()
        for src in sorted((FACES / "bbt" / "group").iterdir()):
            shutil.copy(src, root / "group" / src.name)
            who[str((root / "group" / src.name).resolve())] = ""
        for name in STRANGERS:
            src = sorted((FACES / "lfw_dev" / "images" / name).iterdir())[0]
            shutil.copy(src, root / src.name)
            who[str((root / src.name).resolve())] = ""
    return who
