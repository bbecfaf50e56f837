"""Initial colours: Gaussian-weighted median (DESIGN §3.5) and the optional coverage normalisation.

Coverage normalisation (DESIGN §4). With sum blending, every Gaussian carrying the full colour of the pixels
under it over-brightens the first render 1.5-2×. ``normalize_by_coverage`` divides colour i by
C_i = Σ_j exp(−|m_i − m_j|² / 2 s_j²) over the ``coverage_neighbors`` nearest Gaussians j (itself included,
terms below 1/255 dropped as the renderer does), so the rendered value at each centre is about the median
colour. Measured (initial PSNR before any fitting, CR 50, torch renderer, seed 0, photos-768:
Bamboo, Dragonfly_by_Bolly, Mountain, Snow-Trees, flowers; command in smartsplat_dist/bench/init.py
``--coverage-study``): see the figures recorded in InitConfig's docstring; "coverage" is the default.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..model import SIGMA_MAX


def median_grid_offsets(grid: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (in units of s) of a grid×grid lattice over [−1, 1]² inside the unit disc, and their weights.

    Returns:
        (offsets [K, 2] float64 (dx, dy), weights [K] float64 = exp(−|offset|² / 2)).
    """
    t = np.linspace(-1.0, 1.0, grid)
    dx, dy = np.meshgrid(t, t, indexing="xy")
    dx, dy = dx.ravel(), dy.ravel()
    inside = dx * dx + dy * dy <= 1.0 + 1e-12
    off = np.stack([dx[inside], dy[inside]], axis=1)
    return off, np.exp(-0.5 * (off * off).sum(axis=1))


def weighted_median_colors(image: np.ndarray, means: np.ndarray, scales: np.ndarray, grid: int = 9,
                           chunk: int = 32768) -> np.ndarray:
    """Per channel, the Gaussian-weighted median of the image over a grid in the disc of radius s.

    Sample k of Gaussian i reads pixel floor(m_i + s_i·o_k) (clipped to the image) with weight
    exp(−|o_k|²/2). The median is the smallest value whose cumulative weight reaches half the total.
    Values and sample indices are packed into one int32 key so a plain sort orders both.

    Args:
        image: [H, W, 3] uint8; means: [N, 2] float64 pixels (x, y); scales: [N] float64 pixels.
    Returns:
        [N, 3] float32 in [0, 1].
    """
    H, W = image.shape[:2]
    off, wts = median_grid_offsets(grid)
    K = off.shape[0]
    half = 0.5 * wts.sum()
    out = np.empty((means.shape[0], 3), dtype=np.float32)
    flat = image.reshape(-1, 3)
    kidx = np.arange(K, dtype=np.int32)
    for a in range(0, means.shape[0], chunk):
        m, s = means[a:a + chunk], scales[a:a + chunk, None]
        px = np.clip(np.floor(m[:, 0:1] + s * off[None, :, 0]), 0, W - 1).astype(np.int64)
        py = np.clip(np.floor(m[:, 1:2] + s * off[None, :, 1]), 0, H - 1).astype(np.int64)
        vals = flat[py * W + px]  # [n, K, 3] uint8
        keys = vals.transpose(0, 2, 1).astype(np.int32) * K + kidx  # [n, 3, K]
        keys.sort(axis=2)
        cum = np.cumsum(wts[keys % K], axis=2)
        pick = np.argmax(cum >= half, axis=2)  # [n, 3]
        med = np.take_along_axis(keys, pick[..., None], axis=2)[..., 0] // K
        out[a:a + chunk] = med.astype(np.float32) / 255.0
    return out


def nearest_pixel_colors(image: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Colour of the pixel containing each point. means: [N, 2] float64 (x, y). Returns [N, 3] float32."""
    H, W = image.shape[:2]
    px = np.clip(np.floor(means[:, 0]), 0, W - 1).astype(np.int64)
    py = np.clip(np.floor(means[:, 1]), 0, H - 1).astype(np.int64)
    return image[py, px].astype(np.float32) / 255.0


def coverage(means: np.ndarray, scales: np.ndarray, neighbors: int = 16, chunk: int = 65536) -> np.ndarray:
    """C_i = Σ_j exp(−|m_i − m_j|² / 2 s_j²) over the ``neighbors`` nearest j (i itself included).

    Terms with exponent above ln 255 are dropped (the renderer's footprint cut). Queries run in chunks.

    Args:
        means: [N, 2] float64 pixels; scales: [N] float64 pixels (isotropic).
    Returns:
        [N] float64, >= 1.
    """
    n = means.shape[0]
    if n == 0:
        return np.zeros(0)
    k = min(neighbors, n)
    bound = float(np.sqrt(2.0 * SIGMA_MAX) * scales.max()) * (1 + 1e-9)
    tree = cKDTree(means)
    out = np.empty(n)
    for a in range(0, n, chunk):
        d, j = tree.query(means[a:a + chunk], k=k, distance_upper_bound=bound, workers=-1)
        d, j = d.reshape(-1, k), j.reshape(-1, k)
        valid = j < n
        sj = scales[np.where(valid, j, 0)]
        e = np.where(valid, 0.5 * (d * d) / (sj * sj), np.inf)
        w = np.where(e <= SIGMA_MAX, np.exp(-np.minimum(e, 50.0)), 0.0)
        out[a:a + chunk] = np.maximum(w.sum(axis=1), 1.0)
    return out


def normalize_by_coverage(colors: np.ndarray, means: np.ndarray, scales: np.ndarray,
                          neighbors: int = 16) -> np.ndarray:
    """colors [N, 3] / coverage [N] (see ``coverage``). Returns [N, 3] float32."""
    return (colors / coverage(means, scales, neighbors)[:, None]).astype(np.float32)
