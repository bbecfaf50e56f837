"""Fitting Gaussians to an image (docs/design.md §4) and the image quality metrics.

``fit(gaussians, image, config, backend, progress, quantizer) -> (Gaussians, stats)``; ``FitConfig``;
metrics ``psnr``, ``ssim``, ``ms_ssim`` (exact, tile by tile); the training loss SSIM in :mod:`.loss`.
"""
from .config import LR_PRESETS, FitConfig
from .metrics import ms_ssim, psnr, ssim
from .optimize import fit

__all__ = ["fit", "FitConfig", "LR_PRESETS", "psnr", "ssim", "ms_ssim"]
