"""Shared by the dataset pipelines: run one ``compress_dataset`` per CR, each into its own archive.

Not a public module; the scripts beside it import it (their folder is on ``sys.path`` when run as scripts).
"""
from __future__ import annotations

import argparse
import json
import sys


def sweep_parser(dataset: str, crs: tuple[float, ...], default_steps: int | None, description: str):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("src", help=f"{dataset} images: a folder, glob, s3:// prefix or a listing file")
    p.add_argument("dst", help="archive prefix: one archive per CR is written to DST/<dataset>-cr<CR>/")
    p.add_argument("--cr", type=float, nargs="+", default=list(crs), help="CRs to run (default: %(default)s)")
    p.add_argument("--rate", choices=("budget", "paper"), default="budget",
                   help="budget: fill each record's byte budget (default); paper: the paper's N = 3HW/(7 CR)")
    p.add_argument("--steps", type=int, default=default_steps, help="fit steps per image (default: %(default)s)")
    p.add_argument("--address", default=None, help="Ray cluster to join (e.g. auto); default: a local cluster")
    p.add_argument("--workers", type=int, default=None, help="actors (default: one per GPU, else per the CPUs)")
    p.add_argument("--images-per-shard", type=int, default=16)
    p.add_argument("--max-retries", type=int, default=3)
    p.add_argument("--storage-options", default=None, help="fsspec options as JSON (S3 endpoint, ...)")
    return p


def run_sweep(dataset: str, args) -> int:
    from smartsplat_dist.config import EncodeConfig
    from smartsplat_dist.pipeline import compress_dataset

    opts = json.loads(args.storage_options) if args.storage_options else None
    worst = 0
    for cr in args.cr:
        config = EncodeConfig(cr=float(cr), rate=args.rate)
        if args.steps is not None:
            import dataclasses

            config = config.replace(fit=dataclasses.replace(config.fit, steps=int(args.steps)))
        dst = f"{args.dst.rstrip('/')}/{dataset}-cr{cr:g}"
        print(f"== {dataset} CR {cr:g} -> {dst}", file=sys.stderr, flush=True)
        result = compress_dataset(args.src, dst, config, workers=args.workers, address=args.address,
                                  images_per_shard=args.images_per_shard, storage_options=opts,
                                  max_retries=args.max_retries)
        print(json.dumps(result.summary(), default=float), flush=True)
        worst = max(worst, result.exit_code)
    return worst
