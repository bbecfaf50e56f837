"""``smartsplat encode IMAGE -o OUT.ssplat``: compress one image; prints one JSON line of stats."""
from __future__ import annotations

from pathlib import Path

from ..errors import SmartsplatError
from ..io.storage import atomic_write
from .common import json_line, progress_printer
from .options import add_backend_argument, add_encode_arguments, encode_config


def register(sub) -> None:
    p = sub.add_parser("encode", help="compress one image into a .ssplat record")
    p.add_argument("image", help="input image (PNG, JPEG, TIFF, WebP, ...)")
    p.add_argument("-o", "--output", required=True, help="output record, e.g. OUT.ssplat")
    add_encode_arguments(p)
    add_backend_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import encode_image  # lazy: api pulls in fitting and init (numba); keeps --help fast

    if not Path(args.image).is_file():
        raise SmartsplatError(f"{args.image}: no such file")
    config = encode_config(args)
    try:
        record, stats = encode_image(args.image, backend=args.backend, config=config,
                                     progress=None if args.quiet else progress_printer(args.image))
    except SmartsplatError as err:  # every error names the file it is about
        if str(err).startswith(f"{args.image}:"):
            raise
        raise type(err)(f"{args.image}: {err}") from None
    atomic_write(args.output, record)
    stats = {"image": args.image, "output": args.output, **stats}
    print(json_line(stats), flush=True)
    return 0
