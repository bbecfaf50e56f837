"""``smartsplat render IN.ssplat -o OUT.png [--scale S]``: decode a record and render it at any scale."""
from __future__ import annotations

from pathlib import Path

from ..errors import RecordError, SmartsplatError
from ..io.images import SUFFIX_FORMATS, encode_image_bytes
from ..io.storage import atomic_write
from .common import add_limit_argument, install_limits
from .options import add_backend_argument


def register(sub) -> None:
    p = sub.add_parser("render", help="decode a .ssplat record and render it to an image")
    p.add_argument("record", help="input record (.ssplat)")
    p.add_argument("-o", "--output", required=True, help="output image; format from the extension (png, jpg, webp, tif)")
    p.add_argument("--scale", type=float, default=1.0, help="output size factor (default: 1)")
    add_backend_argument(p)
    add_limit_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import decode_image  # lazy: api pulls in fitting and init (numba); keeps --help fast

    fmt = SUFFIX_FORMATS.get(Path(args.output).suffix.lower())
    if fmt is None:
        raise SmartsplatError(f"{args.output}: unknown image format; use one of {', '.join(sorted(SUFFIX_FORMATS))}")
    try:
        data = Path(args.record).read_bytes()
    except OSError as err:
        raise SmartsplatError(f"{args.record}: {err.strerror or err}") from None
    limits = install_limits(args)
    try:
        pixels = decode_image(data, scale=args.scale, backend=args.backend, limits=limits)
    except RecordError as err:
        raise RecordError(f"{args.record}: {err}") from None
    atomic_write(args.output, encode_image_bytes(pixels, fmt))
    print(f"{args.output}: {pixels.shape[1]}x{pixels.shape[0]}")
    return 0
