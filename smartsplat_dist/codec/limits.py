"""Bounds on the work a record may ask of a decoder, checked before anything is allocated or rendered.

A record is untrusted input: a valid CRC32 is easy to compute, so a 136-byte record can ask for a
2**20 x 2**20 image, a few hundred bytes of all-zero LZMA streams for millions of Gaussians, or Gaussians
e**40 pixels wide that each cover every output pixel. :class:`DecodeLimits` says how much is acceptable; the
record parser calls :func:`check_header` (any record version) and the renderers call :func:`check_output`
and :func:`check_render`. A record over a limit is refused with a one-line :class:`RecordError` naming the
limit and how to raise it (``--limit NAME=VALUE`` on the command line).

Defaults pass a real DIV16K-size record (16320 x 10840, CR 100, 758,180 Gaussians) with a wide margin: it
asks for 177 MP, 0.0043 Gaussians per pixel, 1.94 decoded stream bytes per record byte, a mean of 11.1
Gaussian footprints per output pixel and a largest footprint half-extent of 0.009 of the long side.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields

import torch

from ..errors import ConfigError, RecordError
from ..raster.footprint import bbox_half_extent
from ..settings import Settings

#: Environment variable holding a JSON object of DecodeLimits fields: the process-wide defaults (the CLI sets
#: it from ``--limit`` and the Ray driver forwards it to its workers).
ENV_VAR = "SMARTSPLAT_DECODE_LIMITS"
#: Decoded stream bytes always allowed, whatever the record's size (small records compress unevenly).
STREAM_ALLOWANCE = 1 << 20


@dataclass(frozen=True)
class DecodeLimits(Settings):
    """What a record may ask for.

    Attributes:
        max_pixels: pixels of the record's image (H x W) and of any rendered output (after ``scale``).
        max_gaussians: Gaussians in one record (parse time and memory grow with it: ~2 us and ~0.2 kB each).
        max_gaussians_per_pixel: Gaussians per image pixel, N / (H x W).
        max_stream_expansion: decoded stream bytes per record byte (beyond a 1 MiB allowance): bounds the
            parse work per byte of input.
        max_overlap: mean number of Gaussian footprints (3.33-sigma boxes, clipped to the output) covering an
            output pixel: the render's work per pixel.
        max_footprint: largest footprint half-extent as a multiple of the output's longest side. The fit caps
            every scale at the image diagonal (``FitConfig.max_scale``), so its footprints reach 3.33 x sqrt(2) =
            4.7 long sides on a square image; 8 leaves room for quantisation and a raised cap.
    """

    max_pixels: int = 300_000_000
    max_gaussians: int = 1 << 23
    max_gaussians_per_pixel: float = 1.0
    max_stream_expansion: float = 64.0
    max_overlap: float = 64.0
    max_footprint: float = 8.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"DecodeLimits.{f.name} must be a positive number, got {v!r}")


#: No bounds: for records this process has just made itself (e.g. the encoder's own quality check).
UNLIMITED = DecodeLimits(*(math.inf for _ in fields(DecodeLimits)))


def current_limits() -> DecodeLimits:
    """The defaults, overridden by the JSON object in ``$SMARTSPLAT_DECODE_LIMITS`` when set."""
    text = os.environ.get(ENV_VAR)
    if not text:
        return DecodeLimits()
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError(f"${ENV_VAR} is not a JSON object") from None
    if not isinstance(data, dict):
        raise ConfigError(f"${ENV_VAR} is not a JSON object")
    return DecodeLimits.from_dict(data)


def parse_limit_args(items: list[str] | None) -> DecodeLimits:
    """``["max_pixels=1e9", ...]`` (the ``--limit`` flags) over :func:`current_limits`."""
    limits = current_limits()
    names = {f.name: f.type for f in fields(DecodeLimits)}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in names:
            raise ConfigError(f"--limit {item!r}: expected NAME=VALUE with NAME one of {', '.join(names)}")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"--limit {item!r}: {value!r} is not a number") from None
        if key in ("max_pixels", "max_gaussians") and math.isfinite(number):
            number = int(number)
        limits = limits.replace(**{key: number})
    return limits


def install(limits: DecodeLimits) -> None:
    """Make ``limits`` this process's (and its Ray workers') defaults."""
    os.environ[ENV_VAR] = json.dumps({k: v for k, v in limits.to_dict().items()})


def _num(v: float) -> str:
    return str(int(v)) if isinstance(v, int) or (math.isfinite(v) and v == int(v) and abs(v) < 1e15) else f"{v:g}"


def _over(what: str, value: float, name: str, limit: float) -> RecordError:
    return RecordError(f"record asks for {what}, over the limit {name}={_num(limit)} "
                       f"(raise it with --limit {name}=VALUE if you trust this record)")


def check_header(height: int, width: int, n: int, decoded_bytes: int, record_bytes: int,
                 limits: DecodeLimits | None = None) -> None:
    """Header fields of any record version against ``limits`` (before any stream is decompressed)."""
    lim = limits or current_limits()
    pixels = height * width
    if pixels > lim.max_pixels:
        raise _over(f"a {width}x{height} image ({pixels} pixels)", pixels, "max_pixels", lim.max_pixels)
    if n > lim.max_gaussians:
        raise _over(f"{n} Gaussians", n, "max_gaussians", lim.max_gaussians)
    if n > lim.max_gaussians_per_pixel * pixels:
        raise _over(f"{n} Gaussians on {pixels} pixels", n, "max_gaussians_per_pixel", lim.max_gaussians_per_pixel)
    if decoded_bytes > STREAM_ALLOWANCE + lim.max_stream_expansion * record_bytes:
        raise _over(f"{decoded_bytes} decoded stream bytes from a {record_bytes}-byte record", decoded_bytes,
                    "max_stream_expansion", lim.max_stream_expansion)


def output_size(height: int, width: int, scale: float, limits: DecodeLimits | None = None) -> tuple[int, int]:
    """(out_h, out_w) = round(H scale) x round(W scale), each >= 1; ConfigError for a scale that is not a
    finite positive number, RecordError when the output is over ``max_pixels``."""
    lim = limits or current_limits()
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or not scale > 0:
        raise ConfigError(f"scale must be a finite number > 0, got {scale}")
    fh, fw = height * float(scale), width * float(scale)
    if fh * fw > lim.max_pixels * 1.01 + 1:
        raise RecordError(f"rendering at scale {scale:g} asks for about {fw:.4g}x{fh:.4g} pixels, over the limit "
                          f"max_pixels={_num(lim.max_pixels)} (raise it with --limit max_pixels=VALUE)")
    out_h, out_w = max(1, round(fh)), max(1, round(fw))
    if out_h * out_w > lim.max_pixels:
        raise _over(f"a {out_w}x{out_h} output", out_h * out_w, "max_pixels", lim.max_pixels)
    return out_h, out_w


def check_render(g, height: int, width: int, limits: DecodeLimits | None = None) -> None:
    """Footprints of Gaussians ``g`` (already scaled to the output) on a ``height`` x ``width`` output."""
    lim = limits or current_limits()
    if len(g) == 0:
        return
    ext = bbox_half_extent(g.scales.detach().double(), g.rotations.detach().double())
    longest = float(max(height, width))
    biggest = float(ext.max()) if bool(torch.isfinite(ext).all()) else math.inf
    if biggest > lim.max_footprint * longest:
        raise _over(f"a Gaussian footprint {biggest:.4g} px wide each way on a {width}x{height} output",
                    biggest, "max_footprint", lim.max_footprint)
    m = g.means.detach().double()
    wx = (torch.clamp(m[:, 0] + ext[:, 0], max=float(width)) - torch.clamp(m[:, 0] - ext[:, 0], min=0.0)).clamp(min=0)
    wy = (torch.clamp(m[:, 1] + ext[:, 1], max=float(height)) - torch.clamp(m[:, 1] - ext[:, 1], min=0.0)).clamp(min=0)
    overlap = float((wx * wy).sum()) / (height * width)
    if overlap > lim.max_overlap:
        raise _over(f"{overlap:.4g} Gaussian footprints per output pixel on average", overlap, "max_overlap",
                    lim.max_overlap)
