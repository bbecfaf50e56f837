"""What pruning buys where the budget's quantisation steps cost more than the fit can afford: the decoded record
of the same fit with and without ``EncodeConfig.prune_gap_db``.

    python pipelines/prune_gain.py --data ../shared/data/photos-768 --images Mountain.png gnome338_SeaSunset.png \
        --cr 50 100 200 --steps 1000 --out bench-results/prune-gain.json

For each image and CR: one budget-mode fit (what ``encode_image`` fits), its record after rate control and the
fine-tunes (what ``encode_image`` wrote with ``prune_gap_db`` < 0), then the pruning rounds ``encode_image`` runs
by default (``api._prune_while_it_pays``): N and decoded PSNR of every record tried, the one kept, the seconds the
rounds took. ``--gap``: the trigger (default: the config's); 0 tries at least one round wherever the record
decodes below the fit. Prints a table; writes JSON.
"""
from __future__ import annotations

import sys
import time

from _photos import budget_fit, photo_parser, photos  # the folder of this script is on sys.path
from smartsplat_dist import api
from smartsplat_dist.bench.common import write_result
from smartsplat_dist.config import EncodeConfig
from smartsplat_dist.stages import Stages


def main() -> int:
    p = photo_parser(__doc__, "bench-results/prune-gain.json")
    p.add_argument("--gap", type=float, default=EncodeConfig().prune_gap_db, help="prune_gap_db (default: %(default)s)")
    args = p.parse_args()
    rows = []
    for name, px in photos(args):
        for cr in args.cr:
            g, stats, meta, budget = budget_fit(px, cr, args.steps, args.backend, args.fits, name,
                                                args.qat_steps, args.growth)
            config = EncodeConfig(prune_gap_db=args.gap).with_overrides(cr=cr, steps=args.steps)
            stages = Stages()
            record, codec = api._record_of(g, meta, px, config, args.backend, budget, stages)
            t0 = time.perf_counter()
            kept, _, summary = api._prune_while_it_pays(record, codec, g, meta, px, config, args.backend, budget,
                                                        stats["psnr_last_step"], stages)
            row = {"image": name, "cr": cr, "budget": budget, "psnr_unquantized": stats["psnr_last_step"],
                   "n_fitted": meta.n, "psnr_unpruned": summary["tried"][0]["psnr"], "bytes_unpruned": len(record),
                   "n_kept": summary["n_gaussians"], "bytes_kept": len(kept),
                   "psnr_kept": max(t["psnr"] for t in summary["tried"]), "tried": summary["tried"],
                   "prune_round_seconds": time.perf_counter() - t0}
            rows.append(row)
            print(f"{name} CR {cr:g}: {row['psnr_unpruned']:.2f} -> {row['psnr_kept']:.2f} dB "
                  f"(N {meta.n} -> {row['n_kept']})", file=sys.stderr, flush=True)
    print(f"{'image':28} {'CR':>5} {'fit':>6} {'N':>6} {'record':>7} {'N kept':>7} {'pruned':>7} {'gain':>6} {'s':>5}")
    for r in rows:
        print(f"{r['image'][:28]:28} {r['cr']:5g} {r['psnr_unquantized']:6.2f} {r['n_fitted']:6d} "
              f"{r['psnr_unpruned']:7.2f} {r['n_kept']:7d} {r['psnr_kept']:7.2f} "
              f"{r['psnr_kept'] - r['psnr_unpruned']:+6.2f} {r['prune_round_seconds']:5.0f}")
    out = write_result(args.out, "prune-gain", __doc__.splitlines()[0],
                       {"steps": args.steps, "backend": args.backend, "gap_db": args.gap, "growth": args.growth,
                        "record_version": api.FORMAT_VERSION, "rows": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
