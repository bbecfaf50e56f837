"""``smartsplat status ARCHIVE``: how far a job is (committed / staged / failed / pending) and its mean quality."""
from __future__ import annotations

import json

from ..archive import archive_status
from ..errors import EXIT_DAMAGED, EXIT_OK
from .options import add_storage_options, storage_options


def register(sub) -> None:
    p = sub.add_parser("status", help="progress and mean quality of an archive (exit 4 if a shard marker is damaged)",
                       description="Counts of committed, staged, failed and pending images of an archive "
                                   "(local folder or s3:// prefix), total size and mean real CR / PSNR / SSIM.")
    p.add_argument("archive", metavar="ARCHIVE", help="archive folder or s3:// prefix")
    add_storage_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    p.set_defaults(func=run)


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def run(args) -> int:
    st = archive_status(args.archive, storage_options(args))
    if args.json:
        print(json.dumps(st, sort_keys=True))
        return EXIT_DAMAGED if st["damaged"] else EXIT_OK
    lines = [
        ("archive", st["url"]),
        ("images", _fmt(st["listing_size"], "d")),
        ("committed", f"{st['committed']} in {st['shards']} shards"),
        ("staged", str(st["staged"])),
        ("failed", str(st["failed"])),
        ("pending", _fmt(st["pending"], "d")),
        ("total bytes", f"{st['total_bytes']:,}"),
        ("total real CR", _fmt(st["total_real_cr"], ".2f")),
        ("mean real CR", _fmt(st["mean_real_cr"], ".2f")),
        ("mean PSNR (dB)", _fmt(st["mean_psnr"], ".3f")),
        ("mean SSIM", _fmt(st["mean_ssim"], ".4f")),
        ("encode seconds", f"{st['total_seconds']:.1f}"),
    ]
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k.ljust(width)}  {v}")
    for line in st["damaged"]:
        print(f"DAMAGED  {line}")
    return EXIT_DAMAGED if st["damaged"] else EXIT_OK
