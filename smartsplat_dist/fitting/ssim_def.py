"""The one definition of the quality measures every SSIM and PSNR in the project computes (Wang et al. 2004):
an 11x11 separable Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03 (C1 = (K1 L)^2, C2 = (K2 L)^2 for the
dynamic range L: 255 for the metrics on uint8 values, 1 for the training loss on [0, 1] renders), 'valid' maps
(only where the whole window lies inside the image: HALO = 10 rows and columns fewer); PSNR = 10 log10(L^2 / MSE).
"""
from __future__ import annotations

import math

import numpy as np

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
HALO = WINDOW_SIZE - 1
K1, K2 = 0.01, 0.03
#: The peak of 8-bit images: the metrics' L.
PEAK = 255.0


def window_1d() -> np.ndarray:
    """The normalised 1-D window: [11] float64 (sigma 1.5)."""
    k = np.arange(WINDOW_SIZE, dtype=np.float64) - (WINDOW_SIZE - 1) / 2
    g = np.exp(-(k * k) / (2 * WINDOW_SIGMA ** 2))
    return g / g.sum()


def psnr_from_sse(sse: float, n: int | float, peak: float = PEAK) -> float:
    """PSNR in dB of ``n`` values whose squared errors sum to ``sse`` (on the scale of ``peak``); inf if 0."""
    mse = sse / n
    return math.inf if mse <= 0.0 else 10.0 * math.log10(peak * peak / mse)


__all__ = ["WINDOW_SIZE", "WINDOW_SIGMA", "HALO", "K1", "K2", "PEAK", "window_1d", "psnr_from_sse"]
