"""``smartsplat compress SRC DST``: compress a dataset into a sharded archive on a Ray cluster (resumable)."""
from __future__ import annotations

from .common import json_line

import dataclasses

from ..errors import ConfigError
from ..io.storage import parse_storage_options


def add_cluster_arguments(p) -> None:
    p.add_argument("--workers", type=int, default=None,
                   help="most actors at once (default: one per GPU the cluster has or gets; on a local cluster "
                        "without GPUs, CPUs // 4)")
    p.add_argument("--gpus-per-worker", type=float, default=1.0,
                   help="GPUs each actor reserves (default: %(default)s); on a joined cluster (--address) compress "
                        "waits for GPU nodes and asks the autoscaler for them (decode uses the GPUs there are, "
                        "else CPUs); 0: CPU actors")
    p.add_argument("--cpus-per-worker", type=float, default=None,
                   help="CPUs each actor reserves (default: a fair share of the cluster's CPUs)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join (auto, HOST:PORT, ray://...); default: start a private local one, even when "
                        "another Ray cluster runs on this machine (the first lines say which)")
    p.add_argument("--storage-options", default=None, metavar="JSON",
                   help="fsspec options for local/S3 storage, e.g. an S3 endpoint (JSON object)")
    p.add_argument("--backend", choices=("auto", "cpu", "torch", "cuda"), default="auto",
                   help="render backend in the actors (default: cuda on GPU actors, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress display")


def register(sub) -> None:
    p = sub.add_parser(
        "compress", help="compress a dataset into a sharded archive (Ray; resumable)",
        description="Compress every image of SRC into the archive DST. Running the same command again resumes: "
                    "committed shards are skipped, staged images are not refitted. Exit 0 when every image is "
                    "archived, 3 when some failed (each listed with its reason), 2 on an error.")
    p.add_argument("src", help="images: a folder (recursive), a glob, an s3:// prefix, or a text file of URIs")
    p.add_argument("dst", help="archive folder, local or s3://")
    p.add_argument("--cr", type=float, default=100.0, help="nominal compression ratio (default: %(default)s)")
    p.add_argument("--rate", choices=("budget", "paper"), default="budget",
                   help="how the record follows its byte budget 3HW/CR: budget (default) buys as many Gaussians as the budget allows and fills it to [CR, 1.03 CR]; paper keeps the paper's N = 3HW/(7 CR) and the default steps")
    p.add_argument("--steps", type=int, default=None, help="fit steps per image (default: the fit config's)")
    p.add_argument("--init", choices=("smart", "random"), default="smart", help="initialisation (default: smart)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-pixels", type=int, default=None, help="refuse larger images (decompression-bomb guard)")
    p.add_argument("--images-per-shard", type=int, default=16, help="images per tar shard (default: %(default)s)")
    p.add_argument("--max-retries", type=int, default=3,
                   help="retries of an image whose actor crashed before it is failed (default: %(default)s)")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0,
                   help="save each fit's state this often (and on SIGTERM) so a retried image continues from it "
                        "(default: %(default)s; 0: never)")
    p.add_argument("--retry-failed", action="store_true",
                   help="fit again the images earlier runs left failed, also inside committed shards (those are "
                        "replaced by a new generation)")
    add_cluster_arguments(p)
    p.add_argument("--json", action="store_true", help="print the result counts as one JSON line on stdout")
    p.set_defaults(func=run)


def encode_config(args):
    from ..config import EncodeConfig

    config = EncodeConfig(cr=float(args.cr), rate=args.rate, seed=int(args.seed))
    if args.max_pixels is not None:
        config = config.replace(max_pixels=int(args.max_pixels))
    if args.steps is not None:
        if args.steps < 0:
            raise ConfigError(f"--steps must be >= 0, got {args.steps}")
        config = config.replace(fit=dataclasses.replace(config.fit, steps=int(args.steps)))
    config = config.replace(init=dataclasses.replace(config.init, method=args.init))
    return config


def run(args) -> int:
    from ..pipeline.driver import compress_dataset

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if not args.checkpoint_minutes >= 0:
        raise ConfigError(f"--checkpoint-minutes must be >= 0, got {args.checkpoint_minutes}")
    result = compress_dataset(
        args.src, args.dst, encode_config(args), workers=args.workers, gpus_per_worker=args.gpus_per_worker,
        cpus_per_worker=args.cpus_per_worker, images_per_shard=args.images_per_shard, address=args.address,
        storage_options=parse_storage_options(args.storage_options), max_retries=args.max_retries,
        backend=args.backend, progress=not args.quiet, checkpoint_minutes=args.checkpoint_minutes,
        retry_failed=args.retry_failed,
    )
    if args.json:
        print(json_line(result.summary()), flush=True)
    return result.exit_code
