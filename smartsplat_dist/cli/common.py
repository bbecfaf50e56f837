"""Small helpers shared by the subcommands."""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable


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


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write a local file so that it either appears whole or not at all, with the usual mode (0666 less the
    umask, as ``open`` would give; mkstemp alone would leave it 0600)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    from ..codec.limits import install, parse_limit_args

    limits = parse_limit_args(getattr(args, "limit", None))
    if getattr(args, "limit", None):
        install(limits)
    return limits
