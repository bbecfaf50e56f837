"""Learning-rate schedule values and the colour warm-up (which groups a step may change)."""
from __future__ import annotations

import math

import pytest
import torch

from smartsplat_dist.fitting import FitConfig, fit
from smartsplat_dist.fitting.schedule import GROUPS, apply, frozen_groups, lr_factor

from .test_fit import _gaussians, _image


def test_constant_schedule_is_one():
    cfg = FitConfig(steps=50, lr_schedule="constant")
    assert [lr_factor(cfg, s) for s in (1, 25, 50)] == [1.0, 1.0, 1.0]


def test_cosine_schedule_values():
    cfg = FitConfig(steps=101, lr_schedule="cosine", lr_final=0.1)
    assert lr_factor(cfg, 1) == pytest.approx(1.0)
    assert lr_factor(cfg, 51) == pytest.approx(0.55)  # half way: (1 + 0.1) / 2
    assert lr_factor(cfg, 26) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(cfg, 101) == pytest.approx(0.1)
    values = [lr_factor(cfg, s) for s in range(1, 102)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert lr_factor(FitConfig(steps=1, lr_schedule="cosine"), 1) == 1.0


def test_learning_rate_warmup_ramps_then_follows_the_schedule():
    cfg = FitConfig(steps=20, lr_warmup_steps=4)
    assert [lr_factor(cfg, s) for s in (1, 2, 4, 5, 20)] == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])
    cos = FitConfig(steps=101, lr_schedule="cosine", lr_final=0.1, lr_warmup_steps=9)
    assert lr_factor(cos, 5) == pytest.approx(0.5 * lr_factor(FitConfig(steps=101, lr_schedule="cosine"), 5))
    with pytest.raises(Exception, match="lr_warmup_steps"):
        FitConfig(lr_warmup_steps=-1)


def test_apply_sets_lrs_and_drops_frozen_grads():
    cfg = FitConfig(steps=11, lr_schedule="cosine", lr_final=0.5, color_warmup_steps=3)
    params = {name: torch.zeros(2, requires_grad=True) for name in GROUPS}
    base = {"means": 0.1, "scales": 0.05, "rotations": 1e-3, "colors": 5e-3}
    opt = torch.optim.Adam([{"params": [params[n]], "lr": base[n], "name": n} for n in GROUPS])
    for p in params.values():
        p.grad = torch.ones(2)
    apply(opt, base, cfg, 3)
    assert [params[n].grad is None for n in GROUPS] == [True, True, True, False]
    for group in opt.param_groups:
        assert group["lr"] == pytest.approx(base[group["name"]] * lr_factor(cfg, 3))
    assert frozen_groups(cfg, 4) == ()
    apply(opt, base, cfg, 11)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


def test_colour_warmup_changes_only_colours_in_a_fit():
    image = _image(24, 24)
    g0 = _gaussians(8, 24, 24)
    g, _ = fit(g0, image, FitConfig(steps=4, color_warmup_steps=4, color_solve_iters=0, relocate_every=0),
               backend="torch")
    assert torch.equal(g.means, g0.means) and torch.equal(g.rotations, g0.rotations)
    assert torch.allclose(g.scales, g0.scales, rtol=1e-6)
    assert not torch.allclose(g.colors, g0.colors)
    g2, _ = fit(g0, image, FitConfig(steps=6, color_warmup_steps=4, relocate_every=0), backend="torch")
    assert not torch.allclose(g2.means, g0.means)  # after the warm-up every group moves
