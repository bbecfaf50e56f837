"""Bulk-decode an archive back to images on local disk or S3 (Ray actors; GPU where present).

    python pipelines/decode_archive.py s3://BUCKET/archives/div16k-cr100 s3://BUCKET/decoded/div16k-cr100/ \
        --format png --address auto
    python pipelines/decode_archive.py ./archive ./previews --scale 0.125 --format jpeg      # 2K previews

Idempotent: outputs that already exist are skipped (``--overwrite`` to redo them). Damaged records are refused
and listed; the rest are decoded (exit 4 when any record was damaged, 3 when others failed).
"""
import argparse
import json
import sys

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("archive")
    p.add_argument("dst")
    p.add_argument("--ids", nargs="+", default=None, help="only these image ids")
    p.add_argument("--format", default="png", choices=("png", "jpeg", "webp", "tiff"))
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--address", default=None)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--storage-options", default=None)
    args = p.parse_args()

    from smartsplat_dist.pipeline import decode_archive

    result = decode_archive(args.archive, args.dst, ids=args.ids, fmt=args.format, scale=args.scale,
                            workers=args.workers, address=args.address, overwrite=args.overwrite,
                            storage_options=json.loads(args.storage_options) if args.storage_options else None)
    print(json.dumps(result.summary(), default=float), flush=True)
    sys.exit(result.exit_code)
