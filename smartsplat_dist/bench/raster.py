"""Rasterizer benchmark: forward / backward time of each backend on the same inputs, and a 16K strip decode.

Inputs are synthetic (no image needed): N Gaussians with uniform means, scales ``s_base * exp(0.4 z)`` per axis
around ``s_base = 1/3 sqrt(HW / (pi N))`` (the SmartSplat initial scale), uniform rotations and colours in
[0, 0.5]. Every backend renders the same inputs; the backward pass is ``loss = sum(image * G)`` with a fixed
random G. Compiled backends are warmed up (numba cache load / JIT, Triton compile) before timing.

``decode16k`` renders a 16320 x 10880 frame (CR 100: ~760k Gaussians) in horizontal strips through
``g.shifted(0, y0)``, converting each strip to uint8 and handing it to a sink: the float32 frame (2.1 GB) is
never allocated.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch

from ..model import Gaussians, n_gaussians_for_cr
from ..raster import get_backend
from ..raster.pixels import iter_strips_uint8
from .common import format_table, peak_rss_mb

DESCRIPTION = ("render backends side by side: forward/backward seconds per size and N, ratio vs the torch "
               "reference, and a 16K (16320x10880, CR 100) strip decode (cpu, or cuda when present); "
               "synthetic Gaussians")

QUICK_CASES = [(256, 256, 5000), (512, 512, 20000), (2048, 2048, 200000)]
FULL_CASES = [(256, 256, 5000), (512, 512, 20000), (1024, 1024, 20000), (1024, 1024, 80000),
              (1024, 1024, 320000), (2048, 2048, 200000), (2048, 2048, 800000), (4096, 4096, 1280000)]
#: The torch reference is only run up to this many pixels x Gaussians (it is slow by design).
TORCH_MAX_WORK = 2048 * 2048 * 200000


def add_arguments(parser) -> None:
    parser.add_argument("--backends", default="torch,cpu,cuda",
                        help="comma-separated backends; unavailable ones are skipped (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch (and numba) threads for every backend; 0 = leave as is")
    parser.add_argument("--iters", type=int, default=3, help="timed iterations of fast backends")
    parser.add_argument("--no-decode16k", action="store_true", help="skip the 16K strip decode")
    parser.add_argument("--strip-rows", type=int, default=512, help="rows per strip of the 16K decode")


def synthetic_gaussians(n: int, height: int, width: int, seed: int = 0) -> Gaussians:
    """N typical Gaussians over an H x W image (see module docstring). CPU float32."""
    g = torch.Generator().manual_seed(seed)
    s_base = math.sqrt(height * width / (math.pi * max(n, 1))) / 3.0
    means = torch.rand(n, 2, generator=g) * torch.tensor([float(width), float(height)])
    scales = s_base * torch.exp(0.4 * torch.randn(n, 2, generator=g))
    rotations = torch.rand(n, generator=g) * (2 * math.pi)
    colors = torch.rand(n, 3, generator=g) * 0.5
    return Gaussians(means, scales, rotations, colors)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_backend(fn: Callable, g: Gaussians, height: int, width: int, iters: int,
                 device: torch.device) -> tuple[float, float, float]:
    """Mean (forward wall seconds, backward wall seconds, forward + backward process CPU seconds) of ``fn``
    over ``iters`` iterations. CPU seconds (all threads) are robust to other load on a shared machine."""
    params = [t.to(device).clone().requires_grad_() for t in g.tensors()]
    grad = torch.rand(height, width, 3, generator=torch.Generator().manual_seed(1)).to(device)
    fwd = bwd = cpu = 0.0
    for _ in range(iters):
        for p in params:
            p.grad = None
        _sync(device)
        c0 = time.process_time()
        t0 = time.perf_counter()
        img = fn(*params, height, width)
        _sync(device)
        t1 = time.perf_counter()
        (img * grad).sum().backward()
        _sync(device)
        t2 = time.perf_counter()
        cpu += time.process_time() - c0
        fwd += t1 - t0
        bwd += t2 - t1
        del img
    return fwd / iters, bwd / iters, cpu / iters


def _available(names: list[str]) -> list[str]:
    out = []
    for name in names:
        if name == "cuda" and not torch.cuda.is_available():
            continue
        out.append(name)
    return out


def raster_table(cases, backends: list[str], iters: int) -> list[dict[str, Any]]:
    """One row per (size, N, backend): forward/backward wall ms, CPU seconds, ns per pixel, ratios vs torch
    (wall and CPU time). The torch reference runs once above 512^2 x 20k and not at all above TORCH_MAX_WORK."""
    rows: list[dict[str, Any]] = []
    for name in backends:  # warm-up: numba cache load / JIT, Triton compile
        if name != "torch":
            dev = torch.device("cuda" if name == "cuda" else "cpu")
            time_backend(get_backend(name), synthetic_gaussians(200, 64, 64), 64, 64, 1, dev)
    time_backend(get_backend("torch"), synthetic_gaussians(20, 32, 32), 32, 32, 1, torch.device("cpu"))
    for h, w, n in cases:
        g = synthetic_gaussians(n, h, w)
        ref = ref_cpu = None
        for name in backends:
            if name == "torch" and h * w * n > TORCH_MAX_WORK:
                rows.append({"size": f"{w}x{h}", "N": n, "backend": name, "iters": 0, "fwd_ms": float("nan"),
                             "bwd_ms": float("nan"), "total_ms": float("nan"), "cpu_s": float("nan"),
                             "ns_per_px": float("nan"), "x_vs_torch": "skipped", "x_cpu_time": "skipped"})
                continue
            dev = torch.device("cuda" if name == "cuda" else "cpu")
            it = iters if name != "torch" else (1 if h * w * n > 512 * 512 * 20000 else max(1, min(iters, 2)))
            f, b, c = time_backend(get_backend(name), g, h, w, it, dev)
            total = f + b
            if name == "torch":
                ref, ref_cpu = total, c
            rows.append({"size": f"{w}x{h}", "N": n, "backend": name, "iters": it, "fwd_ms": 1e3 * f,
                         "bwd_ms": 1e3 * b, "total_ms": 1e3 * total, "cpu_s": c,
                         "ns_per_px": 1e9 * total / (h * w), "x_vs_torch": round(ref / total, 1) if ref else "",
                         "x_cpu_time": round(ref_cpu / c, 1) if ref and c > 0 else ""})
            print(f"  {w}x{h} N={n} {name}: fwd {1e3 * f:.1f} ms, bwd {1e3 * b:.1f} ms, cpu {c:.2f} s"
                  + (f", x{ref / total:.1f} vs torch (cpu time x{ref_cpu / max(c, 1e-9):.1f})"
                     if ref and name != "torch" else ""), flush=True)
    return rows


def decode16k(g: Gaussians, height: int = 10880, width: int = 16320, strip_rows: int = 512,
              backend: str = "cpu", sink: Callable[[int, np.ndarray], None] | None = None) -> dict[str, Any]:
    """Render a large frame strip by strip, clamp + round each strip to uint8 and hand it to ``sink``.

    Args:
        g: the Gaussians of the whole frame (CPU or on the backend's device).
        height, width: frame size in pixels.
        strip_rows: rows per strip (a multiple of 16 keeps tiles aligned); memory ~ 12 * strip_rows * width B.
        backend: render backend name.
        sink: ``sink(y0, pixels uint8 [rows, width, 3])`` per strip, in order; None discards them.
    Returns:
        dict: seconds (wall), cpu_seconds (process, all threads), megapixels_per_s (wall), strips,
        strip_rows, n_gaussians, peak_rss_mb, checksum (sum of
        all uint8 values, to show the frame was produced).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    checksum = 0
    strips = 0
    for y0, pix in iter_strips_uint8(g, height, width, backend, strip_rows):
        checksum += int(pix.sum(dtype=np.int64))
        if sink is not None:
            sink(y0, pix)
        strips += 1
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    return {"height": height, "width": width, "n_gaussians": len(g), "backend": backend, "strips": strips,
            "strip_rows": strip_rows, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "megapixels_per_s": height * width / 1e6 / seconds,
            "peak_rss_mb": peak_rss_mb(), "checksum": checksum}


def run(args) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    backends = _available([b.strip() for b in args.backends.split(",") if b.strip()])
    payload: dict[str, Any] = {"images": "synthetic Gaussians (no image)", "quick": bool(args.quick),
                               "threads": torch.get_num_threads(), "backends": backends}
    if not args.no_decode16k:  # first, so that its peak RSS is not masked by the larger benchmark cases
        h, w = 10880, 16320
        n = n_gaussians_for_cr(h, w, 100)
        g = synthetic_gaussians(n, h, w, seed=2)
        rss0 = peak_rss_mb()
        dec_backend = "cuda" if "cuda" in backends else "cpu"
        d = decode16k(g, h, w, strip_rows=args.strip_rows, backend=dec_backend)
        d["peak_rss_before_mb"] = rss0
        payload["decode16k"] = d
        print(f"16K decode ({dec_backend}): {w}x{h}, N={n}, {d['strips']} strips of {d['strip_rows']} rows: "
              f"{d['seconds']:.1f} s ({d['cpu_seconds']:.1f} CPU s), {d['megapixels_per_s']:.1f} MP/s, "
              f"peak RSS {d['peak_rss_mb']:.0f} MB "
              f"(before {rss0:.0f} MB)", flush=True)
    cases = QUICK_CASES if args.quick else FULL_CASES
    rows = raster_table(cases, backends, args.iters)
    print(format_table(rows))
    payload["rows"] = rows
    payload["x_vs_torch"] = {f"{r['size']}/{r['N']}/{r['backend']}": r["x_vs_torch"] for r in rows
                             if r["backend"] != "torch" and isinstance(r["x_vs_torch"], float)}
    payload["x_cpu_time_vs_torch"] = {f"{r['size']}/{r['N']}/{r['backend']}": r["x_cpu_time"] for r in rows
                                      if r["backend"] != "torch" and isinstance(r["x_cpu_time"], float)}
    return payload


__all__ = ["DESCRIPTION", "add_arguments", "run", "decode16k", "synthetic_gaussians", "time_backend"]
