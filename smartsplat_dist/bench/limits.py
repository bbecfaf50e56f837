"""``smartsplat bench limits``: what a real record asks of a decoder, next to the DecodeLimits defaults.

The record is a given ``--record`` file, or built from the smart init of an 8x Lanczos upsample of
``--from-init IMAGE`` at ``--cr`` (DIV16K-like for a 2K photo: minutes and ~2 GB), or, by default, synthetic
Gaussians with a fitted image's statistics on a 16K frame. Prints one row per limit (value asked, limit,
headroom) and the parse time.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ..codec.limits import UNLIMITED, DecodeLimits
from ..codec.record import decode_record, read_demand
from ..model import n_gaussians_for_cr
from ..raster.footprint import bbox_half_extent
from .common import format_table
from .decode import HEIGHT_16K, WIDTH_16K, _image_size, init_gaussians, make_record, synthetic_gaussians

DESCRIPTION = "what a 16K record asks for (pixels, Gaussians, stream bytes, render overlap, footprint) vs the decode limits"


def add_arguments(p) -> None:
    p.add_argument("--record", help="measure this record file")
    p.add_argument("--from-init", metavar="IMAGE", help="build the record from the smart init of an 8x upsample")
    p.add_argument("--cr", type=float, default=100.0)
    p.add_argument("--save", metavar="FILE", help="also write the record built here")


def measure(record: bytes) -> dict[str, Any]:
    """The figures :mod:`smartsplat_dist.codec.limits` checks, for ``record`` (no limits applied)."""
    meta, decoded = read_demand(record, UNLIMITED)
    t0 = time.perf_counter()
    g, _ = decode_record(record, UNLIMITED)
    seconds = time.perf_counter() - t0
    h, w = meta.height, meta.width
    ext = bbox_half_extent(g.scales.double(), g.rotations.double())
    m = g.means.double()
    wx = (torch.clamp(m[:, 0] + ext[:, 0], max=float(w)) - torch.clamp(m[:, 0] - ext[:, 0], min=0.0)).clamp(min=0)
    wy = (torch.clamp(m[:, 1] + ext[:, 1], max=float(h)) - torch.clamp(m[:, 1] - ext[:, 1], min=0.0)).clamp(min=0)
    return {"height": h, "width": w, "record_bytes": len(record), "parse_seconds": seconds,
            "max_pixels": h * w, "max_gaussians": meta.n, "max_gaussians_per_pixel": meta.n / (h * w),
            "max_stream_expansion": decoded / len(record), "decoded_stream_bytes": decoded,
            "max_overlap": float((wx * wy).sum()) / (h * w),
            "max_footprint": float(ext.max()) / max(h, w) if meta.n else 0.0}


def run(args) -> dict[str, Any]:
    if args.record:
        record, source = Path(args.record).read_bytes(), args.record
    elif args.from_init:
        h, w = (8 * v for v in _image_size(args.from_init))
        g, h, w = init_gaussians(args.from_init, n_gaussians_for_cr(h, w, args.cr))
        record, source = make_record(g, h, w), f"smart init of 8x {args.from_init}, CR {args.cr:g}"
    else:
        h, w = (1088, 1632) if args.quick else (HEIGHT_16K, WIDTH_16K)
        g = synthetic_gaussians(h, w, n_gaussians_for_cr(h, w, args.cr))
        record, source = make_record(g, h, w), f"synthetic {w}x{h}, CR {args.cr:g}"
    if args.save:
        Path(args.save).write_bytes(record)
    fig = measure(record)
    limits = DecodeLimits().to_dict()
    rows = [{"limit": k, "asked": fig[k], "default": v, "headroom": v / fig[k] if fig[k] else float("inf")}
            for k, v in limits.items()]
    print(f"limits: {source}: {fig['width']}x{fig['height']}, {fig['record_bytes']} bytes, "
          f"parse {fig['parse_seconds']:.2f} s")
    print(format_table(rows, ["limit", "asked", "default", "headroom"]))
    return {"source": source, "figures": fig, "limits": limits, "rows": rows}
