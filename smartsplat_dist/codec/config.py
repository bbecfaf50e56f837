"""Settings of the record codec (docs/design.md §5). Byte layout: ``codec/FORMAT.md``."""
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
        scale_step: record versions 2 and 3: step of ln(scale) (fixed, not spread over the data's range).
        rotation_tolerance: record versions 2 and 3: px; each Gaussian's rotation gets the levels that keep its
            1-sigma ellipse within about this distance, from its quantised elongation (a round one stores none).
        color_step: record versions 2 and 3: step of every colour channel.

    Records are written in version 3, which uses ``mean_frac_bits``, ``scale_step``, ``rotation_tolerance`` and
    ``color_step`` (starting points: the encoder's rate control scales them to fill the byte budget);
    ``scale_bits``, ``rotation_bits``, ``color_bits`` and ``lzma_preset`` describe version-1 records (read back
    from old records; :func:`~smartsplat_dist.codec.fake_quantize_v1` follows them).

    The defaults cost about 0.2-0.4 dB PSNR at CR 50 and stay under 7 bytes per Gaussian (see the codec
    report / ``python -m smartsplat_dist.bench.quantization``).
    """

    mean_frac_bits: int = 3
    scale_bits: int = 8
    rotation_bits: int = 7
    color_bits: int = 8
    lzma_preset: int = 9
    scale_step: float = 1.0 / 32.0
    rotation_tolerance: float = 0.05
    color_step: float = 1.0 / 256.0  # 2x coarser than 1/512 relative to the other steps: +0.18 dB mean at equal bytes

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
        for name, lo, hi in (("scale_step", 1e-6, 10.0), ("rotation_tolerance", 1e-6, 1e6), ("color_step", 1e-9, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ConfigError(f"CodecConfig.{name} must be a number in [{lo:g}, {hi:g}], got {value!r}")

