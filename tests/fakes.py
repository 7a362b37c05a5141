"""Helpers shared by the tests: synthetic face records (no model) and running the CLI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from facesearch.cli import main
from facesearch.types import FaceRecord

MODEL, DIM = "test-model", 32  # a gallery of synthetic vectors, not FaceNet's
# a schema-1 gallery directory made by the release before schema 2 (make_fixture.py says how)
GALLERY_V1 = Path(__file__).resolve().parent / "data" / "gallery_v1"
# a schema-2 gallery directory made by the release before schema 3 (the photo library)
GALLERY_V2 = Path(__file__).resolve().parent / "data" / "gallery_v2"


def unit(rng, n, d=DIM):
    """``n`` random unit vectors of ``d`` dimensions."""
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def records(rng, person, n, tag="", dim=DIM, thumbnail=None):
    """``n`` faces of ``person`` (None: unassigned) with random unit embeddings and distinct
    content hashes; ``thumbnail``: bytes stored with each (made distinct per face)."""
    return [
        FaceRecord(
            person,
            f"{person}/{i}.jpg",
            f"{person}{tag}-{i}",
            (0, 0, 10, 10),
            0.99,
            v,
            None if thumbnail is None else thumbnail + f"-{person}{tag}-{i}".encode(),
        )
        for i, v in enumerate(unit(rng, n, dim))
    ]


def run(capsys, *argv):
    """Run the CLI; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err):
    """The single ``facesearch: error:`` line of stderr (asserts there is exactly one line)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("facesearch: error: "), err
    return lines[0]


def _fixture_records(folder):
    spec = importlib.util.spec_from_file_location("make_fixture", folder / "make_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [r for r in module.fixture_records() if r.person != "gone"]


def v1_records():
    """The faces in ``GALLERY_V1`` (its person "gone" was removed again), recomputed."""
    return _fixture_records(GALLERY_V1)


def v2_records():
    """The faces in ``GALLERY_V2`` (people, two unassigned, some thumbnails), recomputed."""
    return _fixture_records(GALLERY_V2)
