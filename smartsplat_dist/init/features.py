"""Per-tile sampling weights (seed eq. 8-10): Sobel gradient magnitude and local colour variance.

Each tile is cut from the uint8 image with a halo of ``max(1, window // 2)`` pixels taken from its neighbours,
so the 3×3 Sobel and the window×window variance at a tile's border see the real neighbouring pixels. Only at
the image border is the tile padded, by mirroring (``d c b a | a b c d``, numpy "symmetric", scipy.ndimage
"reflect"). The features of a pixel are therefore exactly those computed on the whole image, while memory
stays at one tile (a 1024² tile: ~3 MB of uint8 + 12 MB of float32 outputs).

Units: intensities in [0, 1]. m = mean over channels of sqrt(gx² + gy²) with the unnormalised Sobel kernels
([1, 2, 1] ⊗ [−1, 0, 1]); v = mean over channels of the population variance over the window. Integer
arithmetic makes both exact before the final square root / scaling.
"""
from __future__ import annotations

import numba
import numpy as np

from .tiles import Tile


@numba.njit(parallel=True, cache=True)
def _features_kernel(p, radius, m_out, v_out):  # pragma: no cover - compiled
    """p: [h + 2R, w + 2R, 3] uint8 (halo R >= 1); m_out, v_out: [h, w] float32 (filled)."""
    h, w = m_out.shape
    win = 2 * radius + 1
    area = win * win
    inv_m = np.float32(1.0 / (3.0 * 255.0))
    inv_v = 1.0 / (3.0 * 255.0 * 255.0 * area * area)
    for y in numba.prange(h):
        col1 = np.empty((w + 2 * radius, 3), np.int64)
        col2 = np.empty((w + 2 * radius, 3), np.int64)
        for x in range(w + 2 * radius):
            for c in range(3):
                a = 0
                b = 0
                for k in range(win):
                    val = np.int64(p[y + k, x, c])
                    a += val
                    b += val * val
                col1[x, c] = a
                col2[x, c] = b
        yy = y + radius
        for x in range(w):
            xx = x + radius
            msum = np.float32(0.0)
            vsum = 0
            for c in range(3):
                a00 = np.int64(p[yy - 1, xx - 1, c])
                a01 = np.int64(p[yy - 1, xx, c])
                a02 = np.int64(p[yy - 1, xx + 1, c])
                a10 = np.int64(p[yy, xx - 1, c])
                a12 = np.int64(p[yy, xx + 1, c])
                a20 = np.int64(p[yy + 1, xx - 1, c])
                a21 = np.int64(p[yy + 1, xx, c])
                a22 = np.int64(p[yy + 1, xx + 1, c])
                gx = (a02 + 2 * a12 + a22) - (a00 + 2 * a10 + a20)
                gy = (a20 + 2 * a21 + a22) - (a00 + 2 * a01 + a02)
                msum += np.float32(np.sqrt(np.float32(gx * gx + gy * gy)))
                s1 = 0
                s2 = 0
                for k in range(win):
                    s1 += col1[x + k, c]
                    s2 += col2[x + k, c]
                vsum += area * s2 - s1 * s1
            m_out[y, x] = msum * inv_m
            v_out[y, x] = np.float32(vsum * inv_v)


def halo_radius(variance_window: int) -> int:
    """Halo needed by both filters: the Sobel needs 1 pixel, the variance window // 2 (window >= 3)."""
    if variance_window < 3 or variance_window % 2 == 0:
        raise ValueError(f"variance window must be odd and >= 3, got {variance_window}")
    return variance_window // 2


def padded_tile(image: np.ndarray, tile: Tile, radius: int) -> np.ndarray:
    """The tile plus ``radius`` halo pixels: real neighbours inside the image, mirrored outside.

    Args:
        image: [H, W, 3] uint8.
    Returns:
        [tile.h + 2R, tile.w + 2R, 3] uint8 (contiguous).
    """
    H, W = image.shape[:2]
    y0, y1 = tile.y0 - radius, tile.y0 + tile.h + radius
    x0, x1 = tile.x0 - radius, tile.x0 + tile.w + radius
    cy0, cy1, cx0, cx1 = max(0, y0), min(H, y1), max(0, x0), min(W, x1)
    core = image[cy0:cy1, cx0:cx1]
    pad = ((cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1), (0, 0))
    if any(a or b for a, b in pad):
        # numpy mirrors repeatedly when a pad is wider than the image (images of 1-2 pixels).
        return np.ascontiguousarray(np.pad(core, pad, mode="symmetric"))
    return np.ascontiguousarray(core)


def tile_features(image: np.ndarray, tile: Tile, variance_window: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitude m and colour variance v of every pixel of a tile (eq. 8).

    Args:
        image: [H, W, 3] uint8.
    Returns:
        (m, v): each [tile.h, tile.w] float32, intensity units in [0, 1].
    """
    radius = halo_radius(variance_window)
    p = padded_tile(image, tile, radius)
    m = np.empty((tile.h, tile.w), np.float32)
    v = np.empty((tile.h, tile.w), np.float32)
    _features_kernel(p, radius, m, v)
    return m, v


def tile_weights(image: np.ndarray, tile: Tile, lambda_m: float = 0.9, variance_window: int = 5,
                 epsilon: float = 1e-8) -> np.ndarray:
    """Sampling weight w = λm·m/(max m + ε) + (1 − λm)·v/(max v + ε) of every pixel of a tile (eq. 9-10).

    Returns:
        [tile.h, tile.w] float32 in [0, 1].
    """
    m, v = tile_features(image, tile, variance_window)
    m *= np.float32(lambda_m / (float(m.max()) + epsilon))
    v *= np.float32((1.0 - lambda_m) / (float(v.max()) + epsilon))
    m += v
    return m
