"""Quantisation of record versions 2 to 6: fixed steps, and precision that follows what each Gaussian shows.

Version 1 spread a fixed number of levels over each attribute's full range, so a few outliers of a long fit
(a 2,000 px Gaussian, a strong colour) set the step for every Gaussian, and a uniform 7-bit angle moved the far
end of a long Gaussian by tens of pixels. Version 2 uses steps that do not depend on the data's range (the range
only sets how many levels there are, which the adaptive entropy coder pays for only where they are used):

    means     [N, 2]  on a grid of 2**-mean_frac_bits px (as version 1); version 5 (``Steps.mean_by_sensitivity``):
                      of 2**-f px with f per Gaussian from its *quantised* colour and scales (see
                      :func:`mean_bits`): moving a Gaussian by d px adds about
                      ``|c|**2 * pi/2 * (sx/sy + sy/sx)/2 * d**2`` to the image's squared error (whatever its
                      size), so the step that spends bits evenly halves per quadrupling of that sensitivity
    log-scales [N, 2] ln s on a grid of ``scale_step`` from the record's smallest ln s (canonical: sx >= sy);
                      version 6 (``Steps.scale_by_sensitivity``): on a grid of ``scale_step * 2**(2 - r)`` with r
                      per Gaussian from its coarse scales and its colour (see :func:`scale_bits`): an ln-scale error
                      e adds about ``|c|**2 * 3pi/4 * sx * sy * e**2`` to the image's squared error, so the step
                      halves per quadrupling of ``|c|**2 * sx * sy``. Coded as a coarse level (``floor`` on the
                      grid of ``4 * scale_step``) then r refinement bits; decoded at the middle of its cell
    rotation  [N]     2**rb levels over [0, pi), rb per Gaussian from its *quantised* scales:
                      rb = clamp(ceil(log2(pi * (sx - sy) / (2 * rotation_tolerance))), 0, MAX_ROTATION_BITS),
                      so the 1-sigma ellipse moves by at most ~rotation_tolerance px whatever its length, and a
                      round Gaussian stores no angle at all
    colours   [N, 3]  on a grid of ``color_step`` from each channel's minimum; version 4 (``Steps.color_by_area``):
                      of ``color_step * 2**j`` with j per Gaussian from its *quantised* area relative to the
                      record's median (see :func:`color_shifts`): a Gaussian's colour error adds
                      ``pi * sx * sy * err**2`` to the image's squared error, so the step that spends bits evenly
                      across the picture shrinks as ``1 / sqrt(sx * sy)``: one octave per quadrupling of the area

Integer tensors: qmeans [N, 2] (levels on each Gaussian's position grid), qscales [N, 2] (qsx >= qsy >= 0; levels
on the grid of :func:`scale_unit`), qrot [N], rbits [N], qcolors [N, 3], mbits [N] (each Gaussian's fractional
position bits), sbits [N] (version 6: each Gaussian's scale refinement bits).
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
#: Version 6 scale grids: the median Gaussian's step is ``scale_step`` (SCALE_MEDIAN_BITS refinement bits below the
#: coarse step ``scale_step * 2**SCALE_MEDIAN_BITS``); each Gaussian has 0..MAX_SCALE_BITS refinement bits.
SCALE_MEDIAN_BITS = 2
MAX_SCALE_BITS = 6
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
        scale_by_sensitivity: the ln-scale grid follows each Gaussian's colour and area (record version 6,
            :func:`scale_bits`); ``scale_step`` is then that of the record's median Gaussian.
    """

    mean_frac_bits: int
    scale_step: float
    rotation_tolerance: float
    color_step: float
    color_by_area: bool = False
    mean_by_sensitivity: bool = False
    scale_by_sensitivity: bool = False


@dataclass(frozen=True)
class Grid:
    """Per-record origins and level counts (header): scale_lo (ln px), scale_levels (of the coarse scale grid in
    version 6), color_lo[3], color_levels[3]."""

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
    sbits: np.ndarray    # [N], 0..MAX_SCALE_BITS: scale refinement bits (version 6; else 0)


def _f32(v) -> float:
    return float(np.float32(v))


def coarse_step(steps: Steps) -> float:
    """Step of the coded ln-scale levels (float64, exact float32): ``scale_step``, or version 6's coarse step
    ``scale_step * 2**SCALE_MEDIAN_BITS``."""
    return _f32(steps.scale_step) * (1 << SCALE_MEDIAN_BITS if steps.scale_by_sensitivity else 1)


def scale_unit(steps: Steps) -> float:
    """Step of the ``qscales`` levels (float64, exact float32): ``scale_step``, or in version 6
    ``coarse_step / 2**(MAX_SCALE_BITS + 1)`` (every cell middle of every refinement is a whole level)."""
    if not steps.scale_by_sensitivity:
        return _f32(steps.scale_step)
    return coarse_step(steps) / (1 << (MAX_SCALE_BITS + 1))


