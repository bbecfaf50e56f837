"""Reading what an archive has committed, for readers and the writer alike: run.json, the shard markers of each
shard's current generation, the staged rows (docs/design.md §6). Nothing here writes.
"""
from __future__ import annotations

import warnings
from typing import Any

from ..errors import ArchiveError
from ..io.storage import Folder
from .layout import FORMAT_VERSION, RUN_FORMAT, RUN_JSON, SHARDS, STAGING, check_id, current_markers, loads, order_row
from .shard import parse_marker


def as_folder(folder: Folder | str, storage_options: dict[str, Any] | None = None) -> Folder:
    return folder if isinstance(folder, Folder) else Folder(folder, storage_options)


def read_staged(folder: Folder) -> dict[str, dict[str, Any]]:
    """id -> staged row, from the ``staging/*.json`` sidecars (unreadable ones are skipped with a warning)."""
    names = folder.list(STAGING, suffix=".json")
    out: dict[str, dict[str, Any]] = {}
    for name, data in sorted(folder.read_many(names).items()):
        image_id = name[len(STAGING) + 1: -len(".json")]
        try:
            check_id(image_id)
            row = loads(data, name)
            if not isinstance(row, dict) or row.get("id") != image_id or row.get("status") not in ("ok", "failed"):
                raise ArchiveError(f"{name}: not a staged row of {image_id!r}")
        except ArchiveError as err:
            warnings.warn(f"ignoring staged row: {err}", stacklevel=2)
            continue
        out[image_id] = row
    return out


def read_markers(folder: Folder, damaged: list[str] | None = None) -> dict[int, dict[str, Any]]:
    """shard index -> validated marker of its current (highest) generation. A bad one: ArchiveError, or,
    given a ``damaged`` list (readers), one line appended to it naming the marker and the shard left out."""
    current = current_markers(folder.list(SHARDS, suffix=".json"))
    names = {name: (k, g) for k, (g, name) in current.items()}
    out = {}
    for name, data in folder.read_many(names).items():
        k, g = names[name]
        try:
            out[k] = parse_marker(data, k, name, g)
        except ArchiveError as err:
            if damaged is None:
                raise
            damaged.append(f"{err} (shard {k} left out)")
    check_unique_ids(out)
    return dict(sorted(out.items()))


def marker_generation(marker: dict[str, Any]) -> int:
    """The generation of a (validated) marker: 0 for first commits."""
    return int(marker.get("generation", 0))


def check_unique_ids(markers: dict[int, dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for k in sorted(markers):
        for row in markers[k]["rows"]:
            if row["id"] in seen:
                raise ArchiveError(f"image {row['id']!r} is in shards {seen[row['id']]} and {k}")
            seen[row["id"]] = k


def manifest_rows(markers: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """All manifest rows, shard by shard, in marker order."""
    return [order_row(row) for k in sorted(markers) for row in markers[k]["rows"]]


def read_run_json(folder: Folder) -> dict[str, Any]:
    """The archive's run.json document; ArchiveError if missing or malformed."""
    try:
        data = folder.read_bytes(RUN_JSON)
    except FileNotFoundError:
        raise ArchiveError(f"{folder.url} is not an archive (no {RUN_JSON})") from None
    doc = loads(data, f"{folder.url}/{RUN_JSON}")
    if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT or not isinstance(doc.get("config"), dict):
        raise ArchiveError(f"{folder.url}/{RUN_JSON}: not a smartsplat archive's run.json")
    if doc.get("version") != FORMAT_VERSION:
        raise ArchiveError(f"{folder.url}/{RUN_JSON}: unsupported archive version {doc.get('version')!r}")
    return doc
