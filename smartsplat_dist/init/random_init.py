"""Random initialisation: the baseline the feature-smart one is compared with."""
from __future__ import annotations

import numpy as np

from .colors import nearest_pixel_colors


def random_points(image: np.ndarray, n: int, s_base: float, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` uniform positions in [0, W)×[0, H), constant isotropic scale ``s_base``, pixel colours.

    Args:
        image: [H, W, 3] uint8.
    Returns:
        (means [n, 2] float64 pixels, scales [n] float64, colors [n, 3] float32 in [0, 1] of the pixel
        containing each mean).
    """
    H, W = image.shape[:2]
    rng = np.random.default_rng([int(seed), 3])
    means = rng.random((n, 2)) * np.array([W, H], dtype=np.float64)
    return means, np.full(n, float(s_base)), nearest_pixel_colors(image, means)
