"""Finding, verifying and (when allowed) downloading the FaceNet weights.

Search order: ``--models DIR``, ``$FACESEARCH_MODELS``, ``./models``, the per-user cache. A file is
used only if its sha256 matches; with none present the official facenet-pytorch release is
downloaded into the per-user cache with a progress bar and checked the same way.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import models_search_path, user_models_dir
from .errors import WeightsError

log = logging.getLogger(__name__)

MODEL_ID = "facenet-inception-resnet-v1-vggface2-20180402-114759"
EMBEDDING_DIM = 512


@dataclass(frozen=True)
class WeightsFile:
    """A known checkpoint: its file name, sha256, and where it can be downloaded (if anywhere)."""

    filename: str
    sha256: str
    url: str | None


OFFICIAL = WeightsFile(
    "20180402-114759-vggface2.pt",
    "281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b",
    "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
)
FEATURES = WeightsFile(
    "20180402-114759-vggface2-features.pt",
    "88923849fab8b914fca3fb2053fcb8b9584b819f90ae82b136e056b20319abf0",
    None,
)
KNOWN_WEIGHTS: tuple[WeightsFile, ...] = (FEATURES, OFFICIAL)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, expected: WeightsFile) -> None:
    """Raise WeightsError unless ``path`` has the expected sha256."""
    actual = sha256_file(path)
    if actual != expected.sha256:
        raise WeightsError(
            f"{path}: checksum mismatch (sha256 {actual[:12]}…, expected {expected.sha256[:12]}…); "
            "the file is corrupt or not this model: delete it and fetch it again"
        )


def _where_to_put(dirs: Sequence[Path]) -> str:
    names = " or ".join(w.filename for w in KNOWN_WEIGHTS)
    return f"put {names} into one of: {', '.join(str(d) for d in dirs)}"


def find_weights(models_dir: str | None = None) -> tuple[Path, WeightsFile] | None:
    """The first known weights file on the search path (not yet checksummed), or None."""
    for d in models_search_path(models_dir):
        for w in KNOWN_WEIGHTS:
            p = d / w.filename
            if p.is_file():
                return p, w
    return None


def download(weights: WeightsFile, target_dir: Path, progress: bool = True) -> Path:
    """Download ``weights`` into ``target_dir`` atomically, checking its sha256."""
    if weights.url is None:
        raise WeightsError(f"{weights.filename} has no download source")
    from tqdm import tqdm

    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / weights.filename
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=target_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            req = urllib.request.Request(weights.url, headers={"User-Agent": "facesearch"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=weights.filename,
                    disable=not progress,
                ) as bar:
                    while chunk := resp.read(1 << 20):
                        out.write(chunk)
                        bar.update(len(chunk))
        verify(tmp, weights)
        os.replace(tmp, target)
        return target
    finally:
        tmp.unlink(missing_ok=True)


def resolve_weights(
    models_dir: str | None = None, allow_download: bool = True, progress: bool = True
) -> Path:
    """Return a checksum-verified weights file, downloading the official one if none is present."""
    found = find_weights(models_dir)
    if found is not None:
        path, kind = found
        verify(path, kind)
        return path
    dirs = models_search_path(models_dir)
    if not allow_download:
        raise WeightsError(f"FaceNet weights not found; {_where_to_put(dirs)}")
    log.info("FaceNet weights not found locally; downloading %s", OFFICIAL.url)
    try:
        return download(OFFICIAL, user_models_dir(), progress=progress)
    except WeightsError:
        raise
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        reason = getattr(err, "reason", None) or err
        raise WeightsError(
            f"FaceNet weights not found and download failed ({reason}); {_where_to_put(dirs)}"
        ) from err


def load_state_dict(path: Path) -> dict:
    """Load a verified checkpoint as a state dict for InceptionResnetV1 without its classifier."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several unrelated types for a bad pickle
        raise WeightsError(f"{path}: cannot load weights ({err})") from err
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: not a state dict")
    return {k: v for k, v in state.items() if not k.startswith("logits.")}
