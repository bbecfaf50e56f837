"""Image quality metrics: PSNR, SSIM, MS-SSIM — exact, computed tile by tile in bounded memory.

Inputs: two images of the same shape [H, W, C] (C = 3 normally), each either ``np.ndarray`` uint8 (0..255) or a
float array / ``torch.Tensor`` in [0, 1] (multiplied by 255; values are used as given, not clamped or rounded).
Everything is computed in float64 on the 0..255 scale, tile by tile and one channel at a time, so a 16K image
(16320 x 10880) never needs more than one tile's float64 temporaries (default 1024 px tiles plus halo: ~15
arrays of 1184^2 float64, ~170 MB) beside the caller's two images. Speed: single-threaded numpy/scipy; on the
busy shared dev machine a 2048^2 image took 1.6 s (PSNR), 7.5 s (SSIM), 10.7 s (MS-SSIM).

* PSNR: ``10 log10(255^2 / MSE)``, MSE over all pixels and channels accumulated in float64 per row strip;
  identical images give ``inf``.
* SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma = 1.5, K1 = 0.01, K2 = 0.03 (C1 = (0.01*255)^2,
  C2 = (0.03*255)^2). **'valid' convention**: the SSIM map is only evaluated where the whole 11x11 window lies
  inside the image (an (H-10) x (W-10) map, no padding — as the original MATLAB ``ssim_index`` with
  ``filter2(..., 'valid')`` and ``pytorch_msssim``; not the zero-padded 'same' map of the 3DGS code). The value is
  the mean of the map over pixels, then over channels. Tiles of the input overlap by 10 px, so each tile yields a
  disjoint block of the same map (bit-identical per-pixel values); only the float64 summation order differs.
* MS-SSIM (Wang et al. 2003): 5 scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); contrast-structure
  mean at scales 1-4, full SSIM at scale 5, each clamped at 0 (as ``pytorch_msssim``), combined per channel as
  ``prod(v_j ** w_j)`` and averaged over channels. Downsampling between scales: 2x2 mean, dropping an odd last
  row/column. Tiled too: a tile carries a halo of 10 * 2^(scales-1) px (160 px for 5 scales) and starts at a
  multiple of 2^(scales-1), so every scale's map splits exactly as for SSIM.
  Images too small for 5 scales (a scale needs at least 11 x 11 px, i.e. min(H, W) >= 176 for 5) use the
  largest number of scales that fits, with the first weights renormalised to sum to 1 (see
  :func:`ms_ssim_scales`); a side under 11 px raises :class:`~smartsplat_dist.errors.ImageError`.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from scipy.ndimage import correlate1d

from ..errors import ImageError
from ..threads import applied
from .ssim_def import K1, K2, PEAK, WINDOW_SIZE, psnr_from_sse, window_1d

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: Default tile edge in pixels (rounded up to a multiple of 2^(scales-1) for MS-SSIM).
DEFAULT_TILE = 1024


def _shape(img: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in img.shape)


def _check_pair(a: Any, b: Any) -> tuple[int, int, int]:
    for name, img in (("first", a), ("second", b)):
        if not hasattr(img, "shape") or len(img.shape) != 3:
            raise ImageError(f"metric input ({name}): expected an image [H, W, C], got "
                             f"{getattr(img, 'shape', type(img).__name__)}")
    if _shape(a) != _shape(b):
        raise ImageError(f"metric inputs differ in shape: {list(_shape(a))} vs {list(_shape(b))}")
    h, w, c = _shape(a)
    if h == 0 or w == 0 or c == 0:
        raise ImageError(f"metric input is empty: {h}x{w}x{c}")
    return h, w, c


def _tile(img: Any, r0: int, r1: int, c0: int, c1: int, ch: slice | int = slice(None)) -> np.ndarray:
    """A crop as float64 on the 0..255 scale: [r1-r0, c1-c0, ...]."""
    part = img[r0:r1, c0:c1, ch]
    if hasattr(part, "detach"):  # torch tensor
        part = part.detach().to("cpu").double().numpy()
        return part * PEAK
    part = np.asarray(part)
    if part.dtype == np.uint8:
        return part.astype(np.float64)
    if np.issubdtype(part.dtype, np.floating):
        return part.astype(np.float64) * PEAK
    raise ImageError(f"metric input must be uint8 or float in [0, 1], got dtype {part.dtype}")


def psnr(a: Any, b: Any, *, tile: int = DEFAULT_TILE) -> float:
    """PSNR in dB between two images (8-bit peak 255); ``inf`` when identical.

    Args:
        a, b: [H, W, C] uint8 numpy, or float (numpy / torch) in [0, 1].
        tile: strips of about tile x tile pixels (tile^2 / W rows: memory bounded by tile^2 * C float64 per image
            whatever the width; a 16K-wide image takes 64-row strips).
    """
    h, w, c = _check_pair(a, b)
    sse = 0.0
    step = max(1, int(tile) * int(tile) // w)
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        d = _tile(a, r0, r1, 0, w) - _tile(b, r0, r1, 0, w)
        sse += float(np.einsum("ijk,ijk->", d, d))
    return psnr_from_sse(sse, h * w * c)


def ms_ssim_scales(height: int, width: int, max_scales: int = 5) -> int:
    """Number of MS-SSIM scales an image supports: the largest L <= max_scales with min(H, W) >> (L-1) >= 11."""
    side = min(int(height), int(width))
    if side < WINDOW_SIZE:
        raise ImageError(f"SSIM needs an image of at least {WINDOW_SIZE}x{WINDOW_SIZE} px, got {height}x{width}")
    levels = 1
    while levels < max_scales and (side >> levels) >= WINDOW_SIZE:
        levels += 1
    return levels


def _filt(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Valid separable filter of a 2-D array: [h, w] -> [h-10, w-10]."""
    r = WINDOW_SIZE // 2
    y = correlate1d(x, g, axis=0, mode="nearest")[r:-r]
    return correlate1d(y, g, axis=1, mode="nearest")[:, r:-r]


