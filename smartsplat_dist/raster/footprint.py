"""Per-Gaussian footprint math shared by every backend (pure torch, any device).

Shapes: N Gaussians. ``conics`` returns the upper triangle (a, b, c) of Sigma^-1 so that
``sigma(d) = 1/2 (a dx^2 + 2 b dx dy + c dy^2)``.
"""
from __future__ import annotations

import torch

from ..model import SIGMA_CUT


def conics(scales: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Inverse covariance of each Gaussian.

    Args:
        scales: [N, 2] float32, pixels, > 0.
        rotations: [N] float32, radians.
    Returns:
        [N, 3] float32 (a, b, c) with Sigma^-1 = [[a, b], [b, c]].
    """
    cos, sin = torch.cos(rotations), torch.sin(rotations)
    inv_sx2 = 1.0 / (scales[:, 0] * scales[:, 0])
    inv_sy2 = 1.0 / (scales[:, 1] * scales[:, 1])
    # Sigma^-1 = R diag(1/sx^2, 1/sy^2) R^T
    a = cos * cos * inv_sx2 + sin * sin * inv_sy2
    b = cos * sin * (inv_sx2 - inv_sy2)
    c = sin * sin * inv_sx2 + cos * cos * inv_sy2
    return torch.stack([a, b, c], dim=-1)


def bbox_half_extent(scales: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Half-size of the axis-aligned box holding each Gaussian's 3.33-sigma ellipse.

    Args:
        scales: [N, 2] float32, pixels.
        rotations: [N] float32, radians.
    Returns:
        [N, 2] float32 (half width, half height) in pixels: SIGMA_CUT * sqrt(diag(Sigma)).
    """
    cos, sin = torch.cos(rotations), torch.sin(rotations)
    sx2, sy2 = scales[:, 0] ** 2, scales[:, 1] ** 2
    var_x = cos * cos * sx2 + sin * sin * sy2
    var_y = sin * sin * sx2 + cos * cos * sy2
    return SIGMA_CUT * torch.sqrt(torch.stack([var_x, var_y], dim=-1))
