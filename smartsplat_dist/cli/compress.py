"""``smartsplat compress SRC DST``: compress a dataset into a sharded archive on a Ray cluster (resumable)."""
from __future__ import annotations

from ..errors import ConfigError
from .common import json_line
from .options import add_cluster_arguments, add_encode_arguments, check_workers, encode_config, storage_options


def register(sub) -> None:
    p = sub.add_parser(
        "compress", help="compress a dataset into a sharded archive (Ray; resumable)",
        description="Compress every image of SRC into the archive DST. Running the same command again resumes: "
                    "committed shards are skipped, staged images are not refitted. Exit 0 when every image is "
                    "archived, 3 when some failed (each listed with its reason), 2 on an error.")
    p.add_argument("src", help="images: a folder (recursive), a glob, an s3:// prefix, or a text file of URIs")
    p.add_argument("dst", help="archive folder, local or s3://")
    add_encode_arguments(p)
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


def run(args) -> int:
    from ..pipeline.driver import compress_dataset  # lazy: pulls in the encode config (numba); keeps --help fast

    check_workers(args)
    if not args.checkpoint_minutes >= 0:
        raise ConfigError(f"--checkpoint-minutes must be >= 0, got {args.checkpoint_minutes}")
    result = compress_dataset(
        args.src, args.dst, encode_config(args), workers=args.workers, gpus_per_worker=args.gpus_per_worker,
        cpus_per_worker=args.cpus_per_worker, images_per_shard=args.images_per_shard, address=args.address,
        storage_options=storage_options(args), max_retries=args.max_retries,
        backend=args.backend, progress=not args.quiet, checkpoint_minutes=args.checkpoint_minutes,
        retry_failed=args.retry_failed,
    )
    if args.json:
        print(json_line(result.summary()), flush=True)
    return result.exit_code
