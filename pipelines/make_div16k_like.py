"""Build a DIV16K-like set: every image of SRC upsampled 8x with Lanczos, as PNG in DST.

DIV16K itself was made by 8x upscaling DIV2K, so 8x Lanczos of DIV2K-sized photos gives images of the same size
and character (say "DIV16K-like" when reporting on them):

    python pipelines/make_div16k_like.py ../shared/data/photos-2k /data/div16k-like
    python pipelines/make_div16k_like.py s3://BUCKET/DIV2K/ s3://BUCKET/div16k-like/ --factor 8 --limit 16

Streams one image at a time (peak memory ~2 GB for a 16320 x 10848 output); outputs that exist are skipped, so
an interrupted build resumes. Each output is written atomically (local temp + rename, or one S3 PUT).
"""
import argparse
import io
import os
import sys
import time

from PIL import Image


def upsample(src_bytes: bytes, factor: int) -> Image.Image:
    with Image.open(io.BytesIO(src_bytes)) as im:
        im = im.convert("RGB")
        return im.resize((im.width * factor, im.height * factor), Image.Resampling.LANCZOS)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", help="source images: folder, glob, s3:// prefix or listing file")
    p.add_argument("dst", help="output folder (local or s3://)")
    p.add_argument("--factor", type=int, default=8, help="upsampling factor (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--compress-level", type=int, default=6, help="PNG zlib level 0-9 (default: %(default)s)")
    args = p.parse_args(argv)

    from smartsplat_dist.io.storage import Folder, read_uri
    from smartsplat_dist.pipeline.sources import list_sources

    uris = list_sources(args.src)[: args.limit]
    out = Folder(args.dst)
    for i, uri in enumerate(uris, 1):
        name = os.path.splitext(uri.rstrip("/").rsplit("/", 1)[-1])[0] + ".png"
        if out.exists(name):
            print(f"[{i}/{len(uris)}] {name}: exists, skipped", flush=True)
            continue
        t0 = time.perf_counter()
        big = upsample(read_uri(uri), args.factor)
        buf = io.BytesIO()
        big.save(buf, format="PNG", compress_level=args.compress_level)
        size = (big.width, big.height)
        del big
        out.write_bytes(name, buf.getbuffer())
        print(f"[{i}/{len(uris)}] {name}: {size[0]}x{size[1]}, {buf.tell() / 1e6:.0f} MB, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
