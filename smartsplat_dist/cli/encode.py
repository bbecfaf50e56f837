"""``smartsplat encode IMAGE -o OUT.ssplat``: compress one image; prints one JSON line of stats."""
from __future__ import annotations

from pathlib import Path

from ..errors import SmartsplatError
from ..io.storage import atomic_write
from .common import json_line, progress_printer


def register(sub) -> None:
    p = sub.add_parser("encode", help="compress one image into a .ssplat record")
    p.add_argument("image", help="input image (PNG, JPEG, TIFF, WebP, ...)")
    p.add_argument("-o", "--output", required=True, help="output record, e.g. OUT.ssplat")
    p.add_argument("--cr", type=float, default=100.0, help="nominal compression ratio (default: %(default)s)")
    p.add_argument("--rate", choices=("budget", "paper"), default="budget",
                   help="how the record follows its byte budget 3HW/CR: budget (default) buys as many Gaussians as the budget allows and fills it to [CR, 1.03 CR]; paper keeps the paper's N = 3HW/(7 CR) and the default steps")
    p.add_argument("--steps", type=int, default=None, help="fit steps (default: the fit config's)")
    p.add_argument("--init", choices=("smart", "random"), default="smart", help="initialisation (default: smart)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("auto", "cpu", "torch", "cuda"), default="auto")
    p.add_argument("--max-pixels", type=int, default=None, help="refuse larger images (decompression-bomb guard)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import encode_image
    from ..config import EncodeConfig

    if not Path(args.image).is_file():
        raise SmartsplatError(f"{args.image}: no such file")
    config = EncodeConfig(rate=args.rate)
    if args.max_pixels is not None:
        config = config.replace(max_pixels=args.max_pixels)
    try:
        record, stats = encode_image(
            args.image, cr=args.cr, steps=args.steps, init=args.init, seed=args.seed, backend=args.backend,
            config=config, progress=None if args.quiet else progress_printer(args.image),
        )
    except SmartsplatError as err:  # every error names the file it is about
        if str(err).startswith(f"{args.image}:"):
            raise
        raise type(err)(f"{args.image}: {err}") from None
    atomic_write(args.output, record)
    stats = {"image": args.image, "output": args.output, **stats}
    print(json_line(stats), flush=True)
    return 0
