"""Initial colours: Gaussian-weighted median (docs/design.md §3, step 5) and the optional coverage normalisation.

Coverage normalisation (docs/design.md §3, step 5). With sum blending, every Gaussian carrying the full colour of the pixels
under it over-brightens the first render. ``normalize_by_coverage`` divides colour i by
C_i = Σ_j exp(−|m_i − m_j|² / 2 s_j²) over all Gaussians j (itself included, so C_i >= 1) whose footprint
reaches m_i (terms with exponent above ln 255 dropped, as the renderer does). It is computed exactly with a
grid hash: points are bucketed into square cells, and each Gaussian visits only the cells its footprint
touches — memory O(N), no image-sized array. See InitConfig's docstring for the measurement that made
"coverage" the default (initial PSNR of the smart init at CR 50 on photos-768: 10.5 → 13.7 dB).
"""
from __future__ import annotations

import math

import numba
import numpy as np

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


@numba.njit(parallel=True, cache=True)
def _median_kernel(image, means, scales, off, wts, out):  # pragma: no cover - compiled
    """image [H, W, 3] uint8; means [N, 2]; scales [N]; off [K, 2]; wts [K]; out [N, 3] uint8 (filled)."""
    H, W = image.shape[0], image.shape[1]
    n = means.shape[0]
    K = off.shape[0]
    half = 0.5 * wts.sum()
    block = 2048
    n_blocks = (n + block - 1) // block
    for b in numba.prange(n_blocks):
        hist = np.zeros((3, 256), np.float64)
        px = np.empty(K, np.int64)
        py = np.empty(K, np.int64)
        for i in range(b * block, min(n, (b + 1) * block)):
            mx, my, s = means[i, 0], means[i, 1], scales[i]
            for k in range(K):
                x = int(math.floor(mx + s * off[k, 0]))
                y = int(math.floor(my + s * off[k, 1]))
                px[k] = min(max(x, 0), W - 1)
                py[k] = min(max(y, 0), H - 1)
            for c in range(3):
                lo = 255
                hi = 0
                for k in range(K):
                    v = image[py[k], px[k], c]
                    hist[c, v] += wts[k]
                    lo = min(lo, v)
                    hi = max(hi, v)
                acc = 0.0
                med = hi
                for v in range(lo, hi + 1):
                    acc += hist[c, v]
                    if acc >= half:
                        med = v
                        break
                for v in range(lo, hi + 1):
                    hist[c, v] = 0.0
                out[i, c] = med


def weighted_median_colors(image: np.ndarray, means: np.ndarray, scales: np.ndarray, grid: int = 9) -> np.ndarray:
    """Per channel, the Gaussian-weighted median of the image over a grid in the disc of radius s.

    Sample k of Gaussian i reads pixel floor(m_i + s_i·o_k) (clipped to the image) with weight exp(−|o_k|²/2).
    The median is the smallest value whose cumulative weight (values in increasing order) reaches half the
    total. Compiled, parallel over blocks of points, a 256-bin weight histogram per channel: no temporaries.

    Args:
        image: [H, W, 3] uint8; means: [N, 2] float64 pixels (x, y); scales: [N] float64 pixels.
    Returns:
        [N, 3] float32 in [0, 1] (multiples of 1/255).
    """
    off, wts = median_grid_offsets(grid)
    out = np.empty((means.shape[0], 3), dtype=np.uint8)
    if means.shape[0]:
        _median_kernel(np.ascontiguousarray(image), np.ascontiguousarray(means, dtype=np.float64),
                       np.ascontiguousarray(scales, dtype=np.float64), off, wts, out)
    return out.astype(np.float32) / np.float32(255.0)


