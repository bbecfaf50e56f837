"""Quantisation of Gaussians: the one place that defines what the record stores (docs/design.md §5).

Every function here is pure torch (CPU or GPU) so that :func:`fake_quantize` (fitting, any device) and the
record decoder (CPU) use the very same float32 arithmetic.

Quantised representation of N Gaussians (all integer tensors, int64):
    qmeans: [N, 2]  round(mean * 2**mean_frac_bits), means first clamped to [-W, 2W] x [-H, 2H]
    qscales: [N, 2] 0..2**scale_bits-1, uniform in log-scale between the record's min and max (both axes on
                    one grid, so qsx >= qsy)
    qrot:   [N]     0..2**rotation_bits-1, uniform on [0, pi)
    qcolors: [N, 3] 0..2**color_bits-1, from each channel's minimum in steps of (widest channel range) /
                    (2**color_bits - 1), the same step for all three channels
Before quantising, each Gaussian is put in canonical form: scales sorted so that sx >= sy (swapping the axes
adds pi/2 to the rotation) and rotation reduced modulo pi. Both describe the same covariance.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import RecordError
from ..model import Gaussians
from .config import CodecConfig


@dataclass(frozen=True)
class QuantParams:
    """Per-record ranges that turn integers back into floats (stored in the record header, float32).

    Attributes:
        scale_lo, scale_hi: min / max over both axes of the natural log of the canonical scales; one grid for
            both axes, so ``qsx >= qsy`` always holds.
        color_lo: per-channel (R, G, B) minimum of the colours.
        color_span: the widest channel's max - min; one step for all channels, so channel differences are
            meaningful integers.
    """

    scale_lo: float
    scale_hi: float
    color_lo: tuple[float, float, float]
    color_span: float


def _f32(values) -> tuple[float, ...]:
    return tuple(float(v) for v in torch.as_tensor(values, dtype=torch.float32).reshape(-1).cpu())


def canonicalize(scales: torch.Tensor, rotations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The canonical parameters of the same covariances (differentiable, permutation + angle wrap).

    Args:
        scales: [N, 2] float32, pixels, > 0.
        rotations: [N] float32, radians.
    Returns:
        scales [N, 2] with sx >= sy, rotations [N] in [0, pi].
    """
    swap = scales[:, 1] > scales[:, 0]
    canon = torch.where(swap[:, None], scales.flip(1), scales)
    theta = rotations + swap.to(rotations.dtype) * (math.pi / 2)
    theta = theta - math.pi * torch.floor(theta / math.pi).detach()
    return canon, theta


def check_encodable(g: Gaussians) -> None:
    """RecordError unless every parameter is finite and every scale positive."""
    for name, t in zip(("means", "scales", "rotations", "colors"), g.tensors()):
        bad = int((~torch.isfinite(t.detach())).sum())
        if bad:
            raise RecordError(f"cannot encode: {bad} non-finite values in {name}")
    if len(g) and not bool((g.scales.detach() > 0).all()):
        raise RecordError("cannot encode: every scale must be > 0")


def compute_params(g: Gaussians) -> QuantParams:
    """Ranges of the record from the (detached) Gaussians: log-scale min / max, colour minima and span."""
    if len(g) == 0:
        return QuantParams(0.0, 0.0, (0.0, 0.0, 0.0), 0.0)
    scales, _ = canonicalize(g.scales.detach(), g.rotations.detach())
    log_s = torch.log(scales)
    colors = g.colors.detach()
    lo = colors.min(dim=0).values
    return QuantParams(
        scale_lo=float(log_s.min()),
        scale_hi=float(log_s.max()),
        color_lo=_f32(lo),
        color_span=float((colors.max(dim=0).values - lo).max()),
    )


def _grids(params: QuantParams, config: CodecConfig, device) -> tuple[torch.Tensor, ...]:
    """(scale_lo, scale_step, color_lo [3], color_step) as float32 tensors: the one definition of the grids."""
    f = lambda v: torch.tensor(v, dtype=torch.float32, device=device)  # noqa: E731
    scale_lo, scale_hi = f(params.scale_lo), f(params.scale_hi)
    scale_step = (scale_hi - scale_lo) / float((1 << config.scale_bits) - 1)
    color_step = f(params.color_span) / float((1 << config.color_bits) - 1)
    return scale_lo, scale_step, f(params.color_lo), color_step


def _uniform_q(x: torch.Tensor, lo: torch.Tensor, step: torch.Tensor, bits: int) -> torch.Tensor:
    safe = torch.where(step > 0, step, torch.ones_like(step))
    q = torch.round((x - lo) / safe)
    q = torch.where(step > 0, q, torch.zeros_like(q))
    return q.clamp(0, (1 << bits) - 1)


