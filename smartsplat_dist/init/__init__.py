"""Initial Gaussians for an image: SmartSplat's feature-smart sampling (docs/design.md §3) or a random baseline.

``initialize(image, n, config, seed)`` steps for ``method="smart"``:

1. Tiles of eq. 1-7 (T = 1024, adaptive stride, clipped) — ``tiles.py``.
2. Per tile (with a halo, so borders are exact): Sobel magnitude and 5×5 colour variance averaged over
   channels, each divided by its tile max, w = λm·m̃ + (1−λm)·ṽ — ``features.py``.
3. floor(λg·N) points split evenly over tiles (eq. 13), drawn per tile without replacement ∝ w; mean at the
   pixel centre (x + 0.5, y + 0.5); scale s_base·exp(−½w), s_base = ⅓·sqrt(HW/(πN)) — ``importance.py``.
   Pixels drawn twice by overlapping tiles are kept once; their slots go to step 4.
4. The rest: exclusion-based uniform points, farther than r = max(s_base, median importance scale) from every
   accepted point; scale sqrt(mean d² to the K = 3 nearest other points; ``knn_includes_self=True`` counts
   the point itself at distance 0, as the reference code does) — ``uniform.py``. Candidates are drawn in
   bounded rounds; a shortfall (only near saturation) is filled by best-candidate sampling.
5. Colour: Gaussian-weighted median over a 9×9 grid in the disc of radius s, then (default) divided by the
   coverage at the centre (sum of all Gaussians' weights there) — ``colors.py``; initial PSNR at CR 50 on
   photos-768 rose from 10.5 to 13.7 dB with it (InitConfig docstring).
6. Rotation 0. All randomness comes from numpy Generators seeded by (seed, stream, tile): deterministic and
   independent of the thread count.

Memory: one tile of features at a time (~40 MB for T = 1024) plus O(N) point arrays (~100 B per Gaussian
at the peak, in the K-NN tree and the coverage pass); the only full-size array is the caller's uint8 image.
Measured (``smartsplat bench init``): a DIV16K-like 16320×10840 image at CR 100 (N = 758,180) needs
~100 MB beyond its 506 MB of pixels and ~9 CPU-seconds on this 2-core machine.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ImageError
from ..model import Gaussians
from .colors import normalize_by_coverage, weighted_median_colors
from .config import InitConfig
from .importance import TileWeightsCache, base_scale, importance_samples
from .random_init import random_points
from .tiles import Tile, samples_per_tile, tile_layout
from .uniform import exclusion_samples, knn_scales


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        what = f"{image.dtype} {list(image.shape)}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ImageError(f"initialize needs a uint8 [H, W, 3] array, got {what}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageError(f"initialize needs a non-empty image, got {image.shape[0]}x{image.shape[1]}")


def _to_gaussians(means: np.ndarray, scales: np.ndarray, colors: np.ndarray) -> Gaussians:
    n = means.shape[0]
    s = torch.from_numpy(np.ascontiguousarray(scales, dtype=np.float32)).reshape(n, 1).repeat(1, 2)
    return Gaussians(torch.from_numpy(np.ascontiguousarray(means, dtype=np.float32)).reshape(n, 2), s,
                     torch.zeros(n, dtype=torch.float32),
                     torch.from_numpy(np.ascontiguousarray(colors, dtype=np.float32)).reshape(n, 3))


def smart_points(image: np.ndarray, n: int, config: InitConfig, seed: int = 0,
                 weights_cache: TileWeightsCache | None = None) -> dict[str, np.ndarray]:
    """Feature-smart points before conversion (float64), with which step produced each (``weights_cache``: see
    :func:`initialize`).

    Returns:
        dict: means [n, 2], scales [n], colors [n, 3] float32, is_importance [n] bool, weights [M] float32
        (of the importance points), radius (exclusion radius, 0-d), n_filled (best-candidate fills, 0-d).
    """
    H, W = image.shape[:2]
    s_base = base_scale(H, W, n)
    n_vs = int(np.floor(config.lambda_g * n))
    imp_means, imp_scales, imp_w = importance_samples(
        image, n_vs, s_base, tile_size=config.tile_size, lambda_m=config.lambda_m,
        variance_window=config.variance_window, epsilon=config.epsilon, seed=seed, weights_cache=weights_cache)
    radius = max(s_base, float(np.median(imp_scales))) if imp_scales.size else s_base
    rng = np.random.default_rng([int(seed), 2])
    uni_means, n_filled = exclusion_samples(imp_means, n - imp_means.shape[0], H, W, radius, rng,
                                            config.max_uniform_rounds)
    means = np.concatenate([imp_means, uni_means], axis=0)
    uni_scales = knn_scales(means, uni_means, config.k_neighbors, config.knn_includes_self, fallback=s_base)
    scales = np.concatenate([imp_scales, uni_scales])
    colors = weighted_median_colors(image, means, scales, config.median_grid)
    is_imp = np.zeros(n, dtype=bool)
    is_imp[:imp_means.shape[0]] = True
    return {"means": means, "scales": scales, "colors": colors, "is_importance": is_imp, "weights": imp_w,
            "radius": np.asarray(radius), "n_filled": np.asarray(n_filled)}


def initialize(image: np.ndarray, n: int, config: InitConfig = InitConfig(), seed: int = 0,
               weights_cache: TileWeightsCache | None = None) -> Gaussians:
    """Initial Gaussians for ``image``.

    Args:
        image: [H, W, 3] uint8.
        n: number of Gaussians (>= 1), e.g. ``n_gaussians_for_cr(H, W, cr)``.
        config: method and settings (see InitConfig).
        seed: same image + config + seed ⇒ identical tensors.
        weights_cache: a :class:`TileWeightsCache` to keep the smart sampling's per-tile weights in, passed
            again to a later call with the same image and config (any ``n``, ``seed``), which then skips the
            feature pass: the same result as without it, at 4 bytes per pixel held while the cache lives
            (budget mode).
    Returns:
        Gaussians on CPU, float32: means [n, 2] px, scales [n, 2] px (isotropic), rotations [n] = 0,
        colors [n, 3] in [0, 1] (divided by the coverage when ``config.color_normalization == "coverage"``).
    """
    _check_image(image)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ImageError(f"initialize needs n >= 1 Gaussians, got {n!r}")
    n = int(n)
    image = np.ascontiguousarray(image)
    H, W = image.shape[:2]
    if config.method == "random":
        means, scales, colors = random_points(image, n, config.random_scale_factor * base_scale(H, W, n), seed)
    else:
        pts = smart_points(image, n, config, seed, weights_cache)
        means, scales, colors = pts["means"], pts["scales"], pts["colors"]
    if config.color_normalization == "coverage":
        colors = normalize_by_coverage(colors, means, scales)
    return _to_gaussians(means, scales, colors)


__all__ = ["InitConfig", "initialize", "smart_points", "TileWeightsCache", "base_scale", "tile_layout", "samples_per_tile", "Tile"]
