"""The ``smartsplat`` command. One module per subcommand, each with ``register(subparsers)``.

A subcommand's handler is ``args.func(args) -> int`` (the exit code). Expected errors
(:class:`~smartsplat_dist.errors.SmartsplatError`) print one line and exit with ``EXIT_ERROR``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import EXIT_ERROR, SmartsplatError
from ..threads import apply as apply_threads

COMMANDS = ("encode", "render", "compress", "decode", "status", "verify", "bench", "report", "doctor")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartsplat",
        description="Compress ultra-high-resolution images into 2D Gaussians (SmartSplat), one image or a whole dataset.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    apply_threads()  # torch / numba / BLAS threads from the CPUs this process may use
    try:
        return int(args.func(args) or 0)
    except SmartsplatError as err:
        print(f"smartsplat {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"smartsplat {args.command}: interrupted", file=sys.stderr)
        return 130
