"""Helpers shared by the tests: synthetic face records (no model) and running the CLI."""

from __future__ import annotations

import numpy as np

from facesearch.cli import main
from facesearch.types import FaceRecord

MODEL, DIM = "test-model", 32  # a gallery of synthetic vectors, not FaceNet's


def unit(rng, n, d=DIM):
    """``n`` random unit vectors of ``d`` dimensions."""
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def records(rng, person, n, tag=""):
    """``n`` faces of ``person`` with random unit embeddings and distinct content hashes."""
    return [
        FaceRecord(person, f"{person}/{i}.jpg", f"{person}{tag}-{i}", (0, 0, 10, 10), 0.99, v)
        for i, v in enumerate(unit(rng, n))
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
