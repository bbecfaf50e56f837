"""Bulk-decode an archive back to images on local disk or S3 (Ray actors; GPU where present).

    python pipelines/decode_archive.py s3://BUCKET/archives/div16k-cr100 s3://BUCKET/decoded/div16k-cr100/ \
        --format png --address auto
    python pipelines/decode_archive.py ./archive ./previews --scale 0.125 --format jpeg      # 2K previews

``smartsplat decode ARCHIVE DST --json`` under a script's name: the same flags, and the counts as one JSON line.
Idempotent: outputs that already exist are skipped (``--overwrite`` to redo them). Damaged records are refused
and listed; the rest are decoded (exit 4 when any record was damaged, 3 when others failed).
"""
import sys

from smartsplat_dist.cli import main

if __name__ == "__main__":
    sys.exit(main(["decode", *sys.argv[1:], "--json"]))
