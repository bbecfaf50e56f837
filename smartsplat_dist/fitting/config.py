"""Settings of the Gaussian fit (docs/design.md §4).

Loss ``lambda_l1 * L1 + (1 - lambda_l1) * (1 - SSIM)`` (SSIM: 11x11 Gaussian window, 'valid' map), Adam with one
parameter group per tensor. Parameterisation (what each learning rate is measured in):

* means: pixels (``means_lr_unit="pixel"``: Adam moves a mean by about ``lr_means`` px per step) or the
  authors' normalised coordinates (``"normalized"``: x_n = 2x/W - 1, y_n = 2y/H - 1, so 1e-4 is about
  1e-4 * W/2 px per step, ~0.04 px at 768 px wide);
* scales: natural log of the pixel scales (keeps them > 0; an lr of 5e-3 changes a scale by ~0.5 % per step);
* rotations: radians; colours: the raw linear RGB values (not clamped while fitting).

Learning-rate choice. Defaults: the authors' code's ordering (scales 5e-2, colours 5e-3, rotation 1e-3) with the
means moving ~0.3 px per step (preset ``code_px`` with ``lr_means`` 0.3; see the end of this docstring). Measured with
``smartsplat bench convergence --lr-sweep --cr 50 --steps 300 --eval-every 50 --backend cpu --threads 1``
(smart init, lambda_l1 = 0.9, real photos-768 images 768x512, N = 3370; PSNR of the decoded render at step 300,
dB; SSIM in brackets). Two runs (``--n-images 3`` stopped after 6 fits; then ``--only Dragonfly_by_Bolly,God-Rays
--presets code_px,code,seed_norm``); the init module changed between them (initial PSNR 12.5 -> 13.8 dB on
Dragonfly), so compare within a row only:

    image (initial PSNR)  seed           seed_norm      code           code_px        code_px - code
    Bamboo (11.2)         28.91 (.879)   32.15 (.915)   32.72 (.922)   33.76 (.929)   +1.04
    Dragonfly (12.5)      24.98 (.814)   -              28.78 (.900)   -
    Dragonfly (13.8)      -              28.34 (.886)   28.88 (.900)   29.78 (.915)   +0.90
    God-Rays (14.8)       -              39.36 (.966)   41.32 (.967)   41.97 (.970)   +0.65

* ``seed`` (the text's 1e-4 read as pixels) practically freezes the means: 3.8-4.9 dB behind ``code``.
* ``seed_norm`` (text's scales 5e-3 / colours 5e-2 with the code's normalised means) is 0.5-2 dB behind
  ``code``: the code's ordering (faster scales, slower colours) is better.
* ``code_px`` (means ~0.1 px/step instead of ~0.04) is best on every image, +0.65 to +1.04 dB over ``code``
  at 300 steps (26 dB after 50-100 steps vs 50-150), about 1 dB.
Caveat: our scales are optimised in log space, so "5e-2" is ~5 % per step, not the code's raw-scale step; the
presets are defined in these units.

Means at 0.3 px per step instead of ``code_px``'s 0.1, measured later on 4 photos-768 images the project had not
been tuned on (God-Rays, Kleiber, Sea-of-Lanterns, White-Flower; CR 50, ``smartsplat bench convergence --variants
... --threads 1``; mean PSNR of the unquantised fit): at 1000 steps 35.18 (0.1) / 35.24 (0.2) / 35.30 (0.3) dB,
0.3 at least as good as 0.1 on every image; at 5000 steps equal (God-Rays 44.47 / 44.48 dB at 0.3 / 0.1); at
300 steps, with relocation every 30 steps (:attr:`FitConfig.relocate_interval`), 33.73 (0.1) / 34.00 (0.2) /
34.06 (0.3) / 34.05 (0.5) dB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..settings import Settings

MEANS_LR_UNITS = ("pixel", "normalized")
LR_SCHEDULES = ("constant", "cosine")

#: Learning-rate presets compared by ``smartsplat bench convergence --lr-sweep`` (means, scales, rotations,
#: colours, unit of the means lr).
LR_PRESETS: dict[str, dict[str, Any]] = {
    # seed text: means 1e-4, scales 5e-3, colours 5e-2, rotation 1e-3 (means read as pixels)
    "seed": dict(lr_means=1e-4, lr_scales=5e-3, lr_rotations=1e-3, lr_colors=5e-2, means_lr_unit="pixel"),
    # authors' code: means in normalised [-1, 1] coordinates at 1e-4, colours 5e-3, scales 5e-2, rotation 1e-3
    "code": dict(lr_means=1e-4, lr_scales=5e-2, lr_rotations=1e-3, lr_colors=5e-3, means_lr_unit="normalized"),
    # the seed text's scales / colours / rotation with the code's normalised means (isolates the ordering)
    "seed_norm": dict(lr_means=1e-4, lr_scales=5e-3, lr_rotations=1e-3, lr_colors=5e-2, means_lr_unit="normalized"),
    # the code's ordering with means moving ~0.1 px per step
    "code_px": dict(lr_means=0.1, lr_scales=5e-2, lr_rotations=1e-3, lr_colors=5e-3, means_lr_unit="pixel"),
}


@dataclass(frozen=True)
class FitConfig(Settings):
    """How the Gaussians are fitted to an image.

    Attributes:
        steps: optimisation steps (the paper: 50,000).
        lambda_l1: weight of L1 in the loss; the rest goes to (1 - SSIM). Seed text 0.9, authors' code 0.8.
        lr_means: Adam learning rate of the means, in ``means_lr_unit`` units.
        means_lr_unit: ``"pixel"`` or ``"normalized"`` (see module docstring).
        lr_scales: Adam learning rate of the log-scales.
        lr_rotations: Adam learning rate of the rotations (radians).
        lr_colors: Adam learning rate of the colours.
        log_every: the progress callback runs every this many steps (and after the last step).
        tile_size: 0 renders the whole image each step; otherwise the loss and its gradient are accumulated over
            windows of ``tile_size`` px (each rendered with a 10 px halo for SSIM), so memory is bounded by one
            window; the gradient equals the whole-image gradient up to float32 summation order.
        qat_steps: during the last ``qat_steps`` steps the forward pass uses ``quantizer(gaussians)``
            (straight-through fake quantisation) when a quantizer is given to :func:`fit`.
        adam_eps: Adam's epsilon.
        clamp_render: clamp the render to [0, 1] before the loss (as the authors' code does), so the loss and its
            gradient see what decoding shows; pixels rendered outside [0, 1] then pass no gradient.
        lr_schedule: ``"constant"`` or ``"cosine"``: every group's learning rate is multiplied by
            ``lr_final + (1 - lr_final) * (1 + cos(pi * (step - 1) / (steps - 1))) / 2`` (1 at the first step,
            ``lr_final`` at the last); see :mod:`.schedule`.
        lr_final: the cosine schedule's last multiplier (0 < lr_final <= 1).
        lr_warmup_steps: the learning rates ramp up linearly over the first this many steps (step k of them:
            ``k / (lr_warmup_steps + 1)``), on top of the schedule. A fresh Adam moves every parameter by about its
            learning rate on its first steps whatever the gradient; a short fine-tune of a converged fit needs
            the ramp (measured: 10 steps on a 40 dB fit dropped it to 37 dB in one step without it).
        color_warmup_steps: the first this many steps update the colours only (the other groups keep their values
            and their Adam state).
        color_solve_iters: before the first step, this many conjugate-gradient iterations of the linear
            least-squares problem ``min_c ||render(c) - image||^2`` over the colours (the render is linear in
            them under sum blending); 0 = none. See :mod:`.colors`.
        relocate_every: every this many steps, move the ``relocate_fraction`` of Gaussians that contribute least
            (smallest ``|colour|_1 * scale_x * scale_y``) to where one new Gaussian removes the most squared error;
            N is unchanged; 0 = never. A fit shorter than 10x this relocates every ``max(steps // 10, 10)`` steps
            instead (:attr:`relocate_interval`), as often as a fit of 10x ``relocate_every`` steps. See
            :mod:`.relocate`.
        relocate_fraction: share of the N Gaussians moved at each relocation (0 < f <= 0.5).
        relocate_until: no relocation after this share of the steps (0 < u <= 1), so the fit can settle.
        max_scale: cap on every scale, as a multiple of the image diagonal (applied after each step, and to the
            initial scales); 0 = no cap. Long Gaussians cost the quantiser precision (their angle error moves
            their far end by tens of pixels).

    Tricks on by default (clamp, relocation, scale cap) and off (cosine decay, colour solve, colour warm-up):
    each was measured alone at 1000 steps on 768x512 photos at CR 50 with ``smartsplat bench convergence
    --variants``; relocation +0.58 dB, clamp +0.13 dB, cap +0.02 dB; cosine to 0.1x -0.51 dB, colour solve
    -0.23 dB, colour warm-up -0.16 dB (table in the README, "Fitting: the choices and why").
    """

    steps: int = 2000
    lambda_l1: float = 0.9
    lr_means: float = 0.3
    means_lr_unit: str = "pixel"
    lr_scales: float = 5e-2
    lr_rotations: float = 1e-3
    lr_colors: float = 5e-3
    log_every: int = 100
    tile_size: int = 2048  # images up to 2048 px render whole; measured: 4096-px windows peak at 2.4 GB (8K, CPU)
    qat_steps: int = 0
    adam_eps: float = 1e-8
    clamp_render: bool = True
    lr_schedule: str = "constant"
    lr_final: float = 0.1
    lr_warmup_steps: int = 0
    color_warmup_steps: int = 0
    color_solve_iters: int = 0
    relocate_every: int = 100
    relocate_fraction: float = 0.02
    relocate_until: float = 0.6
    max_scale: float = 1.0

    def __post_init__(self) -> None:
        ints = {"steps": (self.steps, 0), "log_every": (self.log_every, 1), "tile_size": (self.tile_size, 0),
                "qat_steps": (self.qat_steps, 0), "color_warmup_steps": (self.color_warmup_steps, 0),
                "lr_warmup_steps": (self.lr_warmup_steps, 0),
                "color_solve_iters": (self.color_solve_iters, 0), "relocate_every": (self.relocate_every, 0)}
        for name, (value, low) in ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"fit {name} must be an integer >= {low}, got {value!r}")
        if 0 < self.tile_size < 16:
            raise ConfigError(f"fit tile_size must be 0 (whole image) or >= 16 px, got {self.tile_size}")
        if self.means_lr_unit not in MEANS_LR_UNITS:
            raise ConfigError(f"fit means_lr_unit must be one of {', '.join(MEANS_LR_UNITS)}, "
                              f"got {self.means_lr_unit!r}")
        value = self.lambda_l1
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"fit lambda_l1 must be a number in [0, 1], got {value!r}")
        for name in ("lr_means", "lr_scales", "lr_rotations", "lr_colors", "adam_eps"):
            value = getattr(self, name)
            low_ok = value > 0.0 if name == "adam_eps" else value >= 0.0
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low_ok or value == float("inf"):
                raise ConfigError(f"fit {name} must be a finite number {'>' if name == 'adam_eps' else '>='} 0, "
                                  f"got {value!r}")
        if not isinstance(self.clamp_render, bool):
            raise ConfigError(f"fit clamp_render must be true or false, got {self.clamp_render!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"fit lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        for name, low, high, low_open in (("lr_final", 0.0, 1.0, True), ("relocate_fraction", 0.0, 0.5, True),
                                          ("relocate_until", 0.0, 1.0, True), ("max_scale", 0.0, math.inf, False)):
            value = getattr(self, name)
            ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
                  and (value > low if low_open else value >= low) and value <= high)
            if not ok:
                raise ConfigError(f"fit {name} must be a number in {'(' if low_open else '['}{low:g}, {high:g}], "
                                  f"got {value!r}")

    @property
    def relocate_interval(self) -> int:
        """Steps between relocations (0 = none): ``relocate_every``, or ``max(steps // 10, 10)`` where that is
        smaller. Measured at 300 steps on 4 unseen photos-768 (CR 50, ``smartsplat bench convergence
        --variants``): relocating every 30 steps instead of 100 gained +0.16 dB mean (README, "Fitting")."""
        if not self.relocate_every:
            return 0
        return min(self.relocate_every, max(self.steps // 10, 10))

    def with_preset(self, name: str) -> "FitConfig":
        """This config with the learning rates of ``LR_PRESETS[name]``."""
        if name not in LR_PRESETS:
            raise ConfigError(f"unknown learning-rate preset {name!r}; choose one of {', '.join(LR_PRESETS)}")
        return FitConfig.from_dict({**self.to_dict(), **LR_PRESETS[name]})
