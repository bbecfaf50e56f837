"""Tiled variational (importance) sampling: seed eq. 11-17."""
from __future__ import annotations

import math

import numba
import numpy as np

from .features import tile_weights
from .tiles import Tile, samples_per_tile, tile_layout


def base_scale(height: int, width: int, n: int) -> float:
    """s_base = ⅓·R_max = ⅓·sqrt(H·W / (π·N)) (eq. 16-17), pixels."""
    return math.sqrt(height * width / (math.pi * max(1, n))) / 3.0


@numba.njit(cache=True)
def _cdf(weights, out):  # pragma: no cover - compiled
    """out[i] = Σ_{k<=i} max(weights[k], 0) in float64; returns the number of positive weights."""
    acc = 0.0
    n_pos = 0
    for i in range(weights.shape[0]):
        v = weights[i]
        if v > 0:
            acc += v
            n_pos += 1
        out[i] = acc
    return n_pos


def sample_without_replacement(weights: np.ndarray, n: int, rng: np.random.Generator,
                               cdf_buffer: np.ndarray | None = None) -> np.ndarray:
    """Draw ``n`` distinct indices with probability ∝ ``weights`` (eq. 11-12, without replacement).

    Exact successive sampling: a stream of i.i.d. draws from the CDF, keeping each index at its first
    appearance, is the same as drawing one at a time from the renormalised remaining weights. When a stream
    runs short (taken indices hold most of the mass) the taken weights are zeroed and the CDF rebuilt. When
    fewer than ``n`` pixels have a positive weight (flat tiles) all of those are taken and the rest is drawn
    uniformly from the zero-weight pixels.

    Args:
        weights: [P] float32 or float64, >= 0 (modified: taken entries are zeroed). The CDF is float64.
        n: 0 <= n <= P.
        cdf_buffer: optional [>= P] float64 scratch for the CDF (reused across tiles: no fresh pages).
    Returns:
        [n] int64 indices into ``weights``, in order of selection.
    """
    size = weights.shape[0]
    if not 0 <= n <= size:
        raise ValueError(f"cannot draw {n} distinct items from {size}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cdf = (np.empty(size, dtype=np.float64) if cdf_buffer is None or cdf_buffer.shape[0] < size
           else cdf_buffer[:size])
    n_pos = _cdf(weights, cdf)
    if n_pos <= n:
        positive = np.flatnonzero(weights > 0)
        zero = np.flatnonzero(weights <= 0)
        extra = rng.choice(zero, size=n - n_pos, replace=False) if n > n_pos else zero[:0]
        return np.concatenate([positive, extra]).astype(np.int64)
    w = weights
    taken = np.empty(n, dtype=np.int64)
    have = 0
    while have < n:
        if have:
            _cdf(w, cdf)
        need = n - have
        x = rng.random(2 * need + 16) * cdf[-1]
        order = np.argsort(x)  # sorted needles search much faster; results go back to stream order
        idx = np.empty(x.size, dtype=np.int64)
        idx[order] = np.searchsorted(cdf, x[order], side="right")
        np.minimum(idx, size - 1, out=idx)
        _, first = np.unique(idx, return_index=True)
        new = idx[np.sort(first)]
        new = new[w[new] > 0][:need]  # w > 0: not taken before (and guards float ties at the CDF's top)
        taken[have:have + new.size] = new
        have += new.size
        w[new] = 0.0
    return taken


class TileWeightsCache:
    """The sampling weights of an image's tiles, kept for a later :func:`importance_samples` call on the same
    image with the same settings (budget mode initialises twice).

    All tiles share one float32 buffer (4 bytes per pixel of the tiles, ~0.7 GB for a 16K image): one
    allocation, handed back to the OS whole when the cache is dropped, where a thousand 4 MB arrays would stay
    in the allocator's heap and in the process's resident memory for the rest of the encode.
    """

    def __init__(self) -> None:
        self._buffer: np.ndarray | None = None
        self._offsets: np.ndarray | None = None
        self._tiles: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._tiles)

    def get(self, tile: Tile) -> np.ndarray | None:
        """A stored tile's weights [tile.h * tile.w] float32, else None."""
        return self._tiles.get(tile.index)

    def put(self, tiles: list[Tile], tile: Tile, weights: np.ndarray) -> np.ndarray:
        """Store ``weights`` [tile.h * tile.w] of ``tile``, one of the image's ``tiles`` (the buffer is sized
        for all of them at the first call); returns the stored copy."""
        if self._buffer is None:
            self._offsets = np.cumsum([0] + [t.h * t.w for t in tiles])
            self._buffer = np.empty(int(self._offsets[-1]), np.float32)
        start = int(self._offsets[tile.index])
        view = self._buffer[start:start + tile.h * tile.w]
        view[:] = weights
        self._tiles[tile.index] = view
        return view


def importance_samples(image: np.ndarray, n_total: int, s_base: float, *, tile_size: int = 1024,
                       lambda_m: float = 0.9, variance_window: int = 5, epsilon: float = 1e-8,
                       seed: int = 0, weights_cache: TileWeightsCache | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature-weighted samples, ``n_ij`` per tile (eq. 13), with scale s_base·exp(−½w) (eq. 15).

    A tile never yields more samples than it has pixels. Tiles overlap, so the same pixel can be drawn by
    two tiles; such duplicates are dropped (the caller gives their slots to the uniform sampler), so the
    points are distinct. Each tile uses its own generator seeded by (seed, tile index): the result does not
    depend on the order or threads the tiles run in.

    Args:
        image: [H, W, 3] uint8.
        weights_cache: the tiles' weights, read where present, else computed and stored. Only for calls with
            the same image, ``tile_size``, ``lambda_m``, ``variance_window`` and ``epsilon`` (the weights do not
            depend on ``n_total``): budget mode initialises one image twice, and the second call skips the
            feature pass.
    Returns:
        (means [M, 2] float64 pixel centres (x + 0.5, y + 0.5), scales [M] float64, weights [M] float32),
        M <= n_total (fewer only through capped tiles or duplicates).
    """
    H, W = image.shape[:2]
    tiles = tile_layout(H, W, tile_size)
    counts = samples_per_tile(n_total, len(tiles))
    flat_ids, weights_out = [], []
    cdf_buffer = np.empty(max(t.h * t.w for t in tiles), dtype=np.float64)
    for tile, n in zip(tiles, counts):
        n = int(min(n, tile.h * tile.w))
        if n == 0:
            continue
        w = weights_cache.get(tile) if weights_cache is not None else None
        if w is None:
            w = tile_weights(image, tile, lambda_m, variance_window, epsilon).reshape(-1)
            if weights_cache is not None:
                w = weights_cache.put(tiles, tile, w)
        rng = np.random.default_rng([int(seed), 1, tile.index])
        local = sample_without_replacement(w.copy(), n, rng, cdf_buffer)
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


__all__ = ["base_scale", "sample_without_replacement", "importance_samples", "TileWeightsCache", "Tile"]
