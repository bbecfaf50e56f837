"""Tiled variational (importance) sampling: seed eq. 11-17."""
from __future__ import annotations

import math

import numpy as np

from .features import tile_weights
from .tiles import Tile, samples_per_tile, tile_layout


def base_scale(height: int, width: int, n: int) -> float:
    """s_base = ⅓·R_max = ⅓·sqrt(H·W / (π·N)) (eq. 16-17), pixels."""
    return math.sqrt(height * width / (math.pi * max(1, n))) / 3.0


def sample_without_replacement(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` distinct indices with probability ∝ ``weights`` (eq. 11-12, without replacement).

    Successive rounds: draw the missing count from the CDF, keep first occurrences of new indices, zero the
    weights of the taken ones, repeat (what ``Generator.choice(replace=False, p=...)`` does, without its
    copies). When fewer than ``n`` pixels have a positive weight (flat tiles) all of those are taken and the
    rest is drawn uniformly from the zero-weight pixels.

    Args:
        weights: [P] float, >= 0 (modified: taken entries are zeroed).
        n: 0 <= n <= P.
    Returns:
        [n] int64 indices into ``weights``.
    """
    size = weights.shape[0]
    if not 0 <= n <= size:
        raise ValueError(f"cannot draw {n} distinct items from {size}")
    positive = np.flatnonzero(weights > 0)
    if positive.size <= n:
        zero = np.flatnonzero(weights <= 0)
        extra = rng.choice(zero, size=n - positive.size, replace=False) if n > positive.size else zero[:0]
        return np.concatenate([positive, extra]).astype(np.int64)
    w = weights.astype(np.float64, copy=False)
    taken = np.empty(n, dtype=np.int64)
    have = 0
    while have < n:
        cdf = np.cumsum(w)
        x = rng.random(n - have) * cdf[-1]
        idx = np.minimum(np.searchsorted(cdf, x, side="right"), size - 1)
        _, first = np.unique(idx, return_index=True)
        new = idx[np.sort(first)]
        new = new[w[new] > 0]  # guards float ties at the very top of the CDF
        taken[have:have + new.size] = new
        have += new.size
        w[new] = 0.0
    return taken


def importance_samples(image: np.ndarray, n_total: int, s_base: float, *, tile_size: int = 1024,
                       lambda_m: float = 0.9, variance_window: int = 5, epsilon: float = 1e-8,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature-weighted samples, ``n_ij`` per tile (eq. 13), with scale s_base·exp(−½w) (eq. 15).

    A tile never yields more samples than it has pixels. Tiles overlap, so the same pixel can be drawn by
    two tiles; such duplicates are dropped (the caller gives their slots to the uniform sampler), so the
    points are distinct. Each tile uses its own generator seeded by (seed, tile index): the result does not
    depend on the order or threads the tiles run in.

    Args:
        image: [H, W, 3] uint8.
    Returns:
        (means [M, 2] float64 pixel centres (x + 0.5, y + 0.5), scales [M] float64, weights [M] float32),
        M <= n_total (fewer only through capped tiles or duplicates).
    """
    H, W = image.shape[:2]
    tiles = tile_layout(H, W, tile_size)
    counts = samples_per_tile(n_total, len(tiles))
    flat_ids, weights_out = [], []
    for tile, n in zip(tiles, counts):
        n = int(min(n, tile.h * tile.w))
        if n == 0:
            continue
        w = tile_weights(image, tile, lambda_m, variance_window, epsilon).reshape(-1)
        rng = np.random.default_rng([int(seed), 1, tile.index])
        local = sample_without_replacement(w.astype(np.float64), n, rng)
        ly, lx = np.divmod(local, tile.w)
        flat_ids.append((ly + tile.y0) * W + (lx + tile.x0))
        weights_out.append(w[local])
    if not flat_ids:
        return np.zeros((0, 2)), np.zeros(0), np.zeros(0, np.float32)
    ids = np.concatenate(flat_ids)
    wts = np.concatenate(weights_out)
    _, first = np.unique(ids, return_index=True)
    keep = np.sort(first)
    ids, wts = ids[keep], wts[keep]
    y, x = np.divmod(ids, W)
    means = np.stack([x + 0.5, y + 0.5], axis=1).astype(np.float64)
    scales = s_base * np.exp(-0.5 * wts.astype(np.float64))
    return means, scales, wts


__all__ = ["base_scale", "sample_without_replacement", "importance_samples", "Tile"]
