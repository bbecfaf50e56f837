"""Exclusion-based uniform sampling and K-nearest-neighbour scales (seed "uniform sampling", docs/design.md §3, step 4)."""
from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree


def _nearest_distance(trees: list[cKDTree], points: np.ndarray, bound: float = np.inf) -> np.ndarray:
    """Distance from each of ``points`` [M, 2] to the nearest point of any tree ([M], inf if none <= bound)."""
    best = np.full(points.shape[0], np.inf)
    for tree in trees:
        if tree.n == 0:
            continue
        d, _ = tree.query(points, k=1, distance_upper_bound=bound, workers=-1)
        np.minimum(best, d, out=best)
    return best


def exclusion_samples(existing: np.ndarray, n: int, height: int, width: int, radius: float,
                      rng: np.random.Generator, max_rounds: int = 32) -> tuple[np.ndarray, int]:
    """``n`` uniform points in [0, W)×[0, H), each farther than ``radius`` from every other accepted point.

    Dart throwing in vectorised rounds: each round draws a batch of uniform candidates, drops those within
    ``radius`` of an accepted point (the ``existing`` importance points included; cKDTree queries) and, of two
    candidates of the same batch closer than ``radius``, drops the later one (conservative: the exclusion
    always holds). After ``max_rounds`` rounds (only reached when the image is nearly saturated, e.g. tiny
    images with large N) the remainder is filled by best-candidate sampling: from a pool of 16 random
    candidates per missing point, those farthest from all accepted points are taken; they may violate the
    radius.

    Args:
        existing: [M, 2] float64 accepted points (x, y) in pixels.
    Returns:
        (points [n, 2] float64, n_filled: how many came from the best-candidate fill).
    """
    size = np.array([width, height], dtype=np.float64)
    trees = [cKDTree(existing)] if existing.shape[0] else []
    accepted: list[np.ndarray] = []
    have = 0
    rate = 0.9
    for _ in range(max_rounds):
        need = n - have
        if need <= 0:
            break
        m = int(min(max(64, math.ceil(1.2 * need / max(rate, 0.02))), 4 * n + 1024))
        cand = rng.random((m, 2)) * size
        ok = _nearest_distance(trees, cand, bound=radius * (1 + 1e-9) + 1e-12) > radius
        cand = cand[ok]
        if cand.shape[0] > 1:
            pairs = cKDTree(cand).query_pairs(radius, output_type="ndarray")
            if pairs.size:
                keep = np.ones(cand.shape[0], dtype=bool)
                keep[pairs.max(axis=1)] = False
                cand = cand[keep]
        rate = max(cand.shape[0] / m, 0.0)
        cand = cand[:need]
        if cand.shape[0]:
            accepted.append(cand)
            trees.append(cKDTree(cand))
            have += cand.shape[0]
    filled = max(0, n - have)
    if filled:
        pool = rng.random((16 * filled, 2)) * size
        d = _nearest_distance(trees, pool)
        order = np.argsort(-d, kind="stable")[:filled]
        accepted.append(pool[np.sort(order)])
    out = np.concatenate(accepted, axis=0) if accepted else np.zeros((0, 2))
    return out[:n], filled


def knn_scales(points: np.ndarray, queries: np.ndarray, k: int = 3, includes_self: bool = True,
               fallback: float = 1.0) -> np.ndarray:
    """Scale sqrt(mean of squared distances to the K nearest of ``points``) for each query.

    ``queries`` must be members of ``points``. With ``includes_self`` the query itself (distance 0) is one of
    the K (the reference code's convention: K = 3 gives sqrt((d1² + d2²) / 3)); otherwise the K nearest other
    points are used. With fewer points than needed, the available ones are averaged; a point with no other
    point at all gets ``fallback``.

    Args:
        points: [P, 2] float64; queries: [Q, 2] float64.
    Returns:
        [Q] float64 scales, pixels.
    """
    if queries.shape[0] == 0:
        return np.zeros(0)
    kk = k if includes_self else k + 1
    kk = min(kk, points.shape[0])
    d, _ = cKDTree(points).query(queries, k=kk, workers=-1)
    d = np.asarray(d, dtype=np.float64).reshape(queries.shape[0], kk)
    if not includes_self:
        d = d[:, 1:]
    if d.shape[1] == 0:
        return np.full(queries.shape[0], float(fallback))
    s = np.sqrt(np.mean(d * d, axis=1))
    return np.where(s > 0, s, float(fallback))
