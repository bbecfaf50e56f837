"""``smartsplat doctor [SRC] [DST]``: a preflight of a dataset run; one line per problem, exit 1 when any."""
from __future__ import annotations

import sys

from .options import add_backend_argument, add_storage_options, storage_options


def register(sub) -> None:
    p = sub.add_parser(
        "doctor", help="preflight: what a run would get (nodes, GPUs, CUDA, storage, a timed fit)",
        description="Check a cluster, a source and an archive location before a run: Ray nodes (CPUs, GPUs, "
                    "object store); per GPU node CUDA, GPU model and memory, gsplat's CUDA extension, Triton; "
                    "SRC's image count and pixels; a write-read-delete probe in DST; a short timed fit at the "
                    "largest image's size and the projected hours for the dataset. Prints what it found, then one "
                    "line per problem; exit 0 when there is none, 1 otherwise.")
    p.add_argument("src", nargs="?", help="images, as for compress")
    p.add_argument("dst", nargs="?", help="archive location, as for compress")
    p.add_argument("--address", default=None, help="Ray cluster to check (auto, HOST:PORT); default: a local one")
    add_storage_options(p)
    p.add_argument("--steps", type=int, default=2000, help="fit steps per image of the planned run")
    p.add_argument("--cr", type=float, default=100.0, help="nominal compression ratio of the planned run")
    p.add_argument("--gpus-per-worker", type=float, default=1.0, help="0: the run will use CPU actors")
    p.add_argument("--fit-steps", type=int, default=2, help="steps of the timed fit (after one warm-up step)")
    p.add_argument("--no-fit", action="store_true", help="skip the timed fit")
    add_backend_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..pipeline.doctor import run_doctor  # lazy: pulls in fitting (numba); keeps --help fast

    found = run_doctor(args.src, args.dst, address=args.address,
                       storage_options=storage_options(args), steps=args.steps, cr=args.cr,
                       fit_steps=args.fit_steps, gpus_per_worker=args.gpus_per_worker, backend=args.backend,
                       fit=not args.no_fit)
    for line in found.info:
        print(f"  {line}")
    for line in found.problems:
        print(f"PROBLEM: {line}")
    print(f"smartsplat doctor: {len(found.problems)} problem(s)", file=sys.stderr)
    return 1 if found.problems else 0
