"""The whole configuration of one encode, as frozen dataclasses (recorded in an archive's run.json).

The render backend is not part of it: it is a runtime choice (the same record comes out of any backend up to
float32 rounding), so an archive begun on a GPU cluster can be resumed on CPU nodes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codec import CodecConfig
from .errors import ConfigError
from .fitting import FitConfig
from .init import InitConfig
from .io.images import DEFAULT_MAX_PIXELS
from .settings import Settings


@dataclass(frozen=True)
class EncodeConfig(Settings):
    """Everything that decides the bytes of a record (with the image and the seed).

    Attributes:
        cr: nominal compression ratio; sets N = floor(3 H W / (7 cr)).
        seed: seeds the initialisation (same image + config + seed => same Gaussians).
        max_pixels: images with more pixels are refused (decompression-bomb guard).
    """

    cr: float = 100.0
    seed: int = 0
    max_pixels: int = DEFAULT_MAX_PIXELS
    init: InitConfig = field(default_factory=InitConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)

    def __post_init__(self) -> None:
        if not self.cr > 0:
            raise ConfigError(f"cr must be > 0, got {self.cr}")
        if self.max_pixels <= 0:
            raise ConfigError(f"max_pixels must be > 0, got {self.max_pixels}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EncodeConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error (a config from a newer version)."""
        subs = {"init": InitConfig, "fit": FitConfig, "codec": CodecConfig}
        d = {k: (subs[k].from_dict(v) if k in subs else v) for k, v in d.items()}
        return super().from_dict(d)
