"""Compiled multi-threaded CPU rasterizer (numba): forward and hand-written backward (docs/design.md §1–2).

Same model as the torch reference: pixel centre ``(x + 0.5, y + 0.5)``,
``sigma = 1/2 (a dx^2 + 2 b dx dy + c dy^2)`` with the conic ``(a, b, c)`` of ``footprint.conics``, a term is kept
iff ``sigma <= SIGMA_MAX`` (evaluated in float32 exactly like the reference), sum blending, unclamped.

Kernels:

* The conic and the 3.33-sigma bounding extents are computed in torch (``footprint``), so autograd carries the
  gradient from the conic to ``scales`` / ``rotations``; the custom ``autograd.Function`` only differentiates
  w.r.t. means, conics and colours.
* Each Gaussian visits only the pixels inside its 3.33-sigma ellipse: per pixel row the exact span of the
  ellipse is solved from the quadratic (float64, widened by 1e-3 px), and the float32 sigma test decides.
* Along a row sigma is quadratic in x, so the weights follow a recurrence (:func:`_row_start`): two float64
  multiplies per pixel instead of an exp, and closer to exact than float32 exps (tested on long elongated
  Gaussians against float64 weights: mean and colour gradients within 2e-6 and 6e-6 relative, against 7e-5 and
  3e-5 with an exp per pixel). Rows shorter than :data:`RECURRENCE_MIN` pixels take the exp. On a fitted
  768x512 photo: 1.8x on the forward, 2.5x on the backward.
* Forward: Gaussians are binned (serially, cheap) to horizontal strips of ``STRIP`` rows; the strips run in
  parallel (``prange``), each writing only its own rows — no write races.
* Backward: parallel over :data:`BACKWARD_PARTS` strided parts of the Gaussians; each Gaussian gathers
  ``grad_output`` over its own ellipse, sums per row, and accumulates its own 8 gradient values (2 mean,
  3 conic, 3 colour) in float64 — no races, no atomics.

Threading: numba's OpenMP layer and torch's OpenMP pool are two separate OpenMP runtimes; each spin-waits after
a parallel region, so a process that alternates torch ops and numba kernels makes them fight for the cores
(up to ~4x, below). Measured here (``python -m smartsplat_dist.raster.cpu_backend``: render + backward + an
11x11 conv at 512^2 / 20k, 2 threads, on this 2-core machine shared with other jobs, 6 runs each):
``omp`` 129-593 ms per step with 3 of 6 runs above 470 ms (the ~4x), ``workqueue`` 137-765 ms with 1 of 6
above 160 ms (the shared load makes every figure noisy). ``workqueue`` never spin-waits, so this module
selects it unless the user chose a layer through ``NUMBA_THREADING_LAYER`` (the layer is fixed process-wide by
the first parallel launch, so this import must come first to take effect). workqueue does not allow
concurrent launches from several Python threads, so launches are serialised by a module lock (thread-safe).
numba runs :func:`smartsplat_dist.threads.numba_threads` threads (the process's CPU budget, never the machine's).
Kernels are compiled with ``cache=True`` and without fastmath (the cut must be decided exactly like the reference).
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from typing import Iterator

import numba
import numpy as np
import torch
from numba import njit, prange

from ..model import SIGMA_MAX
from ..threads import numba_threads
from .footprint import bbox_half_extent, conics

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

#: Rows per forward work item (strips run in parallel).
STRIP = 16
_SMAX32 = np.float32(SIGMA_MAX)
#: Rows with at least this many pixels (minus one) get their weights by recurrence; shorter ones by exp.
RECURRENCE_MIN = 6
#: The backward's Gaussians are split into this many strided parts, the unit of parallel work: neighbours in
#: the list are often alike in size (contiguous halves differed 2.5x in work on a fitted photo).
BACKWARD_PARTS = 64
_EPS = 1e-3
#: The workqueue layer aborts on concurrent launches from several threads: kernels run one at a time.
_LAUNCH = threading.Lock()


@njit(cache=True, inline="always")
def _row_span(a, b, c, dy, mx, width):
    """Pixel columns [x0, x1] whose centres can satisfy sigma <= SIGMA_MAX in a row at offset dy (float64)."""
    af, bf, cf = np.float64(a), np.float64(b), np.float64(c)
    dy, mx = np.float64(dy), np.float64(mx)
    if not (af > 0.0) or not math.isfinite(af):
        return 0, width - 1
    disc = (bf * dy) ** 2 - af * (cf * dy * dy - 2.0 * SIGMA_MAX)
    if disc < 0.0:
        if disc < -1e-6 * (abs(af * cf * dy * dy) + 2.0 * af * SIGMA_MAX):
            return 0, -1
        disc = 0.0
    sq = math.sqrt(disc)
    lo = mx + (-bf * dy - sq) / af
    hi = mx + (-bf * dy + sq) / af
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0, width - 1  # the float32 sigma test decides (NaN terms are never kept)
    pad = _EPS + 1e-6 * (hi - lo)
    lo = min(max(lo - 0.5 - pad, -1.0), float(width))  # clip before int conversion
    hi = min(max(hi - 0.5 + pad, -1.0), float(width))
    return max(0, int(math.ceil(lo))), min(width - 1, int(math.floor(hi)))


@njit(cache=True, inline="always")
def _row_start(fa, fb, fc, x0, x1, mx, dy):
    """How a row's weights are computed: (w, r, direct), float64, float64, bool.

    Along a row sigma is quadratic in dx with second difference ``a``: the weights follow
    ``w[x+1] = w[x] * r[x]``, ``r[x+1] = r[x] * exp(-a)`` from w = exp(-sigma) at x0 and r its ratio to the next
    pixel's. ``direct`` (rows shorter than :data:`RECURRENCE_MIN`, a start far outside the ellipse, where w
    would underflow and stay 0, or one that is not finite): take each weight's exp instead (w and r are then
    unused).
    """
    if x1 - x0 < RECURRENCE_MIN:
        return 0.0, 0.0, True
    d = np.float64(np.float32(x0 + 0.5) - mx)  # the reference's float32 offset, exact in float64
    fdy = np.float64(dy)
    sigma = 0.5 * (fa * d * d + 2.0 * fb * d * fdy + fc * fdy * fdy)
    if not (sigma <= 50.0):  # far outside the ellipse (a degenerate row), or not a number: w would underflow
        return 0.0, 0.0, True
    r = math.exp(-(fa * d + 0.5 * fa + fb * fdy))
    return math.exp(-sigma), r, not math.isfinite(r)


@njit(cache=True)
def _row_ranges(means, ext, height):
    """First/last pixel row each Gaussian can touch: [N] int64 each (r1 < r0 when it touches none)."""
    n = means.shape[0]
    r0 = np.empty(n, np.int64)
    r1 = np.empty(n, np.int64)
    for i in range(n):
        my = np.float64(means[i, 1])
        ey = np.float64(ext[i, 1])
        if not (math.isfinite(my) and math.isfinite(ey)):
            r0[i], r1[i] = 0, height - 1
            if not math.isfinite(my):
                r1[i] = -1
            continue
        pad = _EPS + 1e-6 * ey
        lo = min(max(my - ey - 0.5 - pad, -1.0), float(height))  # clip before int conversion
        hi = min(max(my + ey - 0.5 + pad, -1.0), float(height))
        r0[i] = max(0, int(math.ceil(lo)))
        r1[i] = min(height - 1, int(math.floor(hi)))
    return r0, r1


@njit(cache=True)
def _bin_strips(r0, r1, n_strips):
    """CSR lists of the Gaussians touching each strip: starts [n_strips + 1], ids [M] (both int64)."""
    counts = np.zeros(n_strips + 1, np.int64)
    n = r0.shape[0]
    for i in range(n):
        if r1[i] >= r0[i]:
            for s in range(r0[i] // STRIP, r1[i] // STRIP + 1):
                counts[s + 1] += 1
    for s in range(n_strips):
        counts[s + 1] += counts[s]
    ids = np.empty(counts[n_strips], np.int64)
    fill = counts[:n_strips].copy()
    for i in range(n):
        if r1[i] >= r0[i]:
            for s in range(r0[i] // STRIP, r1[i] // STRIP + 1):
                ids[fill[s]] = i
                fill[s] += 1
    return counts, ids


@njit(cache=True, parallel=True)
def _forward(means, conic, colors, r0, r1, starts, ids, out):
    """out[H, W, 3] float32 (zeroed) += sum of kept terms; parallel over strips."""
    height, width = out.shape[0], out.shape[1]
    n_strips = starts.shape[0] - 1
    half = np.float32(0.5)
    two = np.float32(2.0)
    for s in prange(n_strips):
        ys0 = s * STRIP
        ys1 = min(height - 1, ys0 + STRIP - 1)
        for j in range(starts[s], starts[s + 1]):
            g = ids[j]
            mx, my = means[g, 0], means[g, 1]
            a, b, c = conic[g, 0], conic[g, 1], conic[g, 2]
            c0, c1, c2 = colors[g, 0], colors[g, 1], colors[g, 2]
            fa, fb, fc = np.float64(a), np.float64(b), np.float64(c)
            q = math.exp(-fa)
            tb = two * b
            for y in range(max(ys0, r0[g]), min(ys1, r1[g]) + 1):
                dy = np.float32(y + 0.5) - my
                x0, x1 = _row_span(a, b, c, dy, mx, width)
                cdy = c * dy * dy
                w, r, direct = _row_start(fa, fb, fc, x0, x1, mx, dy)
                for x in range(x0, x1 + 1):
                    dx = np.float32(x + 0.5) - mx
                    sig = half * (a * dx * dx + tb * dx * dy + cdy)
                    if sig <= _SMAX32:
                        wx = np.exp(-sig) if direct else np.float32(w)
                        out[y, x, 0] += c0 * wx
                        out[y, x, 1] += c1 * wx
                        out[y, x, 2] += c2 * wx
                    w *= r
                    r *= q


@njit(cache=True, parallel=True)
def _backward(means, conic, colors, r0, r1, grad_out, g_means, g_conic, g_colors):
    """Per-Gaussian gradients (float32 outputs, float64 accumulation); parallel over Gaussians."""
    n = means.shape[0]
    width = grad_out.shape[1]
    half = np.float32(0.5)
    two = np.float32(2.0)
    for part in prange(BACKWARD_PARTS):
        for g in range(part, n, BACKWARD_PARTS):  # strided: each part samples the whole list
            mx, my = means[g, 0], means[g, 1]
            a, b, c = conic[g, 0], conic[g, 1], conic[g, 2]
            c0, c1, c2 = np.float64(colors[g, 0]), np.float64(colors[g, 1]), np.float64(colors[g, 2])
            fa, fb, fc = np.float64(a), np.float64(b), np.float64(c)
            q = math.exp(-fa)
            tb = two * b
            gmx = gmy = ga = gb = gc = 0.0
            gc0 = gc1 = gc2 = 0.0
            for y in range(r0[g], r1[g] + 1):
                dy = np.float32(y + 0.5) - my
                x0, x1 = _row_span(a, b, c, dy, mx, width)
                cdy = c * dy * dy
                fdy = np.float64(dy)
                w, r, direct = _row_start(fa, fb, fc, x0, x1, mx, dy)
                # the row's sums of w * g_k, gw = dL/dw * w = -dL/dsigma, gw * dx and gw * dx^2
                s0 = s1 = s2 = sw = swx = swxx = 0.0
                for x in range(x0, x1 + 1):
                    dx = np.float32(x + 0.5) - mx
                    sig = half * (a * dx * dx + tb * dx * dy + cdy)
                    if sig <= _SMAX32:
                        wx = np.float64(np.exp(-sig)) if direct else w
                        t0 = np.float64(grad_out[y, x, 0]) * wx
                        t1 = np.float64(grad_out[y, x, 1]) * wx
                        t2 = np.float64(grad_out[y, x, 2]) * wx
                        s0 += t0
                        s1 += t1
                        s2 += t2
                        gw = t0 * c0 + t1 * c1 + t2 * c2
                        fdx = np.float64(dx)
                        sw += gw
                        swx += gw * fdx
                        swxx += gw * fdx * fdx
                    w *= r
                    r *= q
                gc0 += s0
                gc1 += s1
                gc2 += s2
                # sigma depends on m through d = p - m: dsigma/dm = -(Sigma^-1 d)
                gmx += fa * swx + fb * fdy * sw
                gmy += fb * swx + fc * fdy * sw
                ga -= 0.5 * swxx
                gb -= fdy * swx
                gc -= 0.5 * fdy * fdy * sw
            g_means[g, 0], g_means[g, 1] = gmx, gmy
            g_conic[g, 0], g_conic[g, 1], g_conic[g, 2] = ga, gb, gc
            g_colors[g, 0], g_colors[g, 1], g_colors[g, 2] = gc0, gc1, gc2


def _threads() -> int:
    return numba_threads()


@contextlib.contextmanager
def launch_lock(threads: int) -> Iterator[None]:
    """Hold the launch lock and run numba kernels with ``threads`` threads inside (every numba launch of the
    package goes through this: the workqueue layer allows one launch at a time)."""
    with _LAUNCH:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
        yield


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).contiguous().numpy()


class _SumRaster(torch.autograd.Function):
    """image = raster(means, conic, colors); ``ext`` and the size are constants."""

    @staticmethod
    def forward(ctx, means, conic, colors, ext, height, width):
        m, q, col, e = _np(means), _np(conic), _np(colors), _np(ext)
        r0, r1 = _row_ranges(m, e, height)
        n_strips = (height + STRIP - 1) // STRIP
        starts, ids = _bin_strips(r0, r1, n_strips)
        out = np.zeros((height, width, 3), np.float32)
        if m.shape[0]:
            with launch_lock(_threads()):
                _forward(m, q, col, r0, r1, starts, ids, out)
        ctx.save_for_backward(means, conic, colors)
        ctx.rows = (r0, r1)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad_out):
        means, conic, colors = ctx.saved_tensors
        r0, r1 = ctx.rows
        n = means.shape[0]
        g_means = np.zeros((n, 2), np.float32)
        g_conic = np.zeros((n, 3), np.float32)
        g_colors = np.zeros((n, 3), np.float32)
        if n:
            with launch_lock(_threads()):
                _backward(_np(means), _np(conic), _np(colors), r0, r1, _np(grad_out), g_means, g_conic, g_colors)
        return torch.from_numpy(g_means), torch.from_numpy(g_conic), torch.from_numpy(g_colors), None, None, None


def render_cpu(means: torch.Tensor, scales: torch.Tensor, rotations: torch.Tensor, colors: torch.Tensor,
               height: int, width: int) -> torch.Tensor:
    """Render N Gaussians by sum blending with the compiled CPU kernel.

    Args:
        means: [N, 2] float32, pixels; scales: [N, 2] float32, pixels, > 0; rotations: [N] float32, radians;
        colors: [N, 3] float32. CPU tensors.
        height, width: output size in pixels.
    Returns:
        [height, width, 3] float32, unclamped; differentiable w.r.t. all four inputs.
    """
    height, width = int(height), int(width)
    conic = conics(scales, rotations)
    with torch.no_grad():
        ext = bbox_half_extent(scales, rotations)
    return _SumRaster.apply(means, conic, colors, ext, height, width)


def _threading_benchmark() -> None:  # pragma: no cover - a measurement, run by hand
    """Alternate torch ops with render+backward at 512^2 / 20k and print the time per step."""
    g = torch.Generator().manual_seed(0)
    n, h, w = 20000, 512, 512
    means = (torch.rand(n, 2, generator=g) * torch.tensor([w, h])).requires_grad_()
    scales = torch.full((n, 2), 0.68).mul(torch.exp(0.4 * torch.randn(n, 2, generator=g))).requires_grad_()
    rot = (torch.rand(n, generator=g) * 6.3).requires_grad_()
    col = torch.rand(n, 3, generator=g).requires_grad_()
    target = torch.rand(h, w, 3, generator=g)
    conv = torch.nn.Conv2d(3, 3, 11, padding=5)
    for i in range(8):
        if i == 3:
            t0 = time.perf_counter()
        img = render_cpu(means, scales, rot, col, h, w)
        loss = (img - target).abs().mean() + conv(img.permute(2, 0, 1)[None]).abs().mean()
        loss.backward()
    dt = (time.perf_counter() - t0) / 5
    print(f"layer={numba.threading_layer()} threads={_threads()} step={dt * 1e3:.1f} ms")


if __name__ == "__main__":  # pragma: no cover
    _threading_benchmark()


__all__ = ["render_cpu", "STRIP"]