def nearest_pixel_colors(image: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Colour of the pixel containing each point. means: [N, 2] float64 (x, y). Returns [N, 3] float32."""
    H, W = image.shape[:2]
    px = np.clip(np.floor(means[:, 0]), 0, W - 1).astype(np.int64)
    py = np.clip(np.floor(means[:, 1]), 0, H - 1).astype(np.int64)
    return image[py, px].astype(np.float32) / np.float32(255.0)


#: Fixed number of source chunks of the coverage scatter (each with its own accumulator), so the float sums
#: and hence the result do not depend on the thread count.
_COVERAGE_CHUNKS = 4


@numba.njit(parallel=True, cache=True)
def _coverage_kernel(means, scales, cell, gx0, gy0, nx, ny, starts, smax, acc):  # pragma: no cover
    """Scatter each Gaussian's weight onto the centres inside its footprint.

    means [N, 2] / scales [N] sorted by cell; starts [nx*ny + 1]; acc [_COVERAGE_CHUNKS, N] float64 (zeroed).
    """
    n = means.shape[0]
    n_chunks = acc.shape[0]
    cut = math.sqrt(2.0 * smax)
    for ch in numba.prange(n_chunks):
        out = acc[ch]
        for j in range(ch * n // n_chunks, (ch + 1) * n // n_chunks):
            mx, my, s = means[j, 0], means[j, 1], scales[j]
            r = cut * s
            inv = 0.5 / (s * s)
            cx0 = max(0, int(math.floor((mx - r - gx0) / cell)))
            cx1 = min(nx - 1, int(math.floor((mx + r - gx0) / cell)))
            cy0 = max(0, int(math.floor((my - r - gy0) / cell)))
            cy1 = min(ny - 1, int(math.floor((my + r - gy0) / cell)))
            for cy in range(cy0, cy1 + 1):
                for t in range(starts[cy * nx + cx0], starts[cy * nx + cx1 + 1]):
                    dx = means[t, 0] - mx
                    dy = means[t, 1] - my
                    e = (dx * dx + dy * dy) * inv
                    if e <= smax:
                        out[t] += math.exp(-e)


def coverage(means: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """C_i = Σ_j exp(−|m_i − m_j|² / 2 s_j²) over all j with exponent <= ln 255 (i itself included).

    Points are sorted by grid cell (row-major, so a row of cells is one contiguous run) and each Gaussian
    scans the cell rows its footprint touches; sources run in 4 fixed chunks in parallel, each into its own
    accumulator, summed in a fixed order (deterministic for any thread count).

    Args:
        means: [N, 2] float64 pixels; scales: [N] float64 pixels (isotropic, > 0).
    Returns:
        [N] float64, >= 1.
    """
    n = means.shape[0]
    if n == 0:
        return np.zeros(0)
    means = np.asarray(means, dtype=np.float64)
    scales = np.asarray(scales, dtype=np.float64)
    lo = means.min(axis=0)
    extent = float(max(means.max(axis=0) - lo)) + 1e-9
    # Cells of about the median footprint radius, but at most ~4N cells in all.
    cell = max(float(np.median(scales)) * math.sqrt(2.0 * SIGMA_MAX), extent / math.sqrt(4.0 * n + 1.0), 1e-6)
    nx = int((float(means[:, 0].max()) - lo[0]) // cell) + 1
    ny = int((float(means[:, 1].max()) - lo[1]) // cell) + 1
    cid = ((means[:, 1] - lo[1]) // cell).astype(np.int64) * nx + ((means[:, 0] - lo[0]) // cell).astype(np.int64)
    order = np.argsort(cid, kind="stable")
    starts = np.zeros(nx * ny + 1, dtype=np.int64)
    np.cumsum(np.bincount(cid, minlength=nx * ny), out=starts[1:])
    acc = np.zeros((min(_COVERAGE_CHUNKS, n), n))
    _coverage_kernel(np.ascontiguousarray(means[order]), np.ascontiguousarray(scales[order]), cell,
                     float(lo[0]), float(lo[1]), nx, ny, starts, float(SIGMA_MAX), acc)
    total = acc[0].copy()
    for row in acc[1:]:
        total += row
    out = np.empty(n)
    out[order] = total
    return np.maximum(out, 1.0)


def normalize_by_coverage(colors: np.ndarray, means: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """colors [N, 3] / coverage [N] (see ``coverage``). Returns [N, 3] float32."""
    return (colors / coverage(means, scales)[:, None]).astype(np.float32)
