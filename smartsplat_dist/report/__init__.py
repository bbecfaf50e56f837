"""``smartsplat report``: one self-contained HTML page about an archive (finished or still running).

Run settings (run.json), a per-image table that stays usable at 800+ rows (filter, sort, paginate), PSNR / real
CR / time distributions, side-by-side 100% crops of original and decoded images for a sample, and (given a
``smartsplat bench rd`` result) the rate–distortion plot and BD-rate table.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io.storage import atomic_write
from .build import ReportData, Sample, collect, pick_samples
from .page import render_page


def build_report(url: str, *, rd_path: str | None = None, samples: int = 4, source_root: str | None = None,
                 storage_options: dict[str, Any] | None = None, backend: str = "auto", log=None) -> str:
    """The report of the archive at ``url`` (local folder or ``s3://`` prefix) as an HTML string."""
    data = collect(url, rd_path=rd_path, samples=samples, source_root=source_root,
                   storage_options=storage_options, backend=backend, log=log)
    return render_page(data)


def write_report(url: str, output: str | Path, **kwargs: Any) -> Path:
    """Build the report and write it to ``output`` (atomically). Returns the path."""
    page = build_report(url, **kwargs)
    atomic_write(output, page.encode("utf-8"))
    return Path(output)


__all__ = ["build_report", "write_report", "collect", "render_page", "pick_samples", "ReportData", "Sample"]
