"""Assemble sample_images/ from its manifest: copied from ../shared/faces when present, else downloaded.

Every file is checked against the sha256 in sample_images/manifest.tsv. Photos are never
committed to the repository.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_images"
SHARED = Path(os.environ.get("FACESEARCH_SHARED", REPO.parent / "shared"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    rows = [
        line.split("\t")
        for line in (SAMPLES / "manifest.tsv").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    copied = downloaded = present = 0
    for dest, digest, shared_path, url in rows:
        target = SAMPLES / dest
        if target.is_file() and sha256(target) == digest:
            present += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        local = SHARED / shared_path
        tmp = target.with_suffix(target.suffix + ".part")
        if local.is_file():
            shutil.copyfile(local, tmp)
            copied += 1
        else:
            try:
                with urllib.request.urlopen(url, timeout=30) as resp, open(tmp, "wb") as out:
                    shutil.copyfileobj(resp, out)
            except OSError as err:
                print(f"fetch_samples: error: cannot download {url} ({err})", file=sys.stderr)
                return 1
            downloaded += 1
        if sha256(tmp) != digest:
            tmp.unlink()
            print(f"fetch_samples: error: {dest}: checksum mismatch", file=sys.stderr)
            return 1
        os.replace(tmp, target)
    print(
        f"sample_images: {len(rows)} files ({present} present, {copied} copied from {SHARED}, "
        f"{downloaded} downloaded)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
