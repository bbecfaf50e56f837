"""Image quality metrics: PSNR, SSIM, MS-SSIM in torch on the render device, tile by tile in bounded memory.

Same definitions as the float64 reference :mod:`smartsplat_dist.fitting.metrics_reference` (kept for tests and
the benchmark), computed in float32 with float64 accumulation:

* PSNR: ``10 log10(255^2 / MSE)``; differences and squares in float32 (exact for uint8 inputs: integers below
  2^24), sums in float64; identical images give ``inf``.
* SSIM: 11x11 Gaussian window (sigma 1.5), C1 = (0.01*255)^2, C2 = (0.03*255)^2, 'valid' map, mean over pixels
  then channels. The filtered statistics are float32 on values centred at 128 (variances are shift-invariant;
  centring quarters the magnitudes that cancel in ``E[x^2] - mu^2``); map sums are float64.
* MS-SSIM: 5 scales with the standard weights, fewer (renormalised) on small images, 2x2 mean pooling.

Inputs: [H, W, C] numpy uint8 (0..255), float numpy / torch in [0, 1] (x255, not clamped), or uint8 torch.
A tile of both images (default 1024 px plus the window halo, 10 * 2^(scales-1) px) is moved to ``device``
(default: the device of a torch input, else CPU) and converted there, so the caller's images are never copied
whole. On CPU the work runs with the process's whole thread budget (:func:`smartsplat_dist.threads.torch_threads`).
:func:`quality` computes PSNR and SSIM (and MS-SSIM when asked) in one pass over the tiles; on CPU, PSNR and
SSIM of two uint8 numpy images take the compiled float64 kernel of :mod:`.metrics_cpu` instead (about 4x
faster than the float64 reference there, which itself beat these float32 torch filters on CPU).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ImageError
from ..threads import torch_threads
from .loss import _filter
from .metrics_reference import DEFAULT_TILE, MS_SSIM_WEIGHTS, _check_pair, ms_ssim_scales
from .ssim_def import HALO, K1, K2, PEAK, psnr_from_sse

_C1 = (K1 * PEAK) ** 2
_C2 = (K2 * PEAK) ** 2
_CENTRE = 128.0


def _device_of(a: Any, b: Any, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    for img in (a, b):
        if isinstance(img, torch.Tensor):
            return img.device
    return torch.device("cpu")


def _crop(img: Any, r0: int, r1: int, c0: int, c1: int, device: torch.device) -> torch.Tensor:
    """A crop as [C, h, w] float32 on the 0..255 scale on ``device``."""
    part = img[r0:r1, c0:c1]
    if isinstance(part, torch.Tensor):
        t = part.detach().to(device)
        if t.dtype == torch.uint8:
            return t.permute(2, 0, 1).to(torch.float32)
        if not t.is_floating_point():
            raise ImageError(f"metric input must be uint8 or float in [0, 1], got dtype {t.dtype}")
        return t.permute(2, 0, 1).to(torch.float32) * PEAK
    part = np.asarray(part)
    if part.dtype == np.uint8:
        part = np.require(part, requirements=["C", "W"])  # torch wants writable memory: copies read-only input
        return torch.from_numpy(part).to(device).permute(2, 0, 1).to(torch.float32)
    if np.issubdtype(part.dtype, np.floating):
        part = np.require(part, requirements=["C", "W"])  # torch wants writable memory: copies read-only input
        return torch.from_numpy(part).to(device).permute(2, 0, 1).to(torch.float32) * PEAK
    raise ImageError(f"metric input must be uint8 or float in [0, 1], got dtype {part.dtype}")


def _maps(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ssim map, cs map) of [C, h, w] float32 tiles on the 0..255 scale, 'valid': [C, h-10, w-10] each."""
    c = x.shape[0]
    xc, yc = x - _CENTRE, y - _CENTRE
    f = _filter(torch.cat([xc, yc, xc * xc, yc * yc, xc * yc], dim=0).unsqueeze(0))[0]
    mx, my, exx, eyy, exy = (f[i * c:(i + 1) * c] for i in range(5))
    sxx = exx - mx * mx
    syy = eyy - my * my
    sxy = exy - mx * my
    cs = (2.0 * sxy + _C2) / (sxx + syy + _C2)
    mx = mx + _CENTRE
    my = my + _CENTRE
    lum = (2.0 * mx * my + _C1) / (mx * mx + my * my + _C1)
    return lum * cs, cs


