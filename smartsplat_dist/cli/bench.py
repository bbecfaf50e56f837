"""``smartsplat bench NAME``: each benchmark prints a table and writes a JSON file.

A benchmark is a module ``smartsplat_dist.bench.<name>`` with ``DESCRIPTION``, ``add_arguments(parser)`` and
``run(args) -> dict``; ``run`` prints its table and returns the JSON payload, which is written to ``--out``.
"""
from __future__ import annotations

import importlib

from ..bench.common import write_result

BENCHMARKS = ("raster", "init", "convergence", "rd", "decode", "pipeline", "limits", "gpu")


def register(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark: prints a table and writes JSON")
    names = p.add_subparsers(dest="bench", required=True, metavar="NAME")
    for name in BENCHMARKS:
        try:
            module = importlib.import_module(f"..bench.{name}", __package__)
        except ModuleNotFoundError as err:  # a benchmark whose module is not importable is not offered
            if err.name and err.name.endswith(f"bench.{name}"):
                continue
            raise
        q = names.add_parser(name, help=module.DESCRIPTION, description=module.DESCRIPTION)
        q.add_argument("--quick", action="store_true", help="a few minutes on a 2-core machine")
        q.add_argument("--out", default=f"bench-results/{name}.json", help="JSON result file (default: %(default)s)")
        module.add_arguments(q)
        q.set_defaults(func=lambda args, m=module, n=name: _run(m, n, args))


def _run(module, name: str, args) -> int:
    payload = module.run(args)
    path = write_result(args.out, name, module.DESCRIPTION, payload)
    print(f"wrote {path}")
    return 0
