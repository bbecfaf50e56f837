"""Settings of the record codec (DESIGN §5). Byte layout: ``codec/FORMAT.md``."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..settings import Settings

#: Hard cap on Gaussians in one record (16K at CR >= 2.4); the decoder refuses more before allocating.
MAX_GAUSSIANS = 1 << 25
#: Hard cap on either image side in pixels (DIV16K is 16320 x 10880).
MAX_SIDE = 1 << 20


@dataclass(frozen=True)
class CodecConfig(Settings):
    """How Gaussians are quantised and entropy coded.

    Attributes:
        mean_frac_bits: means are stored on a grid of ``1 / 2**mean_frac_bits`` px (0..8). The grid is in
            pixels, so precision does not depend on the image size; bits per Gaussian depend only on density.
        scale_bits: log-scales (both axes on one grid) take ``2**scale_bits`` levels between the record's
            smallest and largest log-scale, 1..8.
        rotation_bits: levels ``2**rotation_bits`` for the rotation modulo pi (uniform on [0, pi)), 1..8.
        color_bits: colours take ``2**color_bits`` levels over the widest channel's range (one step for all
            channels, each from its own minimum), 1..8.
        lzma_preset: LZMA2 preset 0..9 used by the encoder (the decoder does not need it).

    The defaults cost about 0.2-0.4 dB PSNR at CR 50 and stay under 7 bytes per Gaussian (see the codec
    report / ``python -m smartsplat_dist.codec.measure``).
    """

    mean_frac_bits: int = 3
    scale_bits: int = 8
    rotation_bits: int = 7
    color_bits: int = 8
    lzma_preset: int = 9

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("mean_frac_bits", 0, 8),
            ("scale_bits", 1, 8),
            ("rotation_bits", 1, 8),
            ("color_bits", 1, 8),
            ("lzma_preset", 0, 9),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ConfigError(f"CodecConfig.{name} must be an integer in {lo}..{hi}, got {value!r}")

