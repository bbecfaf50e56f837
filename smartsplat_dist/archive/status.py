"""Counts and mean quality of an archive (``smartsplat status``)."""
from __future__ import annotations

import math
from typing import Any

from .markers import as_folder, read_markers, read_run_json, read_staged


def _mean(values: list[float]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def archive_status(url, storage_options: dict[str, Any] | None = None, listing_size: int | None = None) -> dict:
    """Progress of an archive as a JSON-able dict.

    Counts: ``shards`` (committed), ``committed`` (ok images in committed shards), ``staged`` (ok images staged,
    not yet in a shard), ``failed`` (failed images, committed or staged), ``pending`` (``listing_size`` — from
    run.json unless given — minus the rest), ``listing_size``. Over the ``done`` images (committed + staged, ok):
    ``total_bytes``, ``total_pixels``, ``total_real_cr`` (3·Σpixels / Σbytes), ``mean_real_cr``, ``mean_psnr``,
    ``mean_ssim``, ``total_seconds`` (encode time summed over all images, failed ones included); ``damaged``:
    a line per invalid shard marker (that shard is left out of the counts)."""
    folder = as_folder(url, storage_options)
    run = read_run_json(folder)
    damaged: list[str] = []
    markers = read_markers(folder, damaged)
    committed_rows = [r for k in markers for r in markers[k]["rows"]]
    committed_ids = {r["id"] for r in committed_rows}
    staged_rows = [r for i, r in read_staged(folder).items() if i not in committed_ids]
    ok = [r for r in committed_rows + staged_rows if r["status"] == "ok"]
    n_failed = sum(r["status"] == "failed" for r in committed_rows + staged_rows)
    n_committed = sum(r["status"] == "ok" for r in committed_rows)
    n_staged = sum(r["status"] == "ok" for r in staged_rows)
    size = listing_size if listing_size is not None else run.get("listing_size")
    pending = max(0, int(size) - n_committed - n_staged - n_failed) if isinstance(size, int) else None
    total_bytes = sum(int(r.get("length") or 0) for r in ok)
    pixels = sum(int(r["height"]) * int(r["width"]) for r in ok
                 if isinstance(r.get("height"), int) and isinstance(r.get("width"), int))
    return {
        "url": folder.url, "listing_size": size, "shards": len(markers), "committed": n_committed,
        "staged": n_staged, "failed": n_failed, "pending": pending, "done": len(ok),
        "total_bytes": total_bytes, "total_pixels": pixels,
        "total_real_cr": 3 * pixels / total_bytes if total_bytes and pixels else None,
        "mean_real_cr": _mean([r.get("real_cr") for r in ok]),
        "mean_psnr": _mean([r.get("psnr") for r in ok]),
        "mean_ssim": _mean([r.get("ssim") for r in ok]),
        "damaged": damaged,
        "total_seconds": sum(float(r.get("seconds") or 0.0) for r in committed_rows + staged_rows),
    }
