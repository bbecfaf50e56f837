"""What the fine-tunes on the quantised record buy: record PSNR without and with them, same fit.

    python pipelines/finetune_gain.py --data ../shared/data/photos-768 --images Bamboo.png Dragonfly_by_Bolly.png \
        --cr 50 100 --steps 1000 --finetune-steps 50 --out bench-results/finetune-gain.json

For each image and CR: one budget-mode fit, the record rate control makes from it, then
* ``colours``: ``--finetune-steps`` colour-only steps on the record's own geometry;
* ``shapes + colours`` (what ``encode_image`` does with ``EncodeConfig.color_finetune_steps``): first the
  scales, rotations and colours with the means fixed on the record's position grid, encoded on the same steps,
  then the colour fine-tune.
Prints a table; writes JSON.
"""
from __future__ import annotations

import sys

from _photos import budget_fit, photo_parser, photos  # the folder of this script is on sys.path
from smartsplat_dist import api
from smartsplat_dist.bench.common import write_result
from smartsplat_dist.codec import CodecConfig
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.config import EncodeConfig
from smartsplat_dist.fitting import psnr


def main() -> int:
    p = photo_parser(__doc__, "bench-results/finetune-gain.json")
    p.add_argument("--finetune-steps", type=int, default=50)
    args = p.parse_args()

    rows = []
    for name, px in photos(args):
        for cr in args.cr:
            config = EncodeConfig(cr=cr, color_finetune_steps=args.finetune_steps)
            config = config.replace(fit=config.fit.replace(steps=max(args.steps, 20 * args.finetune_steps)))
            g, stats, meta, budget = budget_fit(px, cr, args.steps, args.backend, args.fits, name,
                                                args.qat_steps, args.growth)
            record, codec = api._encode_within_budget(g, meta, CodecConfig(), budget)
            colours, _ = api._finetune_colors(record, codec, meta, px, config, args.backend, budget)
            shaped, shaped_codec = api._finetune_shapes(record, codec, g, meta, px, config, args.backend, budget)
            both, _ = api._finetune_colors(shaped, shaped_codec, meta, px, config, args.backend, budget)
            scores = {k: psnr(api.decode_image(r, backend=args.backend, limits=UNLIMITED), px)
                      for k, r in (("record", record), ("colours", colours), ("shapes_colours", both))}
            row = {"image": name, "cr": cr, "n": meta.n, "budget": budget,
                   "psnr_unquantized": stats["psnr_last_step"], "psnr": scores,
                   "bytes": {"record": len(record), "colours": len(colours), "shapes_colours": len(both)}}
            rows.append(row)
            print(f"{name} CR {cr:g}: unquantised {row['psnr_unquantized']:.2f}, "
                  + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()), file=sys.stderr, flush=True)
    print(f"{'image':28} {'CR':>5} {'unquantised':>11} {'record':>7} {'+colours':>9} {'+shapes+colours':>16}")
    for r in rows:
        q = r["psnr"]
        print(f"{r['image']:28} {r['cr']:5g} {r['psnr_unquantized']:11.2f} {q['record']:7.2f} {q['colours']:9.2f} "
              f"{q['shapes_colours']:16.2f}")
    out = write_result(args.out, "finetune-gain", __doc__.splitlines()[0],
                       {"steps": args.steps, "qat_steps": args.qat_steps,
                                  "finetune_steps": args.finetune_steps, "backend": args.backend, "rows": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
