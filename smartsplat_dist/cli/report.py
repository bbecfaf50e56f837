"""``smartsplat report ARCHIVE -o report.html``: one self-contained HTML page about an archive."""
from __future__ import annotations

import sys

from ..errors import ConfigError
from .common import add_limit_argument, install_limits
from .options import add_backend_argument, add_storage_options, storage_options


def register(sub) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of an archive (finished or running)")
    p.add_argument("archive", help="archive folder or s3:// prefix")
    p.add_argument("-o", "--output", required=True, help="output HTML file")
    p.add_argument("--rd", metavar="RESULTS.json",
                   help="a 'smartsplat bench rd' result (or a CompressAI results file): adds the RD plot")
    p.add_argument("--samples", type=int, default=4, metavar="K",
                   help="images shown as 100%% crops of original and decoded (default: %(default)s)")
    p.add_argument("--source-root", metavar="DIR",
                   help="read the originals only under this folder or s3:// prefix (same relative path, else "
                        "same file name); without it no original is read: an archive's source URIs are not trusted")
    add_storage_options(p)
    add_limit_argument(p)
    add_backend_argument(p, "render backend for the decoded crops")
    p.set_defaults(func=run)


def run(args) -> int:
    install_limits(args)
    from ..report import write_report  # lazy: report pulls in the api (fitting, numba); keeps --help fast

    if args.samples < 0:
        raise ConfigError(f"--samples must be >= 0, got {args.samples}")
    options = storage_options(args)
    path = write_report(args.archive, args.output, rd_path=args.rd, samples=args.samples,
                        source_root=args.source_root, storage_options=options, backend=args.backend,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"wrote {path}")
    return 0
