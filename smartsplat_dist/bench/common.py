"""Shared plumbing of every benchmark: where it ran, a printed table, and a JSON file."""
from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any, Sequence

import torch


def machine() -> dict[str, Any]:
    """What the benchmark ran on, recorded in every result."""
    info: dict[str, Any] = {
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_gb"] = round(int(f.readline().split()[1]) / 1e6, 1)
    except OSError:
        pass
    info["label"] = "GPU" if info["cuda"] else "CPU"
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain fixed-width table of dict rows."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
        return str(v)

    body = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(b) for b in body)])


def write_result(path: str | os.PathLike, name: str, description: str, payload: dict[str, Any]) -> Path:
    """Write ``{name, description, machine, date, ...payload}`` as JSON and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"name": name, "description": description, "machine": machine(),
           "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **payload}
    out.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    return out


#: The environment variable naming the benchmark data folder when ``--data`` is not given (the benchmark scripts,
#: e.g. ``pipelines/benchmarks.sh``, set it). A data folder holds ``photos-768/`` and ``photos-2k/``, or is
#: itself a folder of images.
DATA_ENV = "SMARTSPLAT_BENCH_DATA"

#: The example photographs shipped in the package: every benchmark's fallback when no data folder is given.
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def add_data_argument(p, repeatable: bool = False) -> None:
    """``--data DIR``: the one spelling of the benchmark data folder in every ``smartsplat bench`` subcommand."""
    p.add_argument("--data", metavar="DIR", default=None, action="append" if repeatable else "store",
                   help=f"benchmark data folder (with photos-768/ and photos-2k/, or a folder of images)"
                        f"{'; repeatable' if repeatable else ''}; default: ${DATA_ENV}, else the example photos "
                        "shipped in the package")


def data_root(data: str | os.PathLike | None) -> Path | None:
    """The data folder given by ``--data`` or, failing that, by ``$SMARTSPLAT_BENCH_DATA``; None if neither."""
    chosen = data or os.environ.get(DATA_ENV)
    return Path(chosen) if chosen else None


def photo_folders(folder: Path, wanted: Sequence[str]) -> list[Path]:
    """The photo folders of a data folder: those of its subfolders named in ``wanted`` that exist, else (none
    of them there) the folder itself."""
    found = [folder / w for w in wanted if (folder / w).is_dir()]
    return found or [folder]
