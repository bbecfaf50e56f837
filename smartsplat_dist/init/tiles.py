"""Adaptive step-size tiling (seed eq. 1-7) and the even split of samples over tiles (eq. 13)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """One tile: rows ``y0 : y0 + h``, columns ``x0 : x0 + w``; ``index = i * N_w + j`` (row-major)."""

    i: int
    j: int
    index: int
    y0: int
    x0: int
    h: int
    w: int


def tile_starts(size: int, tile: int) -> list[int]:
    """Start offsets along one axis (eq. 1-5), floored to whole pixels.

    N = max(1, ceil(size / T)); one tile is centred: p = max(0, (size − T) / 2); otherwise the stride is
    (size − T) / (N − 1) and p_i = min(i · stride, size − T).
    """
    n = max(1, math.ceil(size / tile))
    if n == 1:
        return [int(max(0.0, (size - tile) / 2.0))]
    stride = (size - tile) / (n - 1)
    return [int(min(i * stride, size - tile)) for i in range(n)]


def tile_layout(height: int, width: int, tile: int = 1024) -> list[Tile]:
    """All tiles of an H×W image, row-major; sizes T_h = min(T, H − p_h), T_w = min(T, W − p_w) (eq. 6-7)."""
    ys, xs = tile_starts(height, tile), tile_starts(width, tile)
    out = []
    for i, y0 in enumerate(ys):
        for j, x0 in enumerate(xs):
            out.append(Tile(i, j, i * len(xs) + j, y0, x0, min(tile, height - y0), min(tile, width - x0)))
    return out


def samples_per_tile(total: int, n_tiles: int) -> np.ndarray:
    """Eq. 13: n_ij = floor(total / n_tiles) + [index < total mod n_tiles]. Returns [n_tiles] int64."""
    if n_tiles <= 0 or total < 0:
        raise ValueError(f"need n_tiles > 0 and total >= 0, got {n_tiles}, {total}")
    base, rest = divmod(int(total), int(n_tiles))
    return base + (np.arange(n_tiles) < rest).astype(np.int64)
