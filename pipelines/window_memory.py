"""Peak memory and time of one loss pass (loss + gradient) by fit window size, on a large image.

    python pipelines/window_memory.py IMAGE [--tiles 4096 2048] [--cr 100] [--backend cpu] [--out FILE]

Initialises the image's Gaussians once, then runs ``fitting.optimize.loss_and_grad`` over windows of each size
(uncached targets, as for images over 16 MP) and reports the peak resident memory of that pass (Linux VmHWM,
reset before each pass), its seconds and the loss, which must agree across window sizes. Prints a table; writes
JSON.
"""
from __future__ import annotations

import argparse
import sys

import torch

from smartsplat_dist.bench.common import write_result
from smartsplat_dist.fitting import FitConfig, optimize
from smartsplat_dist.init import InitConfig, initialize
from smartsplat_dist.io.images import load_image
from smartsplat_dist.model import n_gaussians_for_cr
from smartsplat_dist.raster import get_backend
from smartsplat_dist.stages import Stages


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image")
    p.add_argument("--tiles", type=int, nargs="+", default=[4096, 2048])
    p.add_argument("--cr", type=float, default=100.0)
    p.add_argument("--backend", default="cpu")
    p.add_argument("--out", default="bench-results/window-memory.json")
    args = p.parse_args()

    px = load_image(args.image, max_pixels=400_000_000).pixels
    h, w = px.shape[:2]
    g = initialize(px, n_gaussians_for_cr(h, w, args.cr), InitConfig(), seed=0)
    render = get_backend(args.backend)
    clamp = FitConfig().clamp_render
    rows = []
    for tile in args.tiles:
        stages = Stages()
        wins = optimize.loss_windows(torch.from_numpy(px.copy()), tile, cache=False)
        with stages("pass"):
            _, loss, sse = optimize.loss_and_grad(g, wins, h, w, FitConfig().lambda_l1, render, clamp)
        rows.append({"tile": tile, "windows": len(wins), "peak_rss_mb": stages.peak_rss_mb.get("pass"),
                     "seconds": stages.seconds["pass"], "loss": loss, "sse": sse})
        print(f"tile {tile}: {len(wins)} windows, peak {rows[-1]['peak_rss_mb']} MB, "
              f"{rows[-1]['seconds']:.1f} s, loss {loss!r}", file=sys.stderr, flush=True)
    print(f"{w}x{h}, {len(g)} Gaussians, backend {args.backend}")
    print(f"{'tile':>6} {'windows':>8} {'peak MB':>9} {'seconds':>8} {'loss':>22}")
    for r in rows:
        print(f"{r['tile']:6d} {r['windows']:8d} {r['peak_rss_mb']:9} {r['seconds']:8.1f} {r['loss']:22.17f}")
    out = write_result(args.out, "window-memory", __doc__.splitlines()[0],
                       {"image": args.image, "height": h, "width": w, "n_gaussians": len(g),
                                  "backend": args.backend, "rows": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
