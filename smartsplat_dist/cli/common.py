"""Small helpers shared by the subcommands."""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write a local file so that it either appears whole or not at all."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def progress_printer(label: str, stream=sys.stderr) -> Callable[[int, dict], None]:
    """A fit progress callback printing one line per report: step, loss, PSNR, elapsed."""
    start = time.perf_counter()

    def report(step: int, info: dict) -> None:
        total = info.get("steps", "?")
        parts = [f"{label}: step {step}/{total}"]
        if "loss" in info:
            parts.append(f"loss {info['loss']:.4f}")
        if "psnr" in info:
            parts.append(f"psnr {info['psnr']:.2f} dB")
        parts.append(f"{time.perf_counter() - start:.1f}s")
        print("  ".join(parts), file=stream, flush=True)

    return report
