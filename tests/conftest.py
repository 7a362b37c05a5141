"""Shared fixtures: the real models (loaded once per session) and galleries built from ../shared/faces."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACESEARCH_SHARED", REPO.parent / "shared")).resolve()
FACES = SHARED / "faces"
MODELS = SHARED / "models"

# Tests never download: they use the checkpoint in ../shared/models.
os.environ.setdefault("FACESEARCH_MODELS", str(MODELS))


def pytest_sessionstart(session: pytest.Session) -> None:
    if not FACES.is_dir() or not MODELS.is_dir():
        raise pytest.UsageError(
            f"test data not found at {SHARED} (faces/ and models/); "
            "put the shared folder beside the repo or set FACESEARCH_SHARED"
        )


@pytest.fixture(scope="session")
def detector():
    from facesearch import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def embedder():
    from facesearch import FaceEmbedder

    return FaceEmbedder(models_dir=str(MODELS), allow_download=False).load()


@pytest.fixture
def make_fs(tmp_path, detector, embedder):
    """Factory for a FaceSearch on a fresh (or given) gallery directory, sharing the loaded models."""
    from facesearch import FaceSearch

    made = []

    def make(gallery: Path | None = None):
        fs = FaceSearch(gallery or tmp_path / "gallery", detector=detector, embedder=embedder)
        made.append(fs)
        return fs

    yield make
    for fs in made:
        fs.close()


@pytest.fixture(scope="session")
def enrolled(tmp_path_factory, detector, embedder):
    """A gallery with celebrity5/train and bbt/people enrolled; tests must not modify it."""
    from facesearch import FaceSearch

    gallery = tmp_path_factory.mktemp("enrolled") / "gallery"
    fs = FaceSearch(gallery, detector=detector, embedder=embedder)
    reports = [fs.enroll(FACES / "celebrity5" / "train"), fs.enroll(FACES / "bbt" / "people")]
    fs.close()
    return gallery, reports


@pytest.fixture
def enrolled_copy(enrolled, tmp_path):
    """A private copy of the enrolled gallery, for tests that change it."""
    dst = tmp_path / "gallery-copy"
    shutil.copytree(enrolled[0], dst)
    return dst
