"""Shared by the dataset pipelines: run one ``compress_dataset`` per CR, each into its own archive.

Not a public module; the scripts beside it import it (their folder is on ``sys.path`` when run as scripts).
Their flags are the ``smartsplat`` commands' own (:mod:`smartsplat_dist.cli.options`).
"""
from __future__ import annotations

import argparse
import json
import sys

from smartsplat_dist.cli.options import add_encode_arguments, add_storage_options, encode_config, storage_options
from smartsplat_dist.pipeline import compress_dataset


def sweep_parser(dataset: str, crs: tuple[float, ...], default_steps: int | None, description: str):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("src", help=f"{dataset} images: a folder, glob, s3:// prefix or a listing file")
    p.add_argument("dst", help="archive prefix: one archive per CR is written to DST/<dataset>-cr<CR>/")
    add_encode_arguments(p, crs=crs, steps=default_steps)
    p.add_argument("--address", default=None, help="Ray cluster to join (e.g. auto); default: a local cluster")
    p.add_argument("--workers", type=int, default=None, help="actors (default: one per GPU, else per the CPUs)")
    p.add_argument("--images-per-shard", type=int, default=16)
    p.add_argument("--max-retries", type=int, default=3)
    add_storage_options(p)
    return p


def run_sweep(dataset: str, args) -> int:
    opts = storage_options(args)
    worst = 0
    for cr in args.cr:
        config = encode_config(args, cr=cr)
        dst = f"{args.dst.rstrip('/')}/{dataset}-cr{cr:g}"
        print(f"== {dataset} CR {cr:g} -> {dst}", file=sys.stderr, flush=True)
        result = compress_dataset(args.src, dst, config, workers=args.workers, address=args.address,
                                  images_per_shard=args.images_per_shard, storage_options=opts,
                                  max_retries=args.max_retries)
        print(json.dumps(result.summary(), default=float), flush=True)
        worst = max(worst, result.exit_code)
    return worst
