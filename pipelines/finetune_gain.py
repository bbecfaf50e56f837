"""What the colour fine-tune on the quantised geometry buys: record PSNR without and with it, same fit.

    python pipelines/finetune_gain.py --data ../shared/data/photos-768 --images Bamboo.png Dragonfly_by_Bolly.png \
        --cr 50 100 --steps 1000 --finetune-steps 50 --lr-scale 1.0 0.3 --out bench-results/finetune-gain.json

For each image and CR: one budget-mode fit, the record rate control makes from it, then for each learning-rate
scale the record after ``--finetune-steps`` colour-only steps on the record's own geometry (what
``encode_image`` does with ``EncodeConfig.color_finetune_steps``). Prints a table; writes JSON.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from _photos import budget_fit, photo_parser, photos  # the folder of this script is on sys.path
from smartsplat_dist import api
from smartsplat_dist.codec import CodecConfig
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.config import EncodeConfig
from smartsplat_dist.fitting import psnr


def main() -> int:
    p = photo_parser(__doc__, "bench-results/finetune-gain.json")
    p.add_argument("--finetune-steps", type=int, default=50)
    p.add_argument("--lr-scale", type=float, nargs="+", default=[api.FINETUNE_LR_SCALE])
    args = p.parse_args()

    rows = []
    for name, px in photos(args):
        for cr in args.cr:
            config = EncodeConfig(cr=cr)
            g, stats, meta, budget = budget_fit(px, cr, args.steps, args.backend, args.fits, name, args.qat_steps)
            n = meta.n
            record, codec = api._encode_within_budget(g, meta, CodecConfig(), budget)
            row = {"image": name, "cr": cr, "n": n, "budget": budget, "psnr_unquantized": stats["psnr_last_step"],
                   "psnr_record": psnr(api.decode_image(record, backend=args.backend, limits=UNLIMITED), px),
                   "bytes": len(record), "finetuned": []}
            for scale in args.lr_scale:
                tuned_config = config.replace(color_finetune_steps=args.finetune_steps,
                                              fit=dataclasses.replace(config.fit, lr_colors=config.fit.lr_colors * scale))
                tuned, _ = api._finetune_colors(record, codec, meta, px, tuned_config, args.backend, budget)
                row["finetuned"].append({"lr_scale": scale, "bytes": len(tuned), "psnr": psnr(
                    api.decode_image(tuned, backend=args.backend, limits=UNLIMITED), px)})
            rows.append(row)
            print(f"{name} CR {cr:g}: unquantised {row['psnr_unquantized']:.2f}, record {row['psnr_record']:.2f}, "
                  + ", ".join(f"lr x{t['lr_scale']:g}: {t['psnr']:.2f}" for t in row["finetuned"]),
                  file=sys.stderr, flush=True)
    print(f"{'image':28} {'CR':>5} {'unquantised':>11} {'record':>7} " + " ".join(
        f"{'lr x' + format(s, 'g'):>8}" for s in args.lr_scale))
    for r in rows:
        print(f"{r['image']:28} {r['cr']:5g} {r['psnr_unquantized']:11.2f} {r['psnr_record']:7.2f} "
              + " ".join(f"{t['psnr']:8.2f}" for t in r["finetuned"]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"name": "finetune-gain", "steps": args.steps, "qat_steps": args.qat_steps,
                               "finetune_steps": args.finetune_steps,
                               "backend": args.backend, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
