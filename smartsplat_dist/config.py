"""The whole configuration of one encode, as frozen dataclasses (recorded in an archive's run.json).

The render backend is not part of it: it is a runtime choice (the same record comes out of any backend up to
float32 rounding), so an archive begun on a GPU cluster can be resumed on CPU nodes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .codec import CodecConfig
from .errors import ConfigError
from .fitting import FitConfig
from .init import InitConfig
from .io.images import DEFAULT_MAX_PIXELS
from .settings import Settings

#: How a record follows its byte budget (see :class:`EncodeConfig`).
RATE_MODES = ("budget", "paper")


@dataclass(frozen=True)
class EncodeConfig(Settings):
    """Everything that decides the bytes of a record (with the image and the seed).

    Attributes:
        cr: nominal compression ratio: the record's byte budget is floor(3 H W / cr).
        rate: how N and the quantisation steps follow the budget. ``"budget"`` (default): N is what the budget
            buys at the codec's default steps (bytes per Gaussian measured on this image's initialisation), then
            the steps are scaled until the record fills [budget / 1.03, budget] bytes. ``"paper"``: the
            paper's N = floor(3 H W / (7 cr)) and the codec's steps as they are (the record's size is whatever
            they give), for reproducing its tables.
        color_finetune_steps: steps of each of the two fine-tunes after rate control (at most 5% of the fit's
            steps; 0: off): first the scales, rotations and colours with the means fixed on the record's position
            grid, then the colours on the record's own quantised geometry, each at 0.3x the fit's learning rates
            with a ramp, each kept only where it raised its PSNR; the tuned scales and rotations, and later the
            tuned colours, are rounded onto the record's grid by learned rounding (``api.SHAPE_ROUNDING_ITERS``,
            ``api.COLOR_ROUNDING_ITERS``, as many iterations as these steps at most); a budget-mode record stays
            within its budget.
            Measured at 1000 steps: +0.10-0.51 dB together (README, "Rate control").
        prune_gap_db: budget mode: where the record decodes more than this many dB below the unquantised fit
            (the budget forced steps too coarse for what the fit learned: smooth photos fitted to 45+ dB), the
            :data:`~smartsplat_dist.api.PRUNE_SHARE` of the Gaussians that contribute least are dropped, the rest
            refitted for 10% of the fit's steps and encoded again on the finer steps their budget now buys;
            repeated while the decoded record gets better, the best record kept. A negative value: never; not
            either where the fine-tunes are off (``color_finetune_steps`` 0, or a fit under 20 steps).
            Measured at 1000 steps, CR 50 (README, "Rate control"): +0.24 dB on the smoothest photo (48.05 dB,
            0.36 below its fit), +0.07 on the next; the others' records were within 0.3 dB and not pruned.
        seed: seeds the initialisation (same image + config + seed => same Gaussians).
        max_pixels: images with more pixels are refused (decompression-bomb guard).
    """

    cr: float = 100.0
    rate: str = "budget"
    color_finetune_steps: int = 50
    prune_gap_db: float = 0.3
    seed: int = 0
    max_pixels: int = DEFAULT_MAX_PIXELS
    init: InitConfig = field(default_factory=InitConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)

    def __post_init__(self) -> None:
        if not self.cr > 0:
            raise ConfigError(f"cr must be > 0, got {self.cr}")
        if self.rate not in RATE_MODES:
            raise ConfigError(f"rate must be one of {', '.join(RATE_MODES)}, got {self.rate!r}")
        if self.max_pixels <= 0:
            raise ConfigError(f"max_pixels must be > 0, got {self.max_pixels}")
        if isinstance(self.color_finetune_steps, bool) or not isinstance(self.color_finetune_steps, int) \
                or self.color_finetune_steps < 0:
            raise ConfigError(f"color_finetune_steps must be an integer >= 0, got {self.color_finetune_steps!r}")
        if isinstance(self.prune_gap_db, bool) or not isinstance(self.prune_gap_db, (int, float)) \
                or self.prune_gap_db != self.prune_gap_db:
            raise ConfigError(f"prune_gap_db must be a number (negative: never prune), got {self.prune_gap_db!r}")

    def with_overrides(self, *, cr: float | None = None, rate: str | None = None, steps: int | None = None,
                       init: str | None = None, seed: int | None = None,
                       max_pixels: int | None = None, prune_gap_db: float | None = None) -> "EncodeConfig":
        """This config with the settings that are not None changed: the one path from a command's flags or
        :func:`~smartsplat_dist.api.encode_image`'s shortcuts to a config (``steps`` is the fit's, ``init`` the
        initialisation method)."""
        changes: dict[str, Any] = {}
        if cr is not None:
            changes["cr"] = float(cr)
        if rate is not None:
            changes["rate"] = rate
        if seed is not None:
            changes["seed"] = int(seed)
        if max_pixels is not None:
            changes["max_pixels"] = int(max_pixels)
        if prune_gap_db is not None:
            changes["prune_gap_db"] = float(prune_gap_db)
        if steps is not None:
            changes["fit"] = dataclasses.replace(self.fit, steps=int(steps))
        if init is not None:
            changes["init"] = dataclasses.replace(self.init, method=init)
        return self.replace(**changes)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EncodeConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error (a config from a newer version)."""
        subs = {"init": InitConfig, "fit": FitConfig, "codec": CodecConfig}
        d = {k: (subs[k].from_dict(v) if k in subs else v) for k, v in d.items()}
        return super().from_dict(d)
