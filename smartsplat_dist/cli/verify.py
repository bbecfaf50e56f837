"""``smartsplat verify ARCHIVE``: check every shard, record and marker; exit 4 if anything is damaged."""
from __future__ import annotations

import json

from ..archive import verify_archive
from ..errors import EXIT_DAMAGED, EXIT_OK
from .common import add_limit_argument, install_limits
from .options import add_storage_options, storage_options


def register(sub) -> None:
    p = sub.add_parser("verify", help="check an archive's shards, records and markers (exit 4 if damaged)",
                       description="Check every commit marker, shard (size, sha256, tar index), record (sha256 "
                                   "and, unless --no-decode, a full decode checking its own checksum) and the "
                                   "manifest. Prints each damaged piece and exits 4 if any; else a one-line OK.")
    p.add_argument("archive", metavar="ARCHIVE", help="archive folder or s3:// prefix")
    add_storage_options(p)
    add_limit_argument(p)
    p.add_argument("--no-decode", action="store_true", help="check sha256 only; do not decode records")
    p.add_argument("--json", action="store_true", help="print the report as one JSON line")
    p.set_defaults(func=run)


def run(args) -> int:
    install_limits(args)
    rep = verify_archive(args.archive, storage_options(args),
                         check_records=not args.no_decode)
    if args.json:
        print(json.dumps(rep.to_dict(), sort_keys=True))
    else:
        for line in rep.damaged:
            print(f"DAMAGED  {line}")
        for line in rep.uncommitted:
            print(f"note     {line}")
        for line in rep.notes:
            print(f"note     {line}")
        print(rep.summary())
    return EXIT_OK if rep.ok else EXIT_DAMAGED
