"""Learned rounding of the shapes and colours onto a record's grid."""
from __future__ import annotations

import math

import torch

from smartsplat_dist.codec import CodecConfig, RecordMeta, decode_record, encode_record
from smartsplat_dist.codec.grid import rotation_bits
from smartsplat_dist.codec.quantize import canonicalize
from smartsplat_dist.codec.record import color_grid, shape_grid
from smartsplat_dist.fitting import FitConfig, fit
from smartsplat_dist.fitting.optimize import image_loss
from smartsplat_dist.fitting.rounding import round_colors, round_shapes
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
    colors, sse_nearest, sse_learned = round_colors(g, lo, step, image_loss(image, FitConfig(), "cpu"), 40)
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
    colors, sse_nearest, sse_learned = round_colors(g, lo, step, image_loss(image, FitConfig(), "cpu"), 0)
    nearest = decode_record(encode_record(g, meta, CodecConfig()))[0].colors
    assert sse_learned == sse_nearest
    assert torch.equal(torch.sort(colors, dim=0).values, torch.sort(nearest, dim=0).values)


def _sorted(t):
    return torch.sort(t.reshape(len(t), -1), dim=0).values  # the record stores Gaussians in its own order


def test_learned_rounding_of_the_shapes_goes_down_or_up_and_beats_the_nearest_level():
    """Every log-scale lands on the level just below or above its value (the smallest keeps the grid's origin),
    every angle on one of the two levels around it on the grid its rounded scales give, the record stores exactly
    these shapes, and the loss pass (the colours fitted along) beats nearest rounding on a coarse grid."""
    image, g, meta = _fitted()
    codec = CodecConfig().replace(scale_step=0.4, rotation_tolerance=0.5)
    lo, st, tol = shape_grid(g, meta, codec)
    shaped, sse_nearest, sse_learned = round_shapes(g, lo, st, tol, image_loss(image, FitConfig(), "cpu"), 40, 5e-3)
    scales, theta = canonicalize(g.scales, g.rotations)
    x = (torch.log(scales.double()) - lo) / st
    levels = (torch.log(shaped.scales.double()) - lo) / st
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    q = levels.round()
    assert bool(((q == x.floor()) | (q == x.ceil()) | ((q[:, 1:] == q[:, :1]) & (torch.arange(2) == 1))).all())
    assert float(q.min()) == 0.0
    unit = torch.ldexp(torch.ones(len(g), dtype=torch.float64),
                       torch.from_numpy(rotation_bits(q.long().numpy(), lo, st, tol)))
    xr, r = theta.double() * unit / math.pi, shaped.rotations.double() * unit / math.pi
    assert torch.allclose(r, r.round(), atol=1e-3)
    assert bool(((r.round() == torch.remainder(xr.floor(), unit)) | (r.round() == torch.remainder(xr.ceil(), unit))
                 | (unit == 1)).all())
    assert sse_learned < sse_nearest and not torch.equal(shaped.colors, g.colors)
    stored = decode_record(encode_record(shaped, meta, codec))[0]
    assert torch.allclose(_sorted(stored.scales), _sorted(shaped.scales), rtol=1e-6)
    key = lambda h: _sorted(torch.cat([h.scales, h.rotations[:, None]], 1))  # noqa: E731
    assert torch.allclose(key(stored), key(shaped), rtol=1e-6, atol=1e-6)


def test_no_iterations_of_shape_rounding_is_what_the_record_stores():
    image, g, meta = _fitted()
    codec = CodecConfig().replace(scale_step=0.4, rotation_tolerance=0.5)
    shaped, sse_nearest, sse_learned = round_shapes(g, *shape_grid(g, meta, codec),
                                                    image_loss(image, FitConfig(), "cpu"), 0, 5e-3)
    stored = decode_record(encode_record(g, meta, codec))[0]
    assert sse_learned == sse_nearest and torch.equal(shaped.colors, g.colors)
    key = lambda h: _sorted(torch.cat([h.scales, h.rotations[:, None]], 1))  # noqa: E731
    assert torch.allclose(key(stored), key(shaped), rtol=1e-6, atol=1e-6)
