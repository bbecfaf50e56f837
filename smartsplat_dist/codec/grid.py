"""Quantisation of record versions 2 to 5: fixed steps, and precision that follows what each Gaussian shows.

Version 1 spread a fixed number of levels over each attribute's full range, so a few outliers of a long fit
(a 2,000 px Gaussian, a strong colour) set the step for every Gaussian, and a uniform 7-bit angle moved the far
end of a long Gaussian by tens of pixels. Version 2 uses steps that do not depend on the data's range (the range
only sets how many levels there are, which the adaptive entropy coder pays for only where they are used):

    means     [N, 2]  on a grid of 2**-mean_frac_bits px (as version 1); version 5 (``Steps.mean_by_sensitivity``):
                      of 2**-f px with f per Gaussian from its *quantised* colour and scales (see
                      :func:`mean_bits`): moving a Gaussian by d px adds about
                      ``|c|**2 * pi/2 * (sx/sy + sy/sx)/2 * d**2`` to the image's squared error (whatever its
                      size), so the step that spends bits evenly halves per quadrupling of that sensitivity
    log-scales [N, 2] ln s on a grid of ``scale_step`` from the record's smallest ln s (canonical: sx >= sy)
    rotation  [N]     2**rb levels over [0, pi), rb per Gaussian from its *quantised* scales:
                      rb = clamp(ceil(log2(pi * (sx - sy) / (2 * rotation_tolerance))), 0, MAX_ROTATION_BITS),
                      so the 1-sigma ellipse moves by at most ~rotation_tolerance px whatever its length, and a
                      round Gaussian stores no angle at all
    colours   [N, 3]  on a grid of ``color_step`` from each channel's minimum; version 4 (``Steps.color_by_area``):
                      of ``color_step * 2**j`` with j per Gaussian from its *quantised* area relative to the
                      record's median (see :func:`color_shifts`): a Gaussian's colour error adds
                      ``pi * sx * sy * err**2`` to the image's squared error, so the step that spends bits evenly
                      across the picture shrinks as ``1 / sqrt(sx * sy)``: one octave per quadrupling of the area

Integer tensors: qmeans [N, 2] (levels on each Gaussian's position grid), qscales [N, 2] (qsx >= qsy >= 0), qrot
[N], rbits [N], qcolors [N, 3], mbits [N] (each Gaussian's fractional position bits).
Dequantisation is float32 torch (the render's precision); ``rbits`` is computed in float64 numpy from the
integers and the header's float32 values (see :func:`rotation_bits`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..model import Gaussians
from .quantize import canonicalize, clamp_means

#: Most rotation bits of one Gaussian (2**16 levels: a 20,000 px Gaussian within 0.5 px).
MAX_ROTATION_BITS = 16
#: Most levels of one scale or colour grid (the entropy coder's alphabet bound, with room for differences).
MAX_LEVELS = 1 << 15
#: Version 4 colour steps: the octave j of a Gaussian's step (``color_step * 2**j``; 0 for the record's median
#: area) is clamped to COLOR_SHIFTS.
COLOR_SHIFTS = (-4, 8)
#: Most fractional position bits of one Gaussian (version 5; the header's mean_frac_bits is also 0..8).
MAX_MEAN_BITS = 8
#: ln 2 as the float64 the format names (no libm call in what the decoder must reproduce).
LN2 = 0.6931471805599453


@dataclass(frozen=True)
class Steps:
    """The quantisation steps of one record (stored in its header).

    Attributes:
        mean_frac_bits: means on a grid of 2**-mean_frac_bits px, 0..8.
        scale_step: step of ln(scale) (relative scale error <= scale_step / 2).
        rotation_tolerance: px; rotation levels per Gaussian follow from its elongation (module docstring).
        color_step: step of every colour channel (version 4: of the Gaussians of the record's median area).
        color_by_area: the colour step follows each Gaussian's area (record versions 4 and 5, :func:`color_shifts`).
        mean_by_sensitivity: the position grid follows each Gaussian's colour and elongation (record version 5,
            :func:`mean_bits`); ``mean_frac_bits`` is then that of the record's median Gaussian.
    """

    mean_frac_bits: int
    scale_step: float
    rotation_tolerance: float
    color_step: float
    color_by_area: bool = False
    mean_by_sensitivity: bool = False


@dataclass(frozen=True)
class Grid:
    """Per-record origins and level counts (header): scale_lo (ln px), scale_levels, color_lo[3], color_levels[3]."""

    scale_lo: float
    scale_levels: int
    color_lo: tuple[float, float, float]
    color_levels: tuple[int, int, int]


@dataclass
class Quantized:
    """The integers of a record (numpy int64), in the Gaussians' input order."""

    qmeans: np.ndarray   # [N, 2]
    qscales: np.ndarray  # [N, 2], qsx >= qsy
    qrot: np.ndarray     # [N], < 2**rbits
    rbits: np.ndarray    # [N], 0..MAX_ROTATION_BITS
    qcolors: np.ndarray  # [N, 3]
    mbits: np.ndarray    # [N], 0..MAX_MEAN_BITS: qmeans are levels on a grid of 2**-mbits px