def clamp_means(means: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Means clamped to [-W, 2W] x [-H, 2H] (what the record can hold). means: [N, 2] float32, pixels."""
    lo = torch.tensor([-float(width), -float(height)], dtype=means.dtype, device=means.device)
    return torch.maximum(torch.minimum(means, -2 * lo), lo)


def quantize_values(
    g: Gaussians, height: int, width: int, config: CodecConfig, params: QuantParams
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integers of the record, as float tensors holding whole numbers.

    Returns:
        qmeans [N, 2], qscales [N, 2] (qsx >= qsy), qrot [N], qcolors [N, 3]; float32 on the inputs' device.
    """
    dev = g.means.device
    scale_lo, scale_step, color_lo, color_step = _grids(params, config, dev)
    means = clamp_means(g.means, height, width)
    qmeans = torch.round(means * float(1 << config.mean_frac_bits))
    scales, theta = canonicalize(g.scales, g.rotations)
    qscales = _uniform_q(torch.log(scales), scale_lo, scale_step, config.scale_bits)
    levels = 1 << config.rotation_bits
    qrot = torch.remainder(torch.round(theta * float(levels / math.pi)), levels)
    qcolors = _uniform_q(g.colors, color_lo, color_step, config.color_bits)
    return qmeans, qscales, qrot, qcolors


def dequantize_values(
    qmeans: torch.Tensor, qscales: torch.Tensor, qrot: torch.Tensor, qcolors: torch.Tensor,
    config: CodecConfig, params: QuantParams,
) -> Gaussians:
    """Floats from the record's integers (any integer or float dtype holding whole numbers).

    Args:
        qmeans: [N, 2], qscales: [N, 2], qrot: [N], qcolors: [N, 3].
    Returns:
        Gaussians (float32, the device of ``qmeans``), canonical form.
    """
    dev = qmeans.device
    scale_lo, scale_step, color_lo, color_step = _grids(params, config, dev)
    f = lambda t: t.to(torch.float32)  # noqa: E731
    means = f(qmeans) / float(1 << config.mean_frac_bits)
    scales = torch.exp(scale_lo + f(qscales) * scale_step)
    rot = f(qrot) * float(math.pi / (1 << config.rotation_bits))
    colors = color_lo + f(qcolors) * color_step
    return Gaussians(means.contiguous(), scales.contiguous(), rot.contiguous(), colors.contiguous())


def fake_quantize_v1(g: Gaussians, meta, config: CodecConfig | None = None,
                     params: QuantParams | None = None) -> Gaussians:
    """Straight-through fake quantisation of record version 1: forward = what
    ``decode_record(encode_record(g, version=1))`` gives, backward = identity (through the canonical form).
    (:func:`smartsplat_dist.codec.fake_quantize` follows the version that is written.)

    Args:
        g: N Gaussians (any device; may require grad).
        meta: RecordMeta (height, width) of the image, or anything with ``height`` / ``width``.
        config: the CodecConfig the record will be encoded with.
        params: fixed ranges (see :class:`FrozenQuantizer`); default: computed from ``g`` as the encoder does.
    Returns:
        N Gaussians in the input order, canonical form (sx >= sy, rotation in [0, pi)), equal to the decoded
        record's Gaussians to float32 rounding (the decoder returns them sorted; the set is the same).
    """
    config = config or CodecConfig()
    check_encodable(g)
    if len(g) == 0:
        return g
    height, width = int(meta.height), int(meta.width)
    params = params or compute_params(g)
    with torch.no_grad():
        q = quantize_values(g.detach(), height, width, config, params)
        deq = dequantize_values(*q, config, params)
    scales, theta = canonicalize(g.scales, g.rotations)
    means = g.means
    ste = lambda x, target: x + (target - x).detach()  # noqa: E731
    return Gaussians(ste(means, deq.means), ste(scales, deq.scales), ste(theta, deq.rotations), ste(g.colors, deq.colors))


class FrozenQuantizer:
    """A ``fit(quantizer=...)`` callable of record version 1 whose ranges are fixed at its first call.

    Recomputing the ranges every step moves every Gaussian's grid whenever the extreme one moves; freezing
    them keeps the grids still while fine-tuning. Encode with the same ranges:
    ``encode_record(g, meta, config, params=quantizer.params, version=1)`` (values outside are clamped into them).
    """

    def __init__(self, meta, config: CodecConfig | None = None) -> None:
        self.meta, self.config = meta, config or CodecConfig()
        self.params: QuantParams | None = None

    def __call__(self, g: Gaussians) -> Gaussians:
        if self.params is None:
            self.params = compute_params(g)
        return fake_quantize_v1(g, self.meta, self.config, self.params)
