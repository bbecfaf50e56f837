"""Per-step learning rates and what each step may update: the learning-rate schedule and the colour warm-up.

``lr_factor(config, step)`` is the multiplier of every group's base learning rate at ``step`` (1-based):
1 for ``lr_schedule="constant"``; for ``"cosine"`` it falls from 1 at the first step to ``config.lr_final`` at
the last, ``lr_final + (1 - lr_final) * (1 + cos(pi * (step - 1) / (steps - 1))) / 2``; times
``step / (lr_warmup_steps + 1)`` during the first ``lr_warmup_steps`` steps.

``frozen_groups(config, step)`` names the parameter groups that the step must leave alone: all but the colours
during the first ``config.color_warmup_steps`` steps.
"""
from __future__ import annotations

import math

import torch

from .config import FitConfig

#: The optimiser's parameter groups, in order (``_Params.optimizer``).
GROUPS = ("means", "scales", "rotations", "colors")


def lr_factor(config: FitConfig, step: int) -> float:
    """Multiplier of the base learning rates at ``step`` (1 .. config.steps)."""
    warm = step / (config.lr_warmup_steps + 1) if step <= config.lr_warmup_steps else 1.0
    if config.lr_schedule == "constant" or config.steps <= 1:
        return warm
    t = min(1.0, max(0.0, (step - 1) / (config.steps - 1)))
    return warm * (config.lr_final + (1.0 - config.lr_final) * 0.5 * (1.0 + math.cos(math.pi * t)))


def frozen_groups(config: FitConfig, step: int) -> tuple[str, ...]:
    """The groups whose parameters ``step`` must not change (their gradient is dropped before Adam's step)."""
    if step <= config.color_warmup_steps:
        return tuple(g for g in GROUPS if g != "colors")
    return ()


def apply(opt: torch.optim.Optimizer, base_lrs: dict[str, float], config: FitConfig, step: int) -> None:
    """Set each group's learning rate for ``step`` and drop the gradients of its frozen groups.

    Call after the backward pass and before ``opt.step()``: Adam skips a parameter whose ``grad`` is None, so a
    frozen group keeps both its values and its moment estimates.
    """
    factor = lr_factor(config, step)
    frozen = frozen_groups(config, step)
    for group in opt.param_groups:
        group["lr"] = base_lrs[group["name"]] * factor
        if group["name"] in frozen:
            for p in group["params"]:
                p.grad = None


__all__ = ["GROUPS", "lr_factor", "frozen_groups", "apply"]
