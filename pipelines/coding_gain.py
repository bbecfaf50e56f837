"""What each record version buys at the same byte budget: bytes per Gaussian and the record PSNR its rate control
reaches, on the same fitted Gaussians.

    python pipelines/coding_gain.py --data ../shared/data/photos-768 --images Bamboo.png Dragonfly_by_Bolly.png \
        --cr 50 100 --steps 1000 --versions 3 4 --out bench-results/coding-gain.json

For each image and CR: one budget-mode fit (what ``encode_image`` fits), then rate control run with each
``--versions`` record version on those Gaussians: bytes, bytes per Gaussian, the bytes of every stream, the steps
it chose and the decoded PSNR, before and after the two fine-tunes (written in the same version). Versions 2 and 3 hold the same integers (version 3 codes
them in fewer bytes); version 4 puts colours on steps that follow each Gaussian's area. Prints a table; writes JSON.
"""
from __future__ import annotations

import sys

from _photos import budget_fit, photo_parser, photos  # the folder of this script is on sys.path
from smartsplat_dist import api
from smartsplat_dist.bench.common import write_result
from smartsplat_dist.codec import CodecConfig, record_v2
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.config import EncodeConfig
from smartsplat_dist.fitting import psnr


def _stream_bytes(record: bytes) -> dict[str, int]:
    parsed = record_v2.parse(record, lambda h, w: None, lambda h, w: 1 << 30)  # our own record
    return {name: length for name, (_, _, length) in zip(record_v2.STREAMS, parsed.streams)}


def main() -> int:
    p = photo_parser(__doc__, "bench-results/coding-gain.json")
    p.add_argument("--versions", type=int, nargs="+", default=[3, 4], choices=record_v2.VERSIONS)
    args = p.parse_args()
    rows = []
    for name, px in photos(args):
        for cr in args.cr:
            g, stats, meta, budget = budget_fit(px, cr, args.steps, args.backend, args.fits, name,
                                                args.qat_steps, args.growth)
            config = EncodeConfig().with_overrides(cr=cr, steps=args.steps)
            row = {"image": name, "cr": cr, "n": meta.n, "budget": budget,
                   "psnr_unquantized": stats["psnr_last_step"], "versions": {}}
            for version in args.versions:
                record, used = api._encode_within_budget(g, meta, CodecConfig(), budget, version=version)
                score = lambda rec: psnr(api.decode_image(rec, backend=args.backend, limits=UNLIMITED), px)  # noqa: E731
                tuned, _ = api._finetune_shapes(record, used, g, meta, px, config, args.backend, budget, version)
                tuned, tuned_codec = api._finetune_colors(tuned, used, meta, px, config, args.backend, budget, version)
                row["versions"][version] = {
                    "bytes": len(record), "bytes_per_gaussian": len(record) / meta.n,
                    "streams": _stream_bytes(record), "codec": used.to_dict(), "psnr": score(record),
                    "finetuned_bytes": len(tuned), "finetuned_codec": tuned_codec.to_dict(),
                    "psnr_finetuned": score(tuned)}
            rows.append(row)
            print(f"{name} CR {cr:g}: " + ", ".join(f"v{v} {r['bytes_per_gaussian']:.2f} B/G {r['psnr']:.2f} dB, "
                                                   f"fine-tuned {r['psnr_finetuned']:.2f} dB"
                                                   for v, r in row["versions"].items()), file=sys.stderr, flush=True)
    heads = "".join(f" {'B/G v' + str(v):>8} {'PSNR v' + str(v):>8} {'tuned v' + str(v):>8}" for v in args.versions)
    print(f"{'image':28} {'CR':>5} {'N':>6} {'fit':>6}{heads}")
    for r in rows:
        cells = "".join(f" {x['bytes_per_gaussian']:8.3f} {x['psnr']:8.3f} {x['psnr_finetuned']:8.3f}"
                        for x in r["versions"].values())
        print(f"{r['image'][:28]:28} {r['cr']:5g} {r['n']:6d} {r['psnr_unquantized']:6.2f}{cells}")
    out = write_result(args.out, "coding-gain", __doc__.splitlines()[0],
                       {"steps": args.steps, "backend": args.backend, "versions": args.versions, "rows": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
