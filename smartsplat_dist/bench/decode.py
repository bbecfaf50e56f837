"""``smartsplat bench decode``: time and peak memory to decode a 16K record, megapixels per second.

The record holds a DIV16K-sized frame (16320 x 10880) at nominal CR 100 (~761k Gaussians). Its Gaussians are
synthetic with the statistics of a SmartSplat fit (70% small importance-sampled Gaussians with scale
``s_base * exp(-w/2)``, 30% larger uniform ones, log-normal anisotropy, random rotations: docs/design.md §3), or, with
``--from-init IMAGE``, the feature-smart initialisation of an 8x Lanczos upsample of IMAGE (DIV16K-like).
Each decode runs :func:`smartsplat_dist.api.decode_image` (strip rendering) in a fresh subprocess, so its peak
RSS (``ru_maxrss``) is the decode's alone; the subprocess first decodes a tiny record so that one-off kernel
compilation is not timed. With a CUDA device the ``cuda`` backend is measured too (peak GPU memory from torch).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..bench.common import machine
from ..codec import RecordMeta, encode_record
from ..io.images import load_image
from ..model import Gaussians, n_gaussians_for_cr
from .common import format_table

DESCRIPTION = "decode (render) time and peak memory of a 16K record on CPU (and GPU), megapixels per second"

WIDTH_16K, HEIGHT_16K = 16320, 10880
QUICK_CRS = (100,)
FULL_CRS = (50, 100, 200, 500)


def add_arguments(p) -> None:
    p.add_argument("--width", type=int, default=WIDTH_16K)
    p.add_argument("--height", type=int, default=HEIGHT_16K)
    p.add_argument("--cr", type=float, nargs="+", help=f"nominal CRs (default {FULL_CRS}; quick {QUICK_CRS})")
    p.add_argument("--backends", nargs="+", help="render backends (default: cpu, plus cuda when present)")
    p.add_argument("--repeat", type=int, help="decodes per setting, best time kept (default 2; quick 1)")
    p.add_argument("--from-init", metavar="IMAGE",
                   help="use the smart init of an 8x Lanczos upsample of IMAGE (DIV16K-like) instead of "
                        "synthetic Gaussians (needs about 2 GB of memory per 16K frame)")
    p.add_argument("--seed", type=int, default=0)


def synthetic_gaussians(height: int, width: int, n: int, seed: int = 0):
    """N Gaussians with a fitted image's statistics (see module doc).

    Returns: :class:`~smartsplat_dist.model.Gaussians` (means [N, 2] px, scales [N, 2] px, rotations [N],
    colors [N, 3]), float32 on CPU.
    """
    rng = np.random.default_rng(seed)
    s_base = math.sqrt(height * width / (math.pi * n)) / 3.0
    n_imp = int(round(0.7 * n))
    # Importance samples cluster where detail is: pick centres of a coarse random detail map, then jitter.
    cells = max(1, n // 64)
    cx, cy = rng.uniform(0, width, cells), rng.uniform(0, height, cells)
    pick = rng.integers(0, cells, n_imp)
    jitter = s_base * 8.0
    imp = np.stack([cx[pick] + rng.normal(0, jitter, n_imp), cy[pick] + rng.normal(0, jitter, n_imp)], 1)
    uni = np.stack([rng.uniform(0, width, n - n_imp), rng.uniform(0, height, n - n_imp)], 1)
    means = np.concatenate([imp, uni]).clip([0, 0], [width - 1e-3, height - 1e-3])
    w = rng.beta(2.0, 3.0, n_imp)
    base = np.concatenate([s_base * np.exp(-0.5 * w), np.full(n - n_imp, 1.5 * s_base)])
    scales = base[:, None] * rng.lognormal(0.0, 0.35, (n, 2))
    rotations = rng.uniform(0.0, math.pi, n)
    colors = rng.uniform(0.0, 1.0, (n, 3)) * 0.6
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return Gaussians(t(means), t(scales), t(rotations), t(colors))


def init_gaussians(image: str, n: int, seed: int = 0):
    """Smart init of an 8x Lanczos upsample of ``image`` (DIV16K-like). Returns (Gaussians, height, width)."""
    from ..init import initialize  # lazy: init pulls in numba; keeps --help fast

    small = load_image(image).pixels
    h, w = small.shape[0] * 8, small.shape[1] * 8
    big = np.asarray(Image.fromarray(small).resize((w, h), Image.LANCZOS))
    return initialize(big, n, seed=seed), h, w


def make_record(gaussians, height: int, width: int) -> bytes:
    """Encode Gaussians for a height x width frame into a record (default codec settings)."""
    return encode_record(gaussians, RecordMeta(height=height, width=width, n=len(gaussians)))


def _worker(record_path: str, backend: str, repeat: int) -> dict[str, Any]:
    """Runs in the subprocess: warm up on a tiny record, then decode the big one ``repeat`` times."""
    from ..api import decode_image  # lazy: api pulls in fitting and init (numba); keeps --help fast

    tiny = make_record(synthetic_gaussians(32, 32, 16), 32, 32)
    decode_image(tiny, backend=backend)
    if backend == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    record = Path(record_path).read_bytes()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        img = decode_image(record, backend=backend)
        if backend == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        shape = img.shape
        mean = float(img[:: max(1, img.shape[0] // 64)].mean())
        del img
    out = {"seconds": min(times), "all_seconds": times, "height": shape[0], "width": shape[1],
           "mean_pixel": mean, "rss_before_mb": rss_before,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "torch_threads": torch.get_num_threads()}
    if backend == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def measure_decode(record: bytes, backend: str, repeat: int = 1, timeout: float = 3600) -> dict[str, Any]:
    """Decode ``record`` in a fresh subprocess; its time, peak RSS and MP/s."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.rec"
        path.write_bytes(record)
        cmd = [sys.executable, "-m", "smartsplat_dist.bench.decode", "--worker", str(path), backend, str(repeat)]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        return {"backend": backend, "status": "failed", "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(backend=backend, status="ok",
               megapixels_per_second=res["height"] * res["width"] / 1e6 / res["seconds"],
               output_mb=res["height"] * res["width"] * 3 / 2**20)
    return res


