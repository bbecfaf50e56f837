"""Small helpers shared by the subcommands."""
from __future__ import annotations

import json
import math
import sys
import time
from typing import Callable

from ..codec.limits import install, parse_limit_args


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        return _plain(value.item())
    return value


def json_line(obj) -> str:
    """Strict JSON (RFC 8259) of ``obj``: non-finite floats (a perfect PSNR is inf) become null."""
    return json.dumps(_plain(obj), allow_nan=False, default=str)


def progress_printer(label: str, stream=sys.stderr) -> Callable[[int, dict], None]:
    """A fit progress callback printing one line per report: step, loss, PSNR, elapsed."""
    start = time.perf_counter()

    def report(step: int, info: dict) -> None:
        total = info.get("steps", "?")
        parts = [f"{label}: step {step}/{total}"]
        if "loss" in info:
            parts.append(f"loss {info['loss']:.4f}")
        if "psnr" in info:
            parts.append(f"psnr {info['psnr']:.2f} dB")
        parts.append(f"{time.perf_counter() - start:.1f}s")
        print("  ".join(parts), file=stream, flush=True)

    return report


def add_limit_argument(p) -> None:
    """``--limit NAME=VALUE`` (repeatable): raise or lower a decode limit (:class:`~..codec.limits.DecodeLimits`)."""
    p.add_argument("--limit", action="append", metavar="NAME=VALUE", default=None,
                   help="what a record may ask for, e.g. max_pixels=1e9 (names: max_pixels, max_gaussians, "
                        "max_gaussians_per_pixel, max_stream_expansion, max_overlap, max_footprint); repeatable")


def install_limits(args):
    """The DecodeLimits of ``--limit``, made this process's (and its Ray workers') defaults."""
    limits = parse_limit_args(getattr(args, "limit", None))
    if getattr(args, "limit", None):
        install(limits)
    return limits
