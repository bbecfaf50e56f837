"""Per-tile sampling weights (seed eq. 8-10): Sobel gradient magnitude and local colour variance.

Each tile is cut from the uint8 image with a halo of ``max(1, window // 2)`` pixels taken from its neighbours,
so the 3×3 Sobel and the window×window variance at a tile's border see the real neighbouring pixels. Only at
the image border is the tile padded, by mirroring (``d c b a | a b c d``, numpy "symmetric", scipy.ndimage
"reflect"). The features of a pixel are therefore exactly those computed on the whole image, while memory
stays at one tile (a 1024² tile: ~3 MB of uint8 + 12 MB of float32 outputs).

Units: intensities in [0, 1]. m = mean over channels of sqrt(gx² + gy²) with the unnormalised Sobel kernels
([1, 2, 1] ⊗ [−1, 0, 1]); v = mean over channels of the population variance over the window. The kernel
works on integer-valued sums (exact) up to the final square root / scaling.
"""
from __future__ import annotations

import numba
import numpy as np

from .tiles import Tile


#: Output rows per parallel work item of the feature kernel.
_ROW_BLOCK = 32


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _features_kernel(p, radius, m_out, v_out):  # pragma: no cover - compiled
    """p: [3, h + 2R, w + 2R] float32 planar tile (integer values 0..255) with halo R >= 1;
    m_out, v_out: [h, w] float32 (filled).

    Per block of rows: running vertical window sums of x and x² (add the entering row, drop the leaving one)
    and horizontal window sums over them; the separable Sobel keeps a ring of 3 rows of horizontal
    [1, 2, 1] smooths and [−1, 0, 1] differences, so each input row is filtered once. All partial sums are
    integers below 2^24, so float32 holds them exactly; the variance (area·Σx² − (Σx)²) is float64.
    Unit-stride inner loops over separate arrays (they vectorise).
    """
    h, w = m_out.shape
    wp = p.shape[2]
    win = 2 * radius + 1
    area = np.float64(win * win)
    inv_m = np.float32(1.0 / (3.0 * 255.0))
    inv_v = 1.0 / (3.0 * 255.0 * 255.0 * area * area)
    n_blocks = (h + _ROW_BLOCK - 1) // _ROW_BLOCK
    for b in numba.prange(n_blocks):
        y0 = b * _ROW_BLOCK
        y1 = min(h, y0 + _ROW_BLOCK)
        col1 = np.zeros((3, wp), np.float32)
        col2 = np.zeros((3, wp), np.float32)
        hs1 = np.empty(w, np.float32)
        hs2 = np.empty(w, np.float32)
        # ring of 3 rows of horizontal smooth (hs) and diff (hd) per channel
        hsr = np.empty((3, 3, w), np.float32)
        hdr = np.empty((3, 3, w), np.float32)
        macc = np.empty(w, np.float32)
        vacc = np.empty(w, np.float64)
        for c in range(3):
            for k in range(win):
                row = p[c, y0 + k]
                c1 = col1[c]
                c2 = col2[c]
                for x in range(wp):
                    v = row[x]
                    c1[x] += v
                    c2[x] += v * v
            for k in range(2):
                r = p[c, y0 + radius - 1 + k]
                a = r[radius - 1:radius - 1 + w]
                m_ = r[radius:radius + w]
                z = r[radius + 1:radius + 1 + w]
                hs = hsr[c, (y0 + k) % 3]
                hd = hdr[c, (y0 + k) % 3]
                for x in range(w):
                    hs[x] = a[x] + np.float32(2.0) * m_[x] + z[x]
                    hd[x] = z[x] - a[x]
        for y in range(y0, y1):
            if y > y0:
                for c in range(3):
                    ra = p[c, y + win - 1]
                    ro = p[c, y - 1]
                    c1 = col1[c]
                    c2 = col2[c]
                    for x in range(wp):
                        a = ra[x]
                        o = ro[x]
                        c1[x] += a - o
                        c2[x] += a * a - o * o
            yy = y + radius
            macc[:] = 0.0
            vacc[:] = 0.0
            for c in range(3):
                # new row yy + 1 into the ring slot (y + 2) % 3
                r = p[c, yy + 1]
                a = r[radius - 1:radius - 1 + w]
                m_ = r[radius:radius + w]
                z = r[radius + 1:radius + 1 + w]
                hsn = hsr[c, (y + 2) % 3]
                hdn = hdr[c, (y + 2) % 3]
                for x in range(w):
                    hsn[x] = a[x] + np.float32(2.0) * m_[x] + z[x]
                    hdn[x] = z[x] - a[x]
                hs0 = hsr[c, y % 3]
                hd0 = hdr[c, y % 3]
                hd1 = hdr[c, (y + 1) % 3]
                for x in range(w):
                    gxx = hd0[x] + np.float32(2.0) * hd1[x] + hdn[x]
                    gyy = hsn[x] - hs0[x]
                    macc[x] += np.sqrt(gxx * gxx + gyy * gyy)
                c1 = col1[c]
                c2 = col2[c]
                for x in range(w):
                    hs1[x] = c1[x]
                    hs2[x] = c2[x]
                for k in range(1, win):
                    for x in range(w):
                        hs1[x] += c1[x + k]
                        hs2[x] += c2[x + k]
                for x in range(w):
                    s1 = np.float64(hs1[x])
                    vacc[x] += area * np.float64(hs2[x]) - s1 * s1
            for x in range(w):
                m_out[y, x] = macc[x] * inv_m
                v_out[y, x] = np.float32(vacc[x] * inv_v)


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
        [tile.h + 2R, tile.w + 2R, 3] uint8 (a view of ``image`` when no mirroring is needed).
    """
    H, W = image.shape[:2]
    y0, y1 = tile.y0 - radius, tile.y0 + tile.h + radius
    x0, x1 = tile.x0 - radius, tile.x0 + tile.w + radius
    cy0, cy1, cx0, cx1 = max(0, y0), min(H, y1), max(0, x0), min(W, x1)
    core = image[cy0:cy1, cx0:cx1]
    pad = ((cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1), (0, 0))
    if any(a or b for a, b in pad):
        # numpy mirrors repeatedly when a pad is wider than the image (images of 1-2 pixels).
        return np.pad(core, pad, mode="symmetric")
    return core


def tile_features(image: np.ndarray, tile: Tile, variance_window: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitude m and colour variance v of every pixel of a tile (eq. 8).

    Args:
        image: [H, W, 3] uint8.
    Returns:
        (m, v): each [tile.h, tile.w] float32, intensity units in [0, 1].
    """
    radius = halo_radius(variance_window)
    p = padded_tile(image, tile, radius).transpose(2, 0, 1).astype(np.float32)  # [3, h + 2R, w + 2R]
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