def run(args) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    crs = tuple(args.cr) if args.cr else (QUICK_CRS if quick else FULL_CRS)
    repeat = args.repeat or (1 if quick else 2)
    backends = args.backends or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    info = machine()
    kind = "DIV16K-like (init of an 8x upsample)" if args.from_init else "synthetic Gaussians (16K frame)"
    print(f"decode: {info['label']} machine {info['host']} ({info['cores']} cores); {kind}; "
          f"backends {', '.join(backends)}; CR {', '.join(f'{c:g}' for c in crs)}")
    rows = []
    for cr in crs:
        t0 = time.perf_counter()
        if args.from_init:
            small_h, small_w = _image_size(args.from_init)
            h, w = small_h * 8, small_w * 8
            g, h, w = init_gaussians(args.from_init, n_gaussians_for_cr(h, w, cr), args.seed)
        else:
            h, w = args.height, args.width
            g = synthetic_gaussians(h, w, n_gaussians_for_cr(h, w, cr), args.seed)
        record = make_record(g, h, w)
        prep = time.perf_counter() - t0
        for backend in backends:
            res = measure_decode(record, backend, repeat)
            row = {"cr": cr, "height": h, "width": w, "n_gaussians": len(g), "record_bytes": len(record),
                   "real_cr": 3 * h * w / len(record), "prepare_seconds": prep, **res}
            rows.append(row)
            print(f"[decode] CR {cr:g} {backend}: " + (f"{res['seconds']:.2f}s, {res['megapixels_per_second']:.1f} "
                  f"MP/s, peak RSS {res['peak_rss_mb']:.0f} MB" if res["status"] == "ok" else res["error"]),
                  file=sys.stderr, flush=True)
    cols = ["cr", "backend", "status", "height", "width", "n_gaussians", "record_bytes", "seconds",
            "megapixels_per_second", "peak_rss_mb", "rss_before_mb", "output_mb", "peak_gpu_mb", "torch_threads"]
    print(format_table([{c: r.get(c, "-") for c in cols} for r in rows], cols))
    return {"images": kind, "rows": rows, "repeat": repeat,
            "note": "peak_rss_mb is the decode subprocess' ru_maxrss (includes the uint8 output, output_mb, "
                    "and the Python/torch baseline, rss_before_mb)"}


def _image_size(path: str) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.height, im.width


def _main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m smartsplat_dist.bench.decode")
    ap.add_argument("--worker", nargs=3, metavar=("RECORD", "BACKEND", "REPEAT"), required=True)
    a = ap.parse_args(argv)
    print(json.dumps(_worker(a.worker[0], a.worker[1], int(a.worker[2]))))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
