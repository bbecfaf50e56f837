"""What a saved ``smartsplat bench rd`` JSON says about our records: per CR the mean record PSNR, how far records
sit below their fits, bytes per Gaussian; BD-rate image by image against each codec; and, with ``--before``,
each record against the same photo and CR in an earlier run.

    python pipelines/rd_summary.py pipelines/results/session-2026-12-07e/rd-768-1000-17photos.json \
        --before pipelines/results/session-2026-12-07d/rd-768-1000-17photos-final.json

``--before`` also answers "how many steps reach the earlier record": run ``bench rd --steps 300`` and compare it
with an earlier 1000-step run (a record counts as reached when it is at least as good). Prints tables; with
``--out``, writes JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys

from smartsplat_dist.bench.common import format_table, write_result
from smartsplat_dist.bench.rd import OURS, per_image_bd, print_per_image_bd


def _ours(doc: dict) -> dict[tuple[str, float], dict]:
    return {(r["image"], r["cr"]): r for r in doc["rows"] if r["label"] == OURS and r["status"] == "ok"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rd", help="a bench rd JSON")
    p.add_argument("--before", help="an earlier bench rd JSON of the same photos")
    p.add_argument("--gap", type=float, default=0.3, help="count records more than this (dB) below their fit")
    p.add_argument("--out", help="write the summary as JSON")
    args = p.parse_args()
    with open(args.rd) as f:
        doc = json.load(f)
    ours = _ours(doc)
    per_cr = []
    for cr in sorted({cr for _, cr in ours}):
        rows = [r for (_, c), r in ours.items() if c == cr]
        gaps = [r["psnr_unquantized"] - r["psnr"] for r in rows if r.get("psnr_unquantized") is not None]
        bpg = [r["bytes"] / r["n_gaussians"] for r in rows if r.get("n_gaussians")]
        r3 = lambda v: None if v is None else round(v, 3)  # noqa: E731
        per_cr.append({"cr": cr, "images": len(rows), "psnr_mean": r3(statistics.fmean(r["psnr"] for r in rows)),
                       "ms_ssim_mean": r3(statistics.fmean(r["ms_ssim"] for r in rows if r.get("ms_ssim") is not None)),
                       "gap_mean_db": r3(statistics.fmean(gaps)) if gaps else None,
                       f"gap_over_{args.gap:g}_db": sum(g > args.gap for g in gaps),
                       "bytes_per_gaussian_min": r3(min(bpg)) if bpg else None,
                       "bytes_per_gaussian_max": r3(max(bpg)) if bpg else None})
    print("our records per CR (gap = unquantised fit - record):")
    print(format_table(per_cr))
    per_image = per_image_bd(doc["rows"])
    print_per_image_bd(per_image)
    changes = []
    if args.before:
        with open(args.before) as f:
            before = _ours(json.load(f))
        for key in sorted(ours.keys() & before.keys()):
            now, then = ours[key], before[key]
            changes.append({"image": key[0], "cr": key[1], "steps_before": then.get("steps"), "psnr_before": round(then["psnr"], 3),
                            "steps_now": now.get("steps"), "psnr_now": round(now["psnr"], 3), "change_db": round(now["psnr"] - then["psnr"], 3),
                            "n_before": then.get("n_gaussians"), "n_now": now.get("n_gaussians")})
        print(f"\neach record against {args.before}:")
        print(format_table(changes))
        deltas = [c["change_db"] for c in changes]
        if deltas:
            print(f"{len(deltas)} records: change mean {statistics.fmean(deltas):+.2f} dB, min {min(deltas):+.2f}, "
                  f"max {max(deltas):+.2f}; {sum(d >= 0 for d in deltas)} at least as good")
    if args.out:
        print(f"wrote {write_result(args.out, 'rd-summary', __doc__.splitlines()[0], {'rd': args.rd, 'before': args.before, 'per_cr': per_cr, 'bd_rate_per_image': per_image, 'changes': changes})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