def _maps(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ssim map, cs map) of two 2-D float64 arrays on the 0..255 scale, 'valid': [h-10, w-10] each."""
    c1, c2 = (K1 * PEAK) ** 2, (K2 * PEAK) ** 2
    mx, my = _filt(x, g), _filt(y, g)
    sxx = _filt(x * x, g) - mx * mx
    syy = _filt(y * y, g) - my * my
    sxy = _filt(x * y, g) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return lum * cs, cs


def _pool(x: np.ndarray) -> np.ndarray:
    """2x2 mean, dropping an odd last row / column: [h, w] -> [h // 2, w // 2]."""
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) * 0.25


def pyramid_sums(a: Any, b: Any, levels: int, tile: int = DEFAULT_TILE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tile-by-tile sums of the SSIM and CS maps at each scale.

    Args:
        a, b: [H, W, C] images (see module docstring).
        levels: number of scales (1 = plain SSIM); every scale must be >= 11 px on both sides.
        tile: tile edge in px, rounded up to a multiple of 2^(levels-1).
    Returns:
        (ssim_sums [levels, C] float64, cs_sums [levels, C] float64, counts [levels] int64 map pixels per channel).
    """
    h, w, c = _check_pair(a, b)
    if ms_ssim_scales(h, w, levels) < levels:
        raise ImageError(f"a {h}x{w} image is too small for {levels} SSIM scales")
    unit = 1 << (levels - 1)
    tile = max(unit, -(-int(tile) // unit) * unit)
    halo = (WINDOW_SIZE - 1) * unit
    g = window_1d()
    ssim_sums = np.zeros((levels, c))
    cs_sums = np.zeros((levels, c))
    sizes = [((h >> j) - (WINDOW_SIZE - 1), (w >> j) - (WINDOW_SIZE - 1)) for j in range(levels)]
    counts = np.array([mh * mw for mh, mw in sizes], dtype=np.int64)

    def tile_sums(job: tuple[int, int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        r0, r1, c0, c1, ch = job
        s_out, cs_out = np.zeros(levels), np.zeros(levels)
        x, y = _tile(a, r0, r1, c0, c1, ch), _tile(b, r0, r1, c0, c1, ch)
        for j in range(levels):
            if j:
                x, y = _pool(x), _pool(y)
            s = 1 << j
            mh, mw = sizes[j]
            # rows / cols of this scale's global map owned by this tile, in local coordinates
            lr1 = min((r0 + tile) // s, mh) - r0 // s
            lc1 = min((c0 + tile) // s, mw) - c0 // s
            if lr1 <= 0 or lc1 <= 0:
                continue
            s_map, cs_map = _maps(x[:lr1 + WINDOW_SIZE - 1, :lc1 + WINDOW_SIZE - 1],
                                  y[:lr1 + WINDOW_SIZE - 1, :lc1 + WINDOW_SIZE - 1], g)
            s_out[j], cs_out[j] = s_map.sum(), cs_map.sum()
        return s_out, cs_out

    jobs = [(r0, min(h, r0 + tile + halo), c0, min(w, c0 + tile + halo), ch)
            for r0 in range(0, h, tile) for c0 in range(0, w, tile) for ch in range(c)]
    workers = min(applied().cpus, len(jobs))
    # scipy's filters release the GIL: tiles run on the process's CPUs; results are summed in tile order, so the
    # value does not depend on the thread count.
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(tile_sums, jobs))
    else:
        results = [tile_sums(job) for job in jobs]
    for (_, _, _, _, ch), (s_out, cs_out) in zip(jobs, results):
        ssim_sums[:, ch] += s_out
        cs_sums[:, ch] += cs_out
    return ssim_sums, cs_sums, counts


def ssim(a: Any, b: Any, *, tile: int = DEFAULT_TILE) -> float:
    """Mean SSIM ('valid' 11x11 Gaussian window, sigma 1.5), averaged over channels; 1.0 when identical.

    Args:
        a, b: [H, W, C] uint8 numpy, or float (numpy / torch) in [0, 1]; H, W >= 11.
        tile: tile edge in px (tiles overlap by 10 px; the result does not depend on it beyond float64 rounding).
    """
    ssim_sums, _, counts = pyramid_sums(a, b, 1, tile)
    return float(np.mean(ssim_sums[0] / counts[0]))


def ms_ssim(a: Any, b: Any, *, tile: int = DEFAULT_TILE, max_scales: int = 5) -> float:
    """MS-SSIM with the standard 5-scale weights (fewer scales, renormalised weights, for small images).

    Args:
        a, b: [H, W, C] uint8 numpy, or float (numpy / torch) in [0, 1]; min(H, W) >= 11.
        tile: tile edge in px (rounded up to a multiple of 2^(scales-1)).
        max_scales: 1..5.
    """
    if not 1 <= int(max_scales) <= len(MS_SSIM_WEIGHTS):
        raise ValueError(f"max_scales must be in 1..{len(MS_SSIM_WEIGHTS)}, got {max_scales}")
    h, w, _ = _check_pair(a, b)
    levels = ms_ssim_scales(h, w, int(max_scales))
    weights = np.array(MS_SSIM_WEIGHTS[:levels])
    weights = weights / weights.sum()
    ssim_sums, cs_sums, counts = pyramid_sums(a, b, levels, tile)
    vals = cs_sums / counts[:, None]  # [levels, C]
    vals[-1] = ssim_sums[-1] / counts[-1]
    vals = np.maximum(vals, 0.0)
    per_channel = np.prod(vals ** weights[:, None], axis=0)
    return float(np.mean(per_channel))


__all__ = ["psnr", "ssim", "ms_ssim", "ms_ssim_scales", "pyramid_sums", "MS_SSIM_WEIGHTS", "DEFAULT_TILE"]