def coarse_scales(qscales: np.ndarray, steps: Steps) -> np.ndarray:
    """[N, 2] coded ln-scale levels (on :func:`coarse_step`) of [N, 2] ``qscales``."""
    return qscales >> (MAX_SCALE_BITS + 1) if steps.scale_by_sensitivity else qscales


def fine_scales(coarse: np.ndarray, fraction: np.ndarray, sbits: np.ndarray) -> np.ndarray:
    """[N, 2] ``qscales`` (version 6) from the coarse levels [N, 2], the refinement bits' values [N, 2] (each
    < 2**sbits) and sbits [N]: the middle of the refined cell, ``coarse * 2**(R + 1) + (2 * fraction + 1) *
    2**(R - sbits)`` with R = MAX_SCALE_BITS."""
    r = MAX_SCALE_BITS
    return (coarse << (r + 1)) + ((2 * fraction + 1) << (r - sbits)[:, None])


def scale_fraction(qscales: np.ndarray, sbits: np.ndarray) -> np.ndarray:
    """[N, 2] refinement bits' values of version-6 ``qscales`` [N, 2] with sbits [N] (inverse of
    :func:`fine_scales`)."""
    return (qscales >> (MAX_SCALE_BITS + 1 - sbits)[:, None]) & ((np.int64(1) << sbits)[:, None] - 1)


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


def _color_values(coarse: np.ndarray, qcolors: np.ndarray, steps: Steps, grid: Grid) -> np.ndarray:
    """[N, 3] float64 dequantised colours ``color_lo + q * color_step * 2**j`` (j from :func:`color_shifts` of the
    coarse scale levels [N, 2]; header values as float32 -> float64)."""
    mult = _color_multipliers(coarse, steps)
    cs = float(np.float32(steps.color_step)) * (np.ones(len(coarse)) if mult is None else mult)
    return np.asarray([float(np.float32(v)) for v in grid.color_lo]) + qcolors.astype(np.float64) * cs[:, None]


def _power_exponent(c: np.ndarray) -> np.ndarray:
    """[N] int64 binary exponent e of ``|c|**2`` for [N, 3] float64 colours (``frexp``: ``|c|**2 = m * 2**e``, m in
    [0.5, 1); below 2**-60 counts as 2**-60)."""
    return np.frexp(np.maximum((c * c).sum(axis=1), 2.0 ** -60))[1].astype(np.int64)