def _sums(a: Any, b: Any, levels: int, tile: int, device: torch.device, want_sse: bool
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-scale SSIM and CS map sums ([levels, C] float64 each), map sizes ([levels] int64) and, when asked,
    the sum of squared differences over the whole image (0..255 scale)."""
    h, w, c = _check_pair(a, b)
    if levels and ms_ssim_scales(h, w, levels) < levels:
        raise ImageError(f"a {h}x{w} image is too small for {levels} SSIM scales")
    unit = 1 << max(levels - 1, 0)
    tile = max(unit, -(-int(tile) // unit) * unit)
    halo = HALO * unit if levels else 0
    sizes = [((h >> j) - HALO, (w >> j) - HALO) for j in range(levels)]
    counts = np.array([mh * mw for mh, mw in sizes], dtype=np.int64)
    ssim_sums = torch.zeros(levels, c, dtype=torch.float64, device=device)
    cs_sums = torch.zeros(levels, c, dtype=torch.float64, device=device)
    sse = torch.zeros((), dtype=torch.float64, device=device)
    for r0 in range(0, h, tile):
        r1 = min(h, r0 + tile + halo)
        for c0 in range(0, w, tile):
            c1 = min(w, c0 + tile + halo)
            x, y = _crop(a, r0, r1, c0, c1, device), _crop(b, r0, r1, c0, c1, device)
            if want_sse:
                d = x[:, :min(tile, h - r0), :min(tile, w - c0)] - y[:, :min(tile, h - r0), :min(tile, w - c0)]
                sse += (d * d).sum(dtype=torch.float64)
                del d
            for j in range(levels):
                if j:
                    if x.shape[1] < 2 or x.shape[2] < 2:  # an edge sliver: nothing at this scale or below
                        break
                    x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
                s = 1 << j
                mh, mw = sizes[j]
                lr1 = min((r0 + tile) // s, mh) - r0 // s
                lc1 = min((c0 + tile) // s, mw) - c0 // s
                if lr1 <= 0 or lc1 <= 0:
                    continue
                s_map, cs_map = _maps(x[:, :lr1 + HALO, :lc1 + HALO], y[:, :lr1 + HALO, :lc1 + HALO])
                ssim_sums[j] += s_map.sum(dim=(1, 2), dtype=torch.float64)
                cs_sums[j] += cs_map.sum(dim=(1, 2), dtype=torch.float64)
    return ssim_sums.cpu().numpy(), cs_sums.cpu().numpy(), counts, float(sse)


def _run(a: Any, b: Any, levels: int, tile: int, device: torch.device | str | None, want_sse: bool):
    dev = _device_of(a, b, device)
    if dev.type != "cpu":
        with torch.no_grad():
            return _sums(a, b, levels, tile, dev, want_sse)
    with torch.no_grad(), torch_threads():
        return _sums(a, b, levels, tile, dev, want_sse)


def _ms_combine(ssim_sums: np.ndarray, cs_sums: np.ndarray, counts: np.ndarray) -> float:
    levels = len(counts)
    weights = np.array(MS_SSIM_WEIGHTS[:levels])
    weights = weights / weights.sum()
    vals = cs_sums / counts[:, None]
    vals[-1] = ssim_sums[-1] / counts[-1]
    vals = np.maximum(vals, 0.0)
    return float(np.mean(np.prod(vals ** weights[:, None], axis=0)))


def psnr(a: Any, b: Any, *, tile: int = DEFAULT_TILE, device: torch.device | str | None = None) -> float:
    """PSNR in dB (8-bit peak 255); ``inf`` when identical.

    Args:
        a, b: [H, W, C] uint8 or float in [0, 1] (numpy or torch).
        tile: tile edge in px; device: where to compute (default: a torch input's device, else CPU).
    """
    h, w, c = _check_pair(a, b)
    _, _, _, sse = _run(a, b, 0, tile, device, True)
    return psnr_from_sse(sse, h * w * c)


def ssim(a: Any, b: Any, *, tile: int = DEFAULT_TILE, device: torch.device | str | None = None) -> float:
    """Mean SSIM ('valid' 11x11 Gaussian window, sigma 1.5), averaged over channels; H, W >= 11.

    Args: as :func:`psnr`.
    """
    ssim_sums, _, counts, _ = _run(a, b, 1, tile, device, False)
    return float(np.mean(ssim_sums[0] / counts[0]))


def ms_ssim(a: Any, b: Any, *, tile: int = DEFAULT_TILE, max_scales: int = 5,
            device: torch.device | str | None = None) -> float:
    """MS-SSIM with the standard 5-scale weights (fewer scales, renormalised weights, for small images).

    Args: as :func:`psnr`; max_scales: 1..5.
    """
    if not 1 <= int(max_scales) <= len(MS_SSIM_WEIGHTS):
        raise ValueError(f"max_scales must be in 1..{len(MS_SSIM_WEIGHTS)}, got {max_scales}")
    h, w, _ = _check_pair(a, b)
    levels = ms_ssim_scales(h, w, int(max_scales))
    ssim_sums, cs_sums, counts, _ = _run(a, b, levels, tile, device, False)
    return _ms_combine(ssim_sums, cs_sums, counts)


def quality(a: Any, b: Any, *, ms: bool = False, tile: int = DEFAULT_TILE,
            device: torch.device | str | None = None) -> dict[str, float]:
    """PSNR and SSIM (and MS-SSIM when ``ms``) in one pass over the tiles.

    Returns:
        {"psnr", "ssim"} (+ "ms_ssim"): the same values as the separate functions (on CPU without ``ms``, for
        uint8 numpy inputs: :func:`.metrics_cpu.quality_uint8`, the same values to float64 rounding).
    """
    h, w, c = _check_pair(a, b)
    if (not ms and c == 3 and _device_of(a, b, device).type == "cpu"
            and all(isinstance(img, np.ndarray) and img.dtype == np.uint8 for img in (a, b))):
        ms_ssim_scales(h, w, 1)  # raises ImageError under 11 x 11 px, as the tiled path does
        from .metrics_cpu import quality_uint8  # lazy: numba kernel module, needed on CPU only

        return quality_uint8(a, b)
    levels = ms_ssim_scales(h, w, len(MS_SSIM_WEIGHTS)) if ms else 1
    ssim_sums, cs_sums, counts, sse = _run(a, b, levels, tile, device, True)
    out = {"psnr": psnr_from_sse(sse, h * w * c), "ssim": float(np.mean(ssim_sums[0] / counts[0]))}
    if ms:
        out["ms_ssim"] = _ms_combine(ssim_sums, cs_sums, counts)
    return out


__all__ = ["psnr", "ssim", "ms_ssim", "quality", "ms_ssim_scales", "MS_SSIM_WEIGHTS", "DEFAULT_TILE"]
