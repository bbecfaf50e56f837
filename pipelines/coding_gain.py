"""What record version 3's entropy coding buys over version 2: bytes for the same integers, and PSNR at the same
byte budget.

    python pipelines/coding_gain.py --data ../shared/data/photos-768 --images Bamboo.png Dragonfly_by_Bolly.png \
        --cr 50 100 --steps 1000 --out bench-results/coding-gain.json

For each image and CR: one budget-mode fit (what ``encode_image`` fits), then
* the same integers (the steps version 3's rate control chose) written as version 2 and as version 3: bytes per
  Gaussian, the difference, and the bytes of every stream;
* rate control run with each version on the same Gaussians: the record PSNR each reaches within the budget
  3HW/CR (fewer bytes per Gaussian buy finer steps).
Prints a table; writes JSON.
"""
from __future__ import annotations

import sys

from _photos import budget_fit, photo_parser, photos  # the folder of this script is on sys.path
from smartsplat_dist import api
from smartsplat_dist.bench.common import write_result
from smartsplat_dist.codec import CodecConfig, encode_record, record_v2
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.fitting import psnr


def _stream_bytes(record: bytes) -> dict[str, int]:
    parsed = record_v2.parse(record, lambda h, w: None, lambda h, w: 1 << 30)  # our own record
    return {name: length for name, (_, _, length) in zip(record_v2.STREAMS, parsed.streams)}


def main() -> int:
    args = photo_parser(__doc__, "bench-results/coding-gain.json").parse_args()
    rows = []
    for name, px in photos(args):
        for cr in args.cr:
            g, stats, meta, budget = budget_fit(px, cr, args.steps, args.backend, args.fits, name, args.qat_steps)
            row = {"image": name, "cr": cr, "n": meta.n, "budget": budget,
                   "psnr_unquantized": stats["psnr_last_step"], "versions": {}}
            _, codec = api._encode_within_budget(g, meta, CodecConfig(), budget)
            for version in (2, 3):
                same = encode_record(g, meta, codec, version=version)
                record, used = api._encode_within_budget(g, meta, CodecConfig(), budget, version=version)
                row["versions"][version] = {
                    "same_integers_bytes": len(same), "bytes_per_gaussian": len(same) / meta.n,
                    "streams": _stream_bytes(same), "rate_controlled_bytes": len(record), "codec": used.to_dict(),
                    "psnr": psnr(api.decode_image(record, backend=args.backend, limits=UNLIMITED), px)}
            v2, v3 = row["versions"][2], row["versions"][3]
            row["bytes_saved"] = 1 - v3["same_integers_bytes"] / v2["same_integers_bytes"]
            rows.append(row)
            print(f"{name} CR {cr:g}: {v2['bytes_per_gaussian']:.2f} -> {v3['bytes_per_gaussian']:.2f} B/G, "
                  f"PSNR {v2['psnr']:.2f} -> {v3['psnr']:.2f}", file=sys.stderr, flush=True)
    print(f"{'image':28} {'CR':>5} {'N':>6} {'B/G v2':>7} {'B/G v3':>7} {'saved':>6} {'PSNR v2':>8} {'PSNR v3':>8}")
    for r in rows:
        v2, v3 = r["versions"][2], r["versions"][3]
        print(f"{r['image']:28} {r['cr']:5g} {r['n']:6d} {v2['bytes_per_gaussian']:7.3f} {v3['bytes_per_gaussian']:7.3f} "
              f"{100 * r['bytes_saved']:5.1f}% {v2['psnr']:8.3f} {v3['psnr']:8.3f}")
    out = write_result(args.out, "coding-gain", __doc__.splitlines()[0],
                       {"steps": args.steps, "backend": args.backend, "rows": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