def scale_bits(coarse: np.ndarray, qcolors: np.ndarray, steps: Steps, grid: Grid) -> np.ndarray:
    """Scale refinement bits r of each Gaussian (version 6) from its coarse scale levels and quantised colours.
    coarse: [N, 2], qcolors: [N, 3] int. Returns [N] int64 in 0..MAX_SCALE_BITS.

    The sensitivity octave ``s = e + floor((cx + cy) * coarse_step / LN2)``, e the binary exponent of ``|c|**2``
    (as in :func:`mean_bits`, c decoded with the colour steps of the coarse levels) and the second term the
    area's octave; with ``m`` the lower median of s: ``r = clamp(SCALE_MEDIAN_BITS + floor((s - m + 1) / 2), 0,
    MAX_SCALE_BITS)``, all in float64 with only + * / (``coarse_step`` exact). The median Gaussian's ln-scale
    step is ``scale_step``; one four times as sensitive has half of it.
    """
    n = coarse.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    e = _power_exponent(_color_values(coarse, qcolors, steps, grid))
    area = np.floor(coarse.sum(axis=1).astype(np.float64) * coarse_step(steps) / LN2).astype(np.int64)
    s = e + area
    return np.clip(SCALE_MEDIAN_BITS + (s - _lower_median(s) + 1) // 2, 0, MAX_SCALE_BITS).astype(np.int64)


def mean_bits(qscales: np.ndarray, qcolors: np.ndarray, steps: Steps, grid: Grid) -> np.ndarray:
    """Fractional position bits f of each Gaussian (version 5) from its quantised scales and colours.
    qscales: [N, 2], qcolors: [N, 3] int. Returns [N] int64 in 0..MAX_MEAN_BITS.

    The sensitivity octave ``s = e + max(floor(|qsx - qsy| * unit / LN2) - 1, 0)`` (unit: :func:`scale_unit`),
    where e is the binary exponent of ``|c|**2`` (``frexp``: ``|c|**2 = m * 2**e``, m in [0.5, 1); ``|c|**2``
    below 2**-60 counts as 2**-60) and c the dequantised colour ``color_lo + q * color_step * 2**j`` (j from
    :func:`color_shifts` of the coded scale levels), all in float64 with only + * / (header values as float32 ->
    float64); the second term is the elongation's octave less one. With ``m`` the lower median of s: ``f = clamp(mean_frac_bits + floor((s - m + 1) / 2), 0,
    MAX_MEAN_BITS)``: the median Gaussian has ``mean_frac_bits``, one four times as sensitive one bit more.
    """
    n = qscales.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    e = _power_exponent(_color_values(coarse_scales(qscales, steps), qcolors, steps, grid))
    octaves = np.floor(np.abs(qscales[:, 0] - qscales[:, 1]).astype(np.float64) * scale_unit(steps)
                       / LN2).astype(np.int64)
    s = e + np.maximum(octaves - 1, 0)
    return np.clip(steps.mean_frac_bits + (s - _lower_median(s) + 1) // 2, 0, MAX_MEAN_BITS).astype(np.int64)


def _color_multipliers(coarse: np.ndarray, steps: Steps) -> np.ndarray | None:
    """[N] float64 ``2**j`` of each Gaussian's colour step from its coded scale levels [N, 2] (None: one step
    for all)."""
    if not steps.color_by_area:
        return None
    return np.ldexp(1.0, color_shifts(coarse, coarse_step(steps)))


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
        return (Quantized(z(0, 2), z(0, 2), z(0), z(0), z(0, 3), z(0), z(0)),
                Grid(0.0, 1, (0.0, 0.0, 0.0), (1, 1, 1)))
    scales, theta = canonicalize(g.scales, g.rotations)
    log_s = torch.log(scales).double().numpy()
    step = coarse_step(steps)
    # version 6: the origin on a multiple of the coarse step, so that the Gaussians a record decodes to (each in
    # the middle of its cell) quantise to the same levels again (the fine-tunes re-encode them)
    scale_lo = _f32(step * math.floor(log_s.min() / step) if steps.scale_by_sensitivity else log_s.min())
    x = np.maximum((log_s - scale_lo) / step, 0.0)  # ln-scale in coded levels
    coarse = np.floor(x) if steps.scale_by_sensitivity else np.round(x)
    coarse = coarse.astype(np.int64)
    coarse[:, 1] = np.minimum(coarse[:, 1], coarse[:, 0])  # rounding never flips the canonical order
    colors = g.colors.double().numpy()
    color_lo = tuple(_f32(v) for v in colors.min(axis=0))
    cs = float(np.float32(steps.color_step))
    xc = np.maximum((colors - np.asarray(color_lo)) / cs, 0.0)  # colour levels on the base step
    levels = tuple(int(v) + 1 for v in np.round(xc).max(axis=0))
    mult = _color_multipliers(coarse, steps)
    qcolors = np.round(xc if mult is None else xc / mult[:, None]).astype(np.int64)  # exact: powers of two
    grid = Grid(scale_lo, int(coarse.max()) + 1, color_lo, levels)
    if steps.scale_by_sensitivity:
        sbits = scale_bits(coarse, qcolors, steps, grid)
        top = (np.int64(1) << sbits)[:, None]
        fraction = np.clip(np.floor((x - coarse) * top), 0, top - 1).astype(np.int64)
        fraction[:, 1] = np.where(coarse[:, 1] == coarse[:, 0], np.minimum(fraction[:, 1], fraction[:, 0]),
                                  fraction[:, 1])
        qscales = fine_scales(coarse, fraction, sbits)
    else:
        sbits, qscales = np.zeros(n, dtype=np.int64), coarse
    rbits = rotation_bits(qscales, scale_lo, scale_unit(steps), steps.rotation_tolerance)
    rot_levels = np.left_shift(np.int64(1), rbits)
    qrot = np.mod(np.round(theta.double().numpy() * rot_levels / math.pi), rot_levels).astype(np.int64)
    mbits = mean_bits(qscales, qcolors, steps, grid) if steps.mean_by_sensitivity else \
        np.full(n, steps.mean_frac_bits, dtype=np.int64)
    qmeans = _mean_levels(g.means, height, width, mbits).long().numpy()
    return Quantized(qmeans, qscales, qrot, rbits, qcolors, mbits, sbits), grid


def dequantize(q: Quantized, steps: Steps, grid: Grid) -> Gaussians:
    """Float32 Gaussians (CPU, canonical form) from a record's integers."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(torch.float32)  # noqa: E731
    f = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    means = t(q.qmeans) / t(np.ldexp(1.0, q.mbits))[:, None]  # exact: powers of two
    scales = torch.exp(f(grid.scale_lo) + t(q.qscales) * f(scale_unit(steps)))
    rot = t(q.qrot) * (math.pi / t(np.left_shift(np.int64(1), q.rbits)))
    mult = _color_multipliers(coarse_scales(q.qscales, steps), steps)
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