def _f32(v) -> float:
    return float(np.float32(v))


def rotation_bits(qscales: np.ndarray, scale_lo: float, scale_step: float, tolerance: float) -> np.ndarray:
    """Rotation bits of each Gaussian from its quantised scales. qscales: [N, 2] int. Returns [N] int64.

    float64 numpy: ``sx = exp(scale_lo + qsx * scale_step)`` (header values as float32 -> float64),
    ``rb = clamp(ceil(log2(pi * (sx - sy) / (2 * tolerance)) - 1e-9), 0, MAX_ROTATION_BITS)``.
    """
    q = qscales.astype(np.float64)
    lo, st, tol = float(np.float32(scale_lo)), float(np.float32(scale_step)), float(np.float32(tolerance))
    sx = np.exp(lo + q[:, 0] * st)
    sy = np.exp(lo + q[:, 1] * st)
    need = np.pi * np.maximum(sx - sy, 0.0) / (2.0 * tol)
    with np.errstate(divide="ignore"):
        rb = np.ceil(np.log2(np.maximum(need, 1e-300)) - 1e-9)
    return np.clip(rb, 0, MAX_ROTATION_BITS).astype(np.int64)


def _lower_median(a: np.ndarray):
    """The ``(N - 1) // 2``-th smallest of [N] values (N >= 1): the median the format names."""
    return np.partition(a, (a.size - 1) // 2)[(a.size - 1) // 2]


def color_shifts(qscales: np.ndarray, scale_step: float) -> np.ndarray:
    """Octave j of each Gaussian's colour step (version 4) from the quantised scales. qscales: [N, 2] int.
    Returns [N] int64 in COLOR_SHIFTS.

    With ``a = qsx + qsy`` (the log-area in scale steps) and ``m`` the lower median of ``a`` over the record's
    Gaussians (the ``(N - 1) // 2``-th smallest), in float64 with only + * / (``scale_step`` as float32 ->
    float64): ``j = clamp(floor((m - a) * scale_step / (2 * LN2) + 0.5), COLOR_SHIFTS)``: the median
    Gaussian uses ``color_step``, one of 4x its area half of it.
    """
    a = qscales.sum(axis=1)
    if a.size == 0:
        return a.astype(np.int64)
    octaves = (_lower_median(a) - a).astype(np.float64) * float(np.float32(scale_step)) / (2.0 * LN2)
    return np.clip(np.floor(octaves + 0.5), *COLOR_SHIFTS).astype(np.int64)


def color_alphabet(levels: int, shift: int) -> int:
    """Levels of a colour channel on the grid ``color_step * 2**shift`` when it has ``levels`` on
    ``color_step``: ``levels`` for shift 0, else ``floor((levels - 0.5) * 2**-shift + 0.5) + 1`` (exact in
    float64; a level x <= levels - 0.5 on the base grid rounds to at most that on the shifted one)."""
    if shift == 0:
        return int(levels)
    return int(math.floor((levels - 0.5) * 2.0 ** -shift + 0.5)) + 1


def mean_bits(qscales: np.ndarray, qcolors: np.ndarray, steps: Steps, grid: Grid) -> np.ndarray:
    """Fractional position bits f of each Gaussian (version 5) from its quantised scales and colours.
    qscales: [N, 2], qcolors: [N, 3] int. Returns [N] int64 in 0..MAX_MEAN_BITS.

    The sensitivity octave ``s = e + max(floor(|qsx - qsy| * scale_step / LN2) - 1, 0)``, where e is the binary
    exponent of ``|c|**2`` (``frexp``: ``|c|**2 = m * 2**e``, m in [0.5, 1); ``|c|**2`` below 2**-60 counts as
    2**-60) and c the dequantised colour ``color_lo + q * color_step * 2**j`` (j from :func:`color_shifts`), all
    in float64 with only + * / (header values as float32 -> float64); the second term is the elongation's octave
    less one. With ``m`` the lower median of s: ``f = clamp(mean_frac_bits + floor((s - m + 1) / 2), 0,
    MAX_MEAN_BITS)``: the median Gaussian has ``mean_frac_bits``, one four times as sensitive one bit more.
    """
    n = qscales.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    mult = _color_multipliers(qscales, steps)
    cs = float(np.float32(steps.color_step)) * (np.ones(n) if mult is None else mult)
    c = np.asarray([float(np.float32(v)) for v in grid.color_lo]) + qcolors.astype(np.float64) * cs[:, None]
    power = np.maximum((c * c).sum(axis=1), 2.0 ** -60)
    e = np.frexp(power)[1].astype(np.int64)
    octaves = np.floor(np.abs(qscales[:, 0] - qscales[:, 1]).astype(np.float64) * float(np.float32(steps.scale_step))
                       / LN2).astype(np.int64)
    s = e + np.maximum(octaves - 1, 0)
    return np.clip(steps.mean_frac_bits + (s - _lower_median(s) + 1) // 2, 0, MAX_MEAN_BITS).astype(np.int64)


def _color_multipliers(q: np.ndarray, steps: Steps) -> np.ndarray | None:
    """[N] float64 ``2**j`` of each Gaussian's colour step from its quantised scales (None: one step for all)."""
    if not steps.color_by_area:
        return None
    return np.ldexp(1.0, color_shifts(q, steps.scale_step))


def color_grid(g: Gaussians, height: int, width: int, steps: Steps) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour grid a record written with ``steps`` puts g's colours on: (lo [3] float64, each channel's
    origin (``color_lo``); step [N, 1] float64, each Gaussian's colour step); level q of a channel decodes to
    ``lo + q * step`` (as float32)."""
    q, grid = quantize(g, height, width, steps)
    mult = _color_multipliers(q.qscales, steps)
    step = float(np.float32(steps.color_step)) * (np.ones(len(g)) if mult is None else mult)
    lo = torch.tensor([float(np.float32(v)) for v in grid.color_lo], dtype=torch.float64)
    return lo, torch.from_numpy(step)[:, None]


def scale_origin(scales: torch.Tensor) -> float:
    """The record's ``scale_lo`` for scales [N, 2] (px, N >= 1, either axis order): the smallest ln s over both
    axes (float32 log), as a float32 value."""
    return _f32(torch.log(scales.detach().cpu()).double().min())


def _mean_levels(means: torch.Tensor, height: int, width: int, mbits: np.ndarray) -> torch.Tensor:
    """[N, 2] float64 whole numbers: the means' levels on each Gaussian's position grid of 2**-mbits px (mbits:
    [N] int64; means clamped first)."""
    unit = torch.from_numpy(np.ldexp(1.0, mbits)).to(means.device)
    return torch.round(clamp_means(means, height, width).double() * unit[:, None])


def snap_means(g: Gaussians, height: int, width: int, steps: Steps) -> torch.Tensor:
    """The means a record written with ``steps`` stores: [N, 2] float32 px on g's device (no gradient), the same
    as ``dequantize(quantize(...)).means`` (only the means are quantised unless the grid follows the Gaussians)."""
    with torch.no_grad():
        if steps.mean_by_sensitivity:
            q, grid = quantize(g, height, width, steps)
            return dequantize(q, steps, grid).means.to(g.means.device)
        k = steps.mean_frac_bits
        return (_mean_levels(g.means, height, width, np.full(len(g), k)) / float(1 << k)).float()


def quantize(g: Gaussians, height: int, width: int, steps: Steps) -> tuple[Quantized, Grid]:
    """Integers and grid of N Gaussians (detached, any device; computed on CPU)."""
    g = g.detach().to("cpu")
    n = len(g)
    if n == 0:
        z = lambda *s: np.zeros(s, dtype=np.int64)  # noqa: E731
        return Quantized(z(0, 2), z(0, 2), z(0), z(0), z(0, 3), z(0)), Grid(0.0, 1, (0.0, 0.0, 0.0), (1, 1, 1))
    scales, theta = canonicalize(g.scales, g.rotations)
    log_s = torch.log(scales).double().numpy()
    scale_lo = scale_origin(scales)
    st = float(np.float32(steps.scale_step))
    qscales = np.maximum(np.round((log_s - scale_lo) / st), 0).astype(np.int64)
    qscales[:, 1] = np.minimum(qscales[:, 1], qscales[:, 0])  # rounding never flips the canonical order
    rbits = rotation_bits(qscales, scale_lo, st, steps.rotation_tolerance)
    levels = np.left_shift(np.int64(1), rbits)
    qrot = np.mod(np.round(theta.double().numpy() * levels / math.pi), levels).astype(np.int64)
    colors = g.colors.double().numpy()
    color_lo = tuple(_f32(v) for v in colors.min(axis=0))
    cs = float(np.float32(steps.color_step))
    x = np.maximum((colors - np.asarray(color_lo)) / cs, 0.0)  # colour levels on the base step
    levels = tuple(int(v) + 1 for v in np.round(x).max(axis=0))
    mult = _color_multipliers(qscales, steps)
    qcolors = np.round(x if mult is None else x / mult[:, None]).astype(np.int64)  # exact: powers of two
    grid = Grid(scale_lo, int(qscales.max()) + 1, color_lo, levels)
    mbits = mean_bits(qscales, qcolors, steps, grid) if steps.mean_by_sensitivity else \
        np.full(n, steps.mean_frac_bits, dtype=np.int64)
    qmeans = _mean_levels(g.means, height, width, mbits).long().numpy()
    return Quantized(qmeans, qscales, qrot, rbits, qcolors, mbits), grid


def dequantize(q: Quantized, steps: Steps, grid: Grid) -> Gaussians:
    """Float32 Gaussians (CPU, canonical form) from a record's integers."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(torch.float32)  # noqa: E731
    f = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    means = t(q.qmeans) / t(np.ldexp(1.0, q.mbits))[:, None]  # exact: powers of two
    scales = torch.exp(f(grid.scale_lo) + t(q.qscales) * f(steps.scale_step))
    rot = t(q.qrot) * (math.pi / t(np.left_shift(np.int64(1), q.rbits)))
    mult = _color_multipliers(q.qscales, steps)
    step = f(steps.color_step) if mult is None else f(steps.color_step) * t(mult)[:, None]  # exact: powers of two
    colors = f(grid.color_lo) + t(q.qcolors) * step
    return Gaussians(means.contiguous(), scales.contiguous(), rot.contiguous(), colors.contiguous())


def fake_quantize(g: Gaussians, height: int, width: int, steps: Steps) -> Gaussians:
    """Straight-through fake quantisation on these steps: forward = the Gaussians a record written
    with ``steps`` decodes to (canonical form, input order), backward = identity (through the canonical form).

    g: N Gaussians (any device; may require grad). Returns N Gaussians on g's device.
    """
    if len(g) == 0:
        return g
    with torch.no_grad():
        q, grid = quantize(g, height, width, steps)
        deq = dequantize(q, steps, grid).to(g.means.device)
    scales, theta = canonicalize(g.scales, g.rotations)
    ste = lambda x, target: x + (target - x).detach()  # noqa: E731
    return Gaussians(ste(g.means, deq.means), ste(scales, deq.scales), ste(theta, deq.rotations),
                     ste(g.colors, deq.colors))
