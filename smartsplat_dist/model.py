"""The Gaussian model every backend implements (docs/design.md §1).

Per Gaussian i: mean ``m_i`` (x, y in pixels), scales ``s_i`` (2, pixels, > 0), rotation ``theta_i``
(radians), colour ``c_i`` (RGB, linear in [0, 1] of 8-bit sRGB values). No opacity.

Covariance ``Sigma_i = R(theta_i) diag(s_i^2) R(theta_i)^T``. Pixel (x, y) is evaluated at its centre
``p = (x + 0.5, y + 0.5)``; ``w_i(p) = exp(-1/2 (p - m_i)^T Sigma_i^-1 (p - m_i))``; terms with
``w_i(p) < 1/255`` are skipped. The image is the plain sum ``I(p) = sum_i c_i w_i(p)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: A term with weight below this is skipped (the footprint cut).
ALPHA_MIN = 1.0 / 255.0
#: Mahalanobis distance where the weight falls to ALPHA_MIN: sqrt(2 ln 255) ~= 3.33.
SIGMA_CUT = math.sqrt(2.0 * math.log(255.0))
#: Exponent cut: a term is kept when sigma = 1/2 d^T Sigma^-1 d <= SIGMA_MAX.
SIGMA_MAX = math.log(255.0)


@dataclass
class Gaussians:
    """A set of N image-space Gaussians.

    Attributes:
        means: [N, 2] float32, pixels (x = column, y = row).
        scales: [N, 2] float32, pixels, > 0.
        rotations: [N] float32, radians.
        colors: [N, 3] float32, linear RGB in [0, 1] units (may leave [0, 1] while fitting).
    """

    means: torch.Tensor
    scales: torch.Tensor
    rotations: torch.Tensor
    colors: torch.Tensor

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        shapes = {
            "means": (self.means, (n, 2)),
            "scales": (self.scales, (n, 2)),
            "rotations": (self.rotations, (n,)),
            "colors": (self.colors, (n, 3)),
        }
        for name, (t, shape) in shapes.items():
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"Gaussians.{name} must be a torch.Tensor, got {type(t).__name__}")
            if tuple(t.shape) != shape:
                raise ValueError(f"Gaussians.{name} must have shape {list(shape)}, got {list(t.shape)}")
            if t.dtype != torch.float32:
                raise ValueError(f"Gaussians.{name} must be float32, got {t.dtype}")

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def device(self) -> torch.device:
        return self.means.device

    @classmethod
    def empty(cls, device: str | torch.device = "cpu") -> "Gaussians":
        z = lambda *s: torch.zeros(*s, dtype=torch.float32, device=device)  # noqa: E731
        return cls(z(0, 2), z(0, 2), z(0), z(0, 3))

    def to(self, device: str | torch.device) -> "Gaussians":
        return Gaussians(*(t.to(device) for t in self.tensors()))

    def detach(self) -> "Gaussians":
        return Gaussians(*(t.detach().clone() for t in self.tensors()))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(means, scales, rotations, colors), in that order."""
        return self.means, self.scales, self.rotations, self.colors

    def scaled(self, factor: float) -> "Gaussians":
        """The same image at ``factor`` times the resolution (Gaussians are resolution free)."""
        return Gaussians(self.means * factor, self.scales * factor, self.rotations, self.colors)

    def shifted(self, dx: float, dy: float) -> "Gaussians":
        """Move the origin so that pixel (dx, dy) becomes (0, 0): renders a window of the image."""
        offset = torch.tensor([dx, dy], dtype=torch.float32, device=self.device)
        return Gaussians(self.means - offset, self.scales, self.rotations, self.colors)


def n_gaussians_for_cr(height: int, width: int, cr: float) -> int:
    """The paper's budget ``N = floor(3 H W / (7 CR))`` (7 bytes per Gaussian at the nominal CR)."""
    if cr <= 0:
        raise ValueError(f"compression ratio must be > 0, got {cr}")
    return max(1, int(3 * height * width // (7 * cr)))
