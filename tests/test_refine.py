"""The refine stage: gradient search finds exact nearest neighbours on small synthetic sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facesearch.refine import (
    GradientParams,
    exact_refine,
    gradient_ascent,
    gradient_refine,
)


def unit(rng, n, d=32):
    v = rng.standard_normal((n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_gradient_refine_returns_the_exact_nearest_neighbour_on_unit_vectors():
    rng = np.random.default_rng(0)
    points = unit(rng, 300)
    queries = unit(rng, 60)
    pools = np.broadcast_to(points, (len(queries), *points.shape))
    truth = np.argmax(queries @ points.T, axis=1)
    assert np.array_equal(exact_refine(queries, pools), truth)
    assert np.array_equal(gradient_refine(queries, pools), truth)


def test_gradient_ascent_converges_onto_the_point_in_the_notes_setting():
    # the seed note's data shape, smaller: uniform points in [0,2]^16, queries in [0,1]^16
    g = torch.Generator().manual_seed(3)
    points = torch.rand(200, 16, generator=g, dtype=torch.float64) * 2
    queries = torch.rand(40, 16, generator=g, dtype=torch.float64)
    nn = torch.cdist(queries, points).argmin(1)
    final, picked = gradient_ascent(queries, points.expand(40, 200, 16), GradientParams())
    assert torch.equal(picked, nn)
    assert float((final - points[nn]).norm(dim=1).max()) < 1e-3


def test_refine_never_leaves_the_pool_and_skips_padding():
    rng = np.random.default_rng(1)
    queries = unit(rng, 20)
    pools = np.stack([unit(rng, 8) for _ in range(20)])
    valid = np.ones((20, 8), bool)
    valid[:, 5:] = False  # short pools, padded
    pools[:, 5:] = queries[:, None, :]  # padding that would win if it were considered
    for pick in (gradient_refine(queries, pools, valid=valid), exact_refine(queries, pools, valid)):
        assert pick.min() >= 0 and pick.max() < 5
    assert np.array_equal(
        gradient_refine(queries, pools, valid=valid), exact_refine(queries, pools, valid)
    )


def test_gradient_refine_is_deterministic_and_chunking_does_not_matter():
    rng = np.random.default_rng(2)
    points = unit(rng, 100)
    queries = unit(rng, 30)
    pools = np.broadcast_to(points, (30, *points.shape))
    a = gradient_refine(queries, pools, chunk=7)
    b = gradient_refine(queries, pools, chunk=256)
    assert np.array_equal(a, b) and np.array_equal(a, gradient_refine(queries, pools, chunk=7))


@pytest.mark.parametrize("method", ["exact", "gradient"])
def test_identify_with_refine_names_the_same_people(enrolled, make_fs, method):
    from conftest import FACES

    fs = make_fs(enrolled[0])
    photo = FACES / "bbt" / "group" / "bbt2.jpg"
    plain = fs.identify(photo)
    refined = fs.identify(photo, refine=method)
    assert [f.name for f in refined.faces] == [f.name for f in plain.faces]
    for a, b in zip(plain.faces, refined.faces):
        if a.quality == "low":
            assert b.quality == "low" and b.distance is None
            continue
        assert b.distance == pytest.approx(a.distance, abs=1e-4)
