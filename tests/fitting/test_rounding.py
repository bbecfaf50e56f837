"""Learned rounding of the colours onto a record's grid."""
from __future__ import annotations

import torch

from smartsplat_dist.codec import CodecConfig, RecordMeta, decode_record, encode_record
from smartsplat_dist.codec.record import color_grid
from smartsplat_dist.fitting import FitConfig, fit
from smartsplat_dist.fitting.optimize import image_loss
from smartsplat_dist.fitting.rounding import learn_rounding
from smartsplat_dist.model import Gaussians

from .test_fit import _gaussians, _image


def _fitted():
    image = _image(48, 48)
    g, _ = fit(_gaussians(60, 48, 48), image, FitConfig(steps=60, log_every=1000), backend="cpu", final_psnr=False)
    return image, g, RecordMeta(height=48, width=48, n=len(g), rate="paper", nominal_cr=10.0)


def test_learned_rounding_goes_down_or_up_and_beats_the_nearest_level():
    """Every channel lands on the level just below or just above its value, each channel's smallest value keeps
    the grid's origin, the record stores exactly these colours, and the fit's loss pass is better than with
    every colour rounded to its nearest level (on a coarse grid, where rounding costs the most)."""
    image, g, meta = _fitted()
    codec = CodecConfig().replace(color_step=1 / 16)
    lo, step = color_grid(g, meta, codec)
    colors, sse_nearest, sse_learned = learn_rounding(g, lo, step, image_loss(image, FitConfig(), "cpu"), 40)
    x = (g.colors.double() - lo) / step
    levels = (colors.double() - lo) / step
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    assert bool(((levels.round() == x.floor()) | (levels.round() == x.ceil())).all())
    assert torch.equal(colors.min(dim=0).values.double(), lo)
    assert sse_learned < sse_nearest and (levels.round() != x.round()).any()
    stored = decode_record(encode_record(Gaussians(g.means, g.scales, g.rotations, colors), meta, codec))[0]
    key = lambda c: torch.sort(c, dim=0).values  # noqa: E731  (the record stores Gaussians in its own order)
    assert torch.equal(key(stored.colors), key(colors))


def test_no_iterations_is_nearest_rounding():
    image, g, meta = _fitted()
    lo, step = color_grid(g, meta, CodecConfig())
    colors, sse_nearest, sse_learned = learn_rounding(g, lo, step, image_loss(image, FitConfig(), "cpu"), 0)
    nearest = decode_record(encode_record(g, meta, CodecConfig()))[0].colors
    assert sse_learned == sse_nearest
    assert torch.equal(torch.sort(colors, dim=0).values, torch.sort(nearest, dim=0).values)
