"""More Gaussians or finer steps? The measurement behind budget-mode rate control.

    python pipelines/rate_sweep.py --data ../shared/data/photos-768 --images Bamboo.png Mountain.png \
        --cr 50 100 --steps 1000 --mult 0.8 0.9 1.0 1.1 --out bench-results/rate-sweep.json

For each image and CR, fits N = mult x the paper's N Gaussians (one fit each), fills the byte budget 3HW/CR by
scaling the quantisation steps (the rate control ``encode_image`` uses) and decodes: at equal bytes, which N wins.
It also prints, per fit, the bytes per Gaussian at the default steps of the initialisation and of the fitted
Gaussians: their ratio is ``api.FIT_BYTES_GROWTH``. Prints a table; writes JSON.
"""
from __future__ import annotations

import sys
import time

from _photos import photo_parser, photos  # the folder of this script is on sys.path
from smartsplat_dist.api import _encode_within_budget, decode_image
from smartsplat_dist.bench.common import write_result
from smartsplat_dist.codec import CodecConfig, RecordMeta, encode_record
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.fitting import FitConfig, fit, psnr
from smartsplat_dist.init import InitConfig, initialize
from smartsplat_dist.model import n_gaussians_for_cr


def main() -> int:
    p = photo_parser(__doc__, "bench-results/rate-sweep.json", fits=False)
    p.add_argument("--mult", type=float, nargs="+", default=[0.8, 0.9, 1.0, 1.1])
    args = p.parse_args()

    rows = []
    for name, px in photos(args):
        h, w = px.shape[:2]
        for cr in args.cr:
            budget = int(3 * h * w // cr)
            n_paper = n_gaussians_for_cr(h, w, cr)
            for mult in args.mult:
                t0 = time.perf_counter()
                n = max(1, round(mult * n_paper))
                meta = RecordMeta(height=h, width=w, n=n, rate="budget", nominal_cr=cr)
                g0 = initialize(px, n, InitConfig(), seed=0)
                bpg_init = len(encode_record(g0, meta, CodecConfig())) / n
                g, stats = fit(g0, px, FitConfig(steps=args.steps), backend=args.backend, final_psnr=False)
                bpg_fit = len(encode_record(g, meta, CodecConfig())) / n
                record, codec = _encode_within_budget(g, meta, CodecConfig(), budget)
                row = {"image": name, "cr": cr, "mult": mult, "n": n, "bytes": len(record), "budget": budget,
                       "real_cr": 3 * h * w / len(record), "psnr": psnr(decode_image(record, backend=args.backend, limits=UNLIMITED), px),
                       "psnr_unquantized": stats["psnr_last_step"], "bpg_init": bpg_init, "bpg_fit": bpg_fit,
                       "growth": bpg_fit / bpg_init, "codec": codec.to_dict(), "seconds": time.perf_counter() - t0}
                rows.append(row)
                print(f"{name} CR {cr:g} x{mult:g} (N {n}): {row['psnr']:.2f} dB at CR {row['real_cr']:.1f} "
                      f"(unquantised {row['psnr_unquantized']:.2f}); B/G init {bpg_init:.2f} -> fit {bpg_fit:.2f} "
                      f"({row['growth']:.2f}x), {row['seconds']:.0f}s", file=sys.stderr, flush=True)
    print(f"{'image':32} {'CR':>5} {'xN':>5} {'N':>6} {'real CR':>8} {'PSNR':>7} {'unq.':>7} {'growth':>6}")
    for r in rows:
        print(f"{r['image']:32} {r['cr']:5g} {r['mult']:5g} {r['n']:6d} {r['real_cr']:8.2f} {r['psnr']:7.2f} "
              f"{r['psnr_unquantized']:7.2f} {r['growth']:6.2f}")
    out = write_result(args.out, "rate-sweep", __doc__.splitlines()[0],
                       {"steps": args.steps, "backend": args.backend, "rows": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
