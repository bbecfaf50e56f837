"""Settings of the Gaussian initialisation (docs/design.md §3, seed "Adaptive Step-Size tiled Variational Sampling")."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..settings import Settings

METHODS = ("smart", "random")
COLOR_NORMALIZATIONS = ("coverage", "none")


@dataclass(frozen=True)
class InitConfig(Settings):
    """How the initial Gaussians are placed, sized and coloured.

    Attributes:
        method: ``"smart"`` (feature-smart sampling of the seed) or ``"random"`` (uniform positions, constant
            scale ``random_scale_factor × s_base``, colour of the pixel under each centre).
        tile_size: T of eq. 1-7 (pixels).
        lambda_m: weight of the normalised gradient magnitude in w = λm·m̃ + (1−λm)·ṽ (eq. 10).
        lambda_g: share of N drawn by variational (importance) sampling; the rest is exclusion-based uniform.
            The importance count is ``floor(lambda_g * N)``.
        k_neighbors: K of the uniform points' scale sqrt(mean of squared distances to the K nearest points).
        knn_includes_self: count the point itself (distance 0) among the K, as the reference code does
            (K = 3 gives sqrt((d1² + d2²) / 3)); False (default) uses the K nearest *other* points. Measured
            (``smartsplat bench init --quick``, photos-768 Bamboo, Dragonfly, God-Rays, Green-Maple,
            IMG_20191224_234846 at CR 50, seed 0, initial PSNR before fitting): with coverage normalisation
            False gives 13.67 dB vs 12.02 dB for True (mean); after 200 Adam steps of L1 on Bamboo, Mountain,
            flowers it was +0.08 / +0.25 / +0.05 dB ahead. The reference convention stays available.
        variance_window: side of the square window of the colour variance (odd, 3..15).
        median_grid: the colour is the Gaussian-weighted median over a ``median_grid``² grid spanning
            [−s, s]², restricted to the disc of radius s, weights exp(−d²/2s²) (odd, 3..15).
        epsilon: ε of eq. 9 (features are in [0, 1] intensity units).
        color_normalization: ``"coverage"`` (default) divides each initial colour by the summed weight of all
            Gaussians (itself included) at its centre, so the sum-blended image does not start over-bright;
            ``"none"`` keeps the raw median colours. Measured as above (initial PSNR, mean of 5 images):
            smart/K-other 10.52 → 13.67 dB (brightness 1.34× → 0.71×), smart/K-self 11.84 → 12.02 dB,
            random 8.87 → 8.79 dB (already dark: 0.22×, coverage changes little). After 200 fit steps
            (L1, Adam, CPU) "coverage" was ahead by +1.3 (Bamboo), +0.1 (Mountain), +0.9 dB (flowers).
        random_scale_factor: the random init's constant scale is this × s_base (1.0: the seed's s_base;
            its sum-blended image then averages only 0.22× the image brightness, 2π s_base² N / HW = 2/9).
        max_uniform_rounds: bounded number of dart-throwing rounds of the exclusion sampler; what is still
            missing afterwards is filled by best-candidate sampling (farthest from all accepted points).
    """

    method: str = "smart"
    tile_size: int = 1024
    lambda_m: float = 0.9
    lambda_g: float = 0.7
    k_neighbors: int = 3
    knn_includes_self: bool = False
    variance_window: int = 5
    median_grid: int = 9
    epsilon: float = 1e-8
    color_normalization: str = "coverage"
    max_uniform_rounds: int = 32
    random_scale_factor: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"init method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.color_normalization not in COLOR_NORMALIZATIONS:
            raise ConfigError(f"init color_normalization must be one of {', '.join(COLOR_NORMALIZATIONS)}, "
                              f"got {self.color_normalization!r}")
        ints = {"tile_size": (self.tile_size, 8), "k_neighbors": (self.k_neighbors, 1),
                "max_uniform_rounds": (self.max_uniform_rounds, 1), "variance_window": (self.variance_window, 3),
                "median_grid": (self.median_grid, 3)}
        for name, (value, low) in ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"init {name} must be an integer >= {low}, got {value!r}")
        if self.variance_window % 2 == 0 or self.variance_window > 15:
            raise ConfigError(f"init variance_window must be odd and <= 15, got {self.variance_window}")
        if self.median_grid % 2 == 0 or self.median_grid > 15:
            raise ConfigError(f"init median_grid must be odd and <= 15, got {self.median_grid}")
        for name in ("lambda_m", "lambda_g"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"init {name} must be a number in [0, 1], got {value!r}")
        if isinstance(self.random_scale_factor, bool) or not isinstance(self.random_scale_factor, (int, float)) \
                or not 0.0 < self.random_scale_factor <= 100.0:
            raise ConfigError(f"init random_scale_factor must be in (0, 100], got {self.random_scale_factor!r}")
        if not isinstance(self.epsilon, (int, float)) or not 0.0 < self.epsilon < 1e-2:
            raise ConfigError(f"init epsilon must be in (0, 0.01), got {self.epsilon!r}")
        if not isinstance(self.knn_includes_self, bool):
            raise ConfigError(f"init knn_includes_self must be a bool, got {self.knn_includes_self!r}")

