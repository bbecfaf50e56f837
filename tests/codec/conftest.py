"""Gaussians with the statistics of a fitted image (positions denser on edges, log-normal anisotropic scales,
spread rotations, colours of the image under them, some outside [0, 1]), made from a shipped example."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from smartsplat_dist.model import Gaussians, n_gaussians_for_cr

EXAMPLES = Path(__file__).resolve().parents[2] / "smartsplat_dist" / "examples"


def realistic_gaussians(image: np.ndarray, n: int, seed: int = 0) -> Gaussians:
    """N Gaussians on an image [H, W, 3] uint8: 70 % drawn by gradient magnitude, 30 % uniform."""
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    gray = image.astype(np.float32).mean(axis=2)
    gy, gx = np.gradient(gray)
    weight = np.hypot(gx, gy).ravel() + 1e-3
    ni = int(0.7 * n)
    idx = rng.choice(h * w, ni, replace=False, p=weight / weight.sum())
    ys, xs = np.divmod(idx, w)
    pts = np.concatenate([np.stack([xs + rng.random(ni), ys + rng.random(ni)], 1),
                          rng.random((n - ni, 2)) * [w, h]]).astype(np.float32)
    s_base = math.sqrt(h * w / (math.pi * n)) / 3
    # Measured on fits of real photos (CR 50, 300 steps): log-scales spread ~0.8, anisotropy ln(sx/sy) with
    # median ~0.5, rotations spread around their start 0, colours correlated across channels.
    log_s = np.log(s_base) + rng.normal(0, 0.8, n)[:, None] + np.abs(rng.normal(0, 0.5, n))[:, None] * [0.5, -0.5]
    scales = np.exp(log_s).astype(np.float32)
    rot = rng.normal(0, 0.6, n).astype(np.float32)
    px = image[np.clip(pts[:, 1].astype(int), 0, h - 1), np.clip(pts[:, 0].astype(int), 0, w - 1)]
    colors = (px / 255.0 * 0.6 + rng.normal(0, 0.08, (n, 1)) + rng.normal(0, 0.02, (n, 3))).astype(np.float32)
    return Gaussians(torch.from_numpy(pts), torch.from_numpy(scales), torch.from_numpy(rot), torch.from_numpy(colors))


@pytest.fixture(scope="session")
def example_image() -> np.ndarray:
    return np.asarray(Image.open(EXAMPLES / "Mountain.png").convert("RGB"))


@pytest.fixture(scope="session")
def fitted_like(example_image) -> tuple[Gaussians, int, int]:
    """(Gaussians, H, W) at the CR-50 budget of a 384x256 example."""
    h, w = example_image.shape[:2]
    return realistic_gaussians(example_image, n_gaussians_for_cr(h, w, 50)), h, w
