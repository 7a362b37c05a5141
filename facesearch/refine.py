"""Refining nearest-neighbour candidates: exact re-rank, or the potential-field gradient search.

The gradient method (``../shared/seeds/000_…``): the data points define a potential
``Ψ(q) = Σ_x ψ(‖x − q‖)`` with a steep ``ψ(d) = C^(−d)``; a query climbs it by gradient ascent
until it sits on a peak, and is then "slipped" to the data point at that peak. All queries move
at once, one batched tensor operation per step, on CUDA when available.

What we changed from the note, by measurement (``benchmarks/refine_bench.py``):

* the weights ``C^(−d)`` are computed in the log domain (a softmax over ``−d·ln C``), so ``C``
  can be far steeper than 1e8 without overflow; a steeper ``C`` makes each point's basin of
  attraction its Voronoi cell, which is what sends a query to its *nearest* point. ``ln C`` is
  counted per unit of the query's distance to its nearest candidate, so the same setting works
  for the note's [0,2]^64 data (distances ~4.5: C ≈ 1e38) and for unit face vectors (~0.9);
* the step is the normalised gradient times a step length that decays geometrically from about
  the distance to the nearest candidate down to ``1e-5`` of it, so every query covers the
  distance early and settles precisely late, in a fixed number of steps;
* the slip to the exact point is the dominant weight of the last step (the point whose
  potential the query sits on), which costs nothing extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .device import resolve_device

if TYPE_CHECKING:
    import torch

REFINE_METHODS = ("none", "exact", "gradient")


@dataclass(frozen=True)
class GradientParams:
    """The ascent's knobs; the defaults are those ``refine_bench.py`` chose."""

    steps: int = 200
    log_c: float = 400.0  # ln C per unit of the query's nearest-candidate distance
    step_start: float = 0.1  # first step, as a fraction of the query's nearest-candidate distance
    step_end: float = 1e-5  # last step, same unit
    sphere: bool = False  # renormalise onto the unit sphere after each step (cosine data)


def _distances(q: torch.Tensor, pool: torch.Tensor, pool_sq: torch.Tensor) -> torch.Tensor:
    """‖x − q‖ for queries (Q, D) against their pools (Q, K, D), via one batched matmul."""
    dot = (pool @ q[:, :, None])[:, :, 0]
    return (pool_sq - 2 * dot + (q * q).sum(dim=1, keepdim=True)).clamp_min(0).sqrt()


def _step(
    q: torch.Tensor,
    pool: torch.Tensor,
    pool_sq: torch.Tensor,
    log_c: torch.Tensor,
    valid: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit ascent direction and dominant point, for queries (Q, D) and pools (Q, K, D)."""
    import torch

    d = _distances(q, pool, pool_sq)
    logits = -d * log_c  # ψ'(d) ∝ C^(-d): the steepness makes the nearest point win
    if valid is not None:
        logits = logits.masked_fill(~valid, float("-inf"))
    w = torch.softmax(logits, dim=1) / d.clamp_min(1e-30)
    # Σ w_k (x_k − q) without materialising the (Q, K, D) differences
    g = (w[:, None, :] @ pool)[:, 0, :] - w.sum(dim=1, keepdim=True) * q
    g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return g, logits.argmax(dim=1)


def gradient_ascent(
    queries: torch.Tensor,
    pools: torch.Tensor,
    params: GradientParams = GradientParams(),
    valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Climb Ψ from each query over its own candidate pool.

    ``queries`` (Q, D), ``pools`` (Q, K, D) and optional ``valid`` (Q, K) (False: padding) on
    one device. Returns (final positions (Q, D), index into the pool of the point each query was
    slipped to (Q,)).
    """
    import torch

    if pools.ndim != 3 or queries.ndim != 2 or pools.shape[0] != queries.shape[0]:
        raise ValueError(
            f"expected queries (Q, D) and pools (Q, K, D), got {queries.shape}, {pools.shape}"
        )
    q = queries.clone()
    with torch.no_grad():
        pool_sq = (pools * pools).sum(dim=2)
        d_all = _distances(q, pools, pool_sq)
        if valid is not None:
            d_all = d_all.masked_fill(~valid, float("inf"))
        d0 = d_all.min(dim=1).values.clamp_min(1e-6)
        start, end = params.step_start * d0, params.step_end * d0
        # C is scale-free: distances count in units of the query's nearest-candidate distance
        log_c = params.log_c / d0[:, None]
        n = max(params.steps, 1)
        ratio = (end / start) ** (1.0 / max(n - 1, 1))
        eta = start
        best = torch.zeros(len(q), dtype=torch.long, device=q.device)
        for _ in range(n):
            g, best = _step(q, pools, pool_sq, log_c, valid)
            q = q + eta[:, None] * g
            if params.sphere:
                q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-30)
            eta = eta * ratio
        _, best = _step(q, pools, pool_sq, log_c, valid)
    return q, best


def gradient_refine(
    queries: np.ndarray,
    pool_vectors: np.ndarray,
    params: GradientParams = GradientParams(),
    device: str | None = None,
    chunk: int = 256,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Index into each query's pool (Q, K, D) of the point the gradient search ends on.

    Queries are processed ``chunk`` at a time so memory stays bounded (Q·K·D floats per chunk).
    ``valid`` (Q, K) marks real candidates (False: padding for a short pool).
    """
    import torch

    dev = resolve_device(device)
    out = np.zeros(len(queries), np.int64)
    for s in range(0, len(queries), chunk):
        # float64: near-ties between faces differ in the 6th decimal of their distance
        q = torch.from_numpy(np.array(queries[s : s + chunk], np.float64)).to(dev)
        p = torch.from_numpy(np.array(pool_vectors[s : s + chunk], np.float64)).to(dev)
        v = None if valid is None else torch.as_tensor(valid[s : s + chunk], device=dev)
        _, best = gradient_ascent(q, p, params, v)
        out[s : s + chunk] = best.cpu().numpy()
    return out


def exact_refine(
    queries: np.ndarray, pool_vectors: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """Index into each query's pool of its truly nearest point (Euclidean = cosine for unit vectors)."""
    diff = pool_vectors.astype(np.float64) - queries[:, None, :].astype(np.float64)
    d = np.linalg.norm(diff, axis=2)
    if valid is not None:
        d = np.where(valid, d, np.inf)
    return d.argmin(axis=1)
