"""``smartsplat decode ARCHIVE DST``: decode an archive's records to image files (Ray; idempotent)."""
from __future__ import annotations

from ..io.images import OUTPUT_FORMATS
from .common import add_limit_argument, install_limits, json_line
from .options import add_cluster_arguments, check_workers, storage_options


def register(sub) -> None:
    p = sub.add_parser(
        "decode", help="decode an archive to images in DST (Ray; idempotent)",
        description="Decode the records of ARCHIVE to DST/<id>.<ext> (local or s3://). Existing outputs are "
                    "skipped unless --overwrite. Damaged records are refused and listed, the rest decoded. "
                    "Exit 0 when all decoded, 4 when a record was damaged, 3 when others failed.")
    p.add_argument("archive", help="archive folder, local or s3://")
    p.add_argument("dst", help="output folder, local or s3://")
    p.add_argument("--ids", nargs="+", default=None, metavar="ID", help="only these image ids")
    p.add_argument("--format", dest="fmt", choices=tuple(OUTPUT_FORMATS), default="png")
    p.add_argument("--scale", type=float, default=1.0, help="output size factor (default: 1)")
    p.add_argument("--overwrite", action="store_true", help="rewrite outputs that exist")
    add_limit_argument(p)
    add_cluster_arguments(p)
    p.add_argument("--json", action="store_true", help="print the result counts as one JSON line on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    install_limits(args)
    from ..pipeline.driver import decode_archive  # lazy: pulls in the encode config (numba); keeps --help fast

    check_workers(args)
    result = decode_archive(
        args.archive, args.dst, ids=args.ids, fmt=args.fmt, scale=args.scale, workers=args.workers,
        gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker, address=args.address,
        storage_options=storage_options(args), overwrite=args.overwrite,
        backend=args.backend, progress=not args.quiet,
    )
    if args.json:
        print(json_line(result.summary()), flush=True)
    return result.exit_code
