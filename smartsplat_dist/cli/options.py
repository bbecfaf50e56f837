"""The flags the commands (and ``pipelines/``) share, each declared once, and the one path from them to a config.

- :func:`add_storage_options` / :func:`storage_options`: ``--storage-options`` (a JSON object or ``@FILE``);
- :func:`add_backend_argument`: ``--backend``;
- :func:`add_cluster_arguments`: the Ray flags of ``compress`` and ``decode``;
- :func:`add_encode_arguments` / :func:`encode_config`: ``--cr --rate --steps --init --seed --max-pixels
  --prune-gap-db`` and
  the :class:`~smartsplat_dist.config.EncodeConfig` they make.
"""
from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..io.storage import parse_storage_options

BACKENDS = ("auto", "cpu", "torch", "cuda")
RATE_HELP = ("how the record follows its byte budget 3HW/CR: budget (default) buys as many Gaussians as the budget "
             "allows and fills it to [CR, 1.03 CR]; paper keeps the paper's N = 3HW/(7 CR) and the default steps")


def add_storage_options(p) -> None:
    p.add_argument("--storage-options", default=None, metavar="JSON|@FILE",
                   help='fsspec options for local/S3 storage: a JSON object or @FILE holding one, e.g. '
                        '\'{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}\' '
                        "(default: the AWS_* environment variables)")


def storage_options(args) -> dict[str, Any] | None:
    """The parsed ``--storage-options`` (None when not given)."""
    return parse_storage_options(args.storage_options)


def add_backend_argument(p, help: str | None = None) -> None:
    p.add_argument("--backend", choices=BACKENDS, default="auto", help=help)


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
    add_storage_options(p)
    add_backend_argument(p, "render backend in the actors (default: cuda on GPU actors, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress display")


def check_workers(args) -> None:
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")


def add_encode_arguments(p, *, crs: tuple[float, ...] | None = None, steps: int | None = None) -> None:
    """The encode settings. ``crs``: ``--cr`` takes several CRs (a sweep), these by default; ``steps``: the
    default of ``--steps`` (None: the fit config's)."""
    if crs is None:
        p.add_argument("--cr", type=float, default=100.0, help="nominal compression ratio (default: %(default)s)")
    else:
        p.add_argument("--cr", type=float, nargs="+", default=list(crs), help="CRs to run (default: %(default)s)")
    p.add_argument("--rate", choices=("budget", "paper"), default="budget", help=RATE_HELP)
    p.add_argument("--steps", type=int, default=steps,
                   help="fit steps per image (default: %s)" % ("the fit config's" if steps is None else steps))
    p.add_argument("--init", choices=("smart", "random"), default="smart", help="initialisation (default: smart)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-pixels", type=int, default=None, help="refuse larger images (decompression-bomb guard)")
    p.add_argument("--prune-gap-db", type=float, default=None, metavar="DB",
                   help="budget mode: where the record decodes more than DB below the fit, refit with fewer Gaussians "
                        "on finer steps while that decodes better (default: 0.3; negative: never)")


def encode_config(args, cr: float | None = None):
    """The :class:`~smartsplat_dist.config.EncodeConfig` of :func:`add_encode_arguments`' flags (``cr``: this CR
    instead of ``--cr``, for a sweep)."""
    from ..config import EncodeConfig  # lazy: config pulls in fitting and init (numba); keeps --help fast

    if args.steps is not None and args.steps < 0:
        raise ConfigError(f"--steps must be >= 0, got {args.steps}")
    return EncodeConfig().with_overrides(cr=args.cr if cr is None else cr, rate=args.rate, steps=args.steps,
                                         init=args.init, seed=args.seed, max_pixels=args.max_pixels,
                                         prune_gap_db=args.prune_gap_db)
