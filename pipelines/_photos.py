"""Shared by the per-photo measurement scripts (rate_sweep.py, finetune_gain.py): their common flags and the
photos they read. Not a public module; the scripts beside it import it."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

import numpy as np

from smartsplat_dist.io.images import load_image


def photo_parser(doc: str, out: str) -> argparse.ArgumentParser:
    """A parser with --data, --images, --cr, --steps, --backend and --out (default ``out``)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of photographs")
    p.add_argument("--images", nargs="+", required=True, help="file names inside --data")
    p.add_argument("--cr", type=float, nargs="+", default=[50.0, 100.0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--backend", default="cpu")
    p.add_argument("--out", default=out)
    return p


def photos(args) -> Iterator[tuple[str, np.ndarray]]:
    """(file name, [H, W, 3] uint8 pixels) of every ``--images`` file in ``--data``."""
    for name in args.images:
        yield name, load_image(Path(args.data) / name).pixels
