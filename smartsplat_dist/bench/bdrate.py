"""Bjøntegaard delta rate and delta PSNR between two rate–distortion curves.

The standard formulation (Bjøntegaard, VCEG-M33; piecewise-cubic variant of JCTVC/JVET common test conditions):

* BD-rate: fit ``log(rate)`` as a function of quality for each curve, integrate both fits over the quality
  interval where the curves overlap, and turn the mean difference of log-rates into a percentage:
  ``(exp(mean(log r_test - log r_ref)) - 1) * 100``. Negative = the test curve needs fewer bits for the same
  quality.
* BD-PSNR (or BD-quality): fit quality as a function of ``log(rate)`` and average the difference over the
  overlapping log-rate interval. Positive = the test curve has higher quality at the same rate.

``method="pchip"`` (default) interpolates with a monotone piecewise cubic (Fritsch–Carlson, as in the JVET Excel
sheet and CompressAI); ``method="poly"`` fits one cubic polynomial through all points (the original VCEG-M33;
with fewer than 4 points the degree drops to ``n - 1``).

Any rate unit works (bits, bytes, bpp) as long as both curves use the same one.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator

from ..errors import ConfigError

METHODS = ("pchip", "poly")


def _curve(rate: Sequence[float], quality: Sequence[float], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one curve; return (log rate [n], quality [n]) as float64."""
    r = np.asarray(rate, dtype=np.float64).reshape(-1)
    q = np.asarray(quality, dtype=np.float64).reshape(-1)
    if r.shape != q.shape:
        raise ConfigError(f"{name} curve: {r.size} rates but {q.size} quality values")
    if r.size < 2:
        raise ConfigError(f"{name} curve: BD metrics need at least 2 points, got {r.size}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise ConfigError(f"{name} curve: rates and quality values must be finite")
    if np.any(r <= 0):
        raise ConfigError(f"{name} curve: rates must be > 0")
    return np.log(r), q


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    """Integral over [lo, hi] of the interpolation of y(x) (x need not be sorted)."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    if method == "poly":
        deg = min(3, xs.size - 1)
        # Centre and scale x for a well-conditioned fit; integrate the polynomial exactly.
        mu, sd = xs.mean(), xs.std() or 1.0
        coef = np.polyfit((xs - mu) / sd, ys, deg)
        prim = np.polyint(coef)
        return float((np.polyval(prim, (hi - mu) / sd) - np.polyval(prim, (lo - mu) / sd)) * sd)
    if method != "pchip":
        raise ConfigError(f"unknown BD method {method!r}; choose one of {', '.join(METHODS)}")
    # PCHIP needs strictly increasing x: average duplicates.
    ux, inv = np.unique(xs, return_inverse=True)
    if ux.size < 2:
        raise ConfigError("BD metrics need at least 2 distinct points per curve")
    uy = np.bincount(inv, weights=ys) / np.bincount(inv)
    return float(PchipInterpolator(ux, uy, extrapolate=False).integrate(lo, hi))


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float] | None:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    return (float(lo), float(hi)) if hi > lo else None


def bd_rate(
    rate_ref: Sequence[float],
    quality_ref: Sequence[float],
    rate_test: Sequence[float],
    quality_test: Sequence[float],
    method: str = "pchip",
) -> float:
    """Bjøntegaard delta rate of ``test`` against ``ref``, percent.

    Args:
        rate_ref, quality_ref: [n] reference curve (rate > 0, e.g. bpp; quality e.g. PSNR dB).
        rate_test, quality_test: [m] test curve, same units.
        method: ``pchip`` or ``poly``.
    Returns:
        The average rate difference at equal quality in percent (−50 = half the bits), or NaN when the two
        curves' quality ranges do not overlap.
    """
    lr_ref, q_ref = _curve(rate_ref, quality_ref, "reference")
    lr_test, q_test = _curve(rate_test, quality_test, "test")
    span = _overlap(q_ref, q_test)
    if span is None:
        return math.nan
    lo, hi = span
    diff = (_integral(q_test, lr_test, lo, hi, method) - _integral(q_ref, lr_ref, lo, hi, method)) / (hi - lo)
    return (math.exp(diff) - 1.0) * 100.0


def bd_quality(
    rate_ref: Sequence[float],
    quality_ref: Sequence[float],
    rate_test: Sequence[float],
    quality_test: Sequence[float],
    method: str = "pchip",
) -> float:
    """Bjøntegaard delta quality (BD-PSNR when quality is PSNR) of ``test`` against ``ref``.

    Args: as :func:`bd_rate`.
    Returns:
        The average quality difference at equal rate (test − ref, in quality units), or NaN when the log-rate
        ranges do not overlap.
    """
    lr_ref, q_ref = _curve(rate_ref, quality_ref, "reference")
    lr_test, q_test = _curve(rate_test, quality_test, "test")
    span = _overlap(lr_ref, lr_test)
    if span is None:
        return math.nan
    lo, hi = span
    return (_integral(lr_test, q_test, lo, hi, method) - _integral(lr_ref, q_ref, lo, hi, method)) / (hi - lo)


#: BD-PSNR is BD-quality with PSNR as the quality.
bd_psnr = bd_quality

__all__ = ["bd_rate", "bd_quality", "bd_psnr", "METHODS"]
