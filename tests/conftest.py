"""Shared fixtures: the real models (loaded once per session) and galleries built from ../shared/faces."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from clipgen import walking_clip

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


# -- PostgreSQL ------------------------------------------------------------------------------------

PG_URL_ENV = "FACESEARCH_TEST_POSTGRES_URL"


def _pg_unavailable(reason: str):
    """Skip (one line saying how to get it), except under CI, where PostgreSQL must work."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """An admin URL of a PostgreSQL server with pgvector: $FACESEARCH_TEST_POSTGRES_URL, else a
    throwaway server started by pgserver in a temporary directory."""
    url = os.environ.get(PG_URL_ENV)
    try:
        import pgvector.psycopg  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as err:
        _pg_unavailable(f"{err.name} is not installed: pip install -e '.[test]'")
    if url:
        yield url
        return
    try:
        import pgserver
    except ImportError:
        _pg_unavailable(
            f"pgserver is not installed (pip install -e '.[test]'), or set {PG_URL_ENV}"
        )
    try:
        server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="delete")
    except Exception as err:
        _pg_unavailable(f"pgserver could not start PostgreSQL ({err}); or set {PG_URL_ENV}")
    yield server.get_uri()
    server.cleanup()


def pg_database_url(admin_url: str, name: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(admin_url)._replace(path=f"/{name}").geturl()


@pytest.fixture
def pg_url(pg_server):
    """A URL of a fresh, empty database (dropped after the test)."""
    import uuid

    import psycopg
    from psycopg import sql

    name = f"facesearch_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_database_url(pg_server, name)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# -- cameras ---------------------------------------------------------------------------------------

CLIP_FPS = 10
CLIP_SEGMENT, CLIP_GAP = 30, 10  # frames a person is in view, empty frames between people
#: (truth, photo): two people of the enrolled gallery (their val photos; the gallery has their
#: train photos) and a stranger who is in no gallery
CLIP_PEOPLE = [
    ("ben_afflek", FACES / "celebrity5" / "val" / "ben_afflek" / "1.jpg"),
    ("mindy_kaling", FACES / "celebrity5" / "val" / "mindy_kaling" / "2.jpg"),
    (None, FACES / "lfw_dev" / "images" / "Abbas_Kiarostami" / "Abbas_Kiarostami_0001.jpg"),
]


@pytest.fixture(scope="session")
def door_clip(tmp_path_factory, detector):
    """(path, spans, frames): a 640x480 mp4 at 10 fps of ``CLIP_PEOPLE`` walking past, one by one."""
    path = tmp_path_factory.mktemp("cameras") / "door.mp4"
    spans, frames = walking_clip(
        path, detector, CLIP_PEOPLE, fps=CLIP_FPS, segment=CLIP_SEGMENT, gap=CLIP_GAP
    )
    return path, spans, frames
