"""Checking an archive end to end (``smartsplat verify``).

Every marker parses and is valid; every committed shard exists with the marker's size and sha256; every record
has its sha256 and decodes through the codec (unless ``check_records`` is off), which checks its own checksum; the tar's members and
``__index__.json`` agree with the marker; manifest.jsonl agrees with the markers. A tar without a marker is an
uncommitted shard (a commit was interrupted; resume builds it again): reported, but not damage.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchiveError, RecordError
from .layout import (
    INDEX_MEMBER, MANIFEST, RECORD_EXT, RUN_JSON, SHARDS, current_markers, order_row, parse_shard_name,
    superseded_shard_files,
)
from .markers import as_folder, read_run_json, read_staged
from .reader import read_manifest
from .records import check_record
from .shard import parse_marker, read_tar_members, sha256_hex, tar_index_doc


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_archive`. ``damaged``: one human-readable line per damaged piece;
    ``uncommitted``: tars without a marker; ``notes``: harmless findings (stale manifest, stray files)."""

    url: str
    damaged: list[str] = field(default_factory=list)
    uncommitted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shards: int = 0
    records: int = 0
    failed: int = 0
    staged: int = 0
    pending: int | None = None
    records_decoded: bool = False

    @property
    def ok(self) -> bool:
        return not self.damaged

    def summary(self) -> str:
        what = "checked and decoded" if self.records_decoded else "checked (sha256)"
        s = f"{self.url}: {self.shards} shards, {self.records} records {what}, {self.failed} failed images"
        if self.staged or self.pending:
            s += f", {self.staged} staged, {self.pending or 0} pending"
        if self.uncommitted:
            s += f", {len(self.uncommitted)} uncommitted shard tars"
        return s + (": OK" if self.ok else f": {len(self.damaged)} DAMAGED")

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "ok": self.ok, "damaged": self.damaged, "uncommitted": self.uncommitted,
                "notes": self.notes, "shards": self.shards, "records": self.records, "failed": self.failed,
                "staged": self.staged, "pending": self.pending}


def verify_archive(url, storage_options: dict[str, Any] | None = None, check_records: bool = True) -> VerifyReport:
    """Check the archive at ``url``; ``check_records``: also decode every record with the codec.
    ArchiveError only if ``url`` is not an archive at all (no run.json)."""
    folder = as_folder(url, storage_options)
    rep = VerifyReport(url=folder.url)
    damaged = rep.damaged.append
    run: dict[str, Any] = {}
    if not folder.exists(RUN_JSON):
        raise ArchiveError(f"{folder.url} is not an archive (no {RUN_JSON})")
    try:
        run = read_run_json(folder)
    except ArchiveError as err:
        damaged(str(err))

    names = folder.list(SHARDS)
    current = current_markers(names)
    marker_names = {k: name for k, (_, name) in current.items()}
    old = set(superseded_shard_files(names))
    tar_names: dict[int, str] = {}
    for name in names:
        parsed = parse_shard_name(name)
        if parsed is None:
            rep.notes.append(f"{name}: unexpected file (ignored)")
        elif name in old:
            rep.notes.append(f"{name}: superseded by generation {current[parsed[0]][0]} of shard {parsed[0]} "
                             "(left by an interrupted replacement; deleted by the next commit)")
        elif parsed[1] == "tar" and parsed[2] == current.get(parsed[0], (0, ""))[0]:
            tar_names[parsed[0]] = name
        elif parsed[1] == "tar":
            rep.uncommitted.append(f"{name}: no marker: uncommitted generation {parsed[2]} of shard {parsed[0]}")

    markers: dict[int, dict[str, Any]] = {}
    for k, name in sorted(marker_names.items()):
        try:
            markers[k] = parse_marker(folder.read_bytes(name), k, name, current[k][0])
        except ArchiveError as err:
            damaged(str(err))
    owner: dict[str, int] = {}
    for k, marker in markers.items():
        for row in marker["rows"]:
            if row["id"] in owner:
                damaged(f"image {row['id']!r} is in both shard {owner[row['id']]} and shard {k}")
            owner.setdefault(row["id"], k)

    for k, marker in markers.items():
        rep.shards += 1
        rep.failed += sum(r["status"] == "failed" for r in marker["rows"])
        _verify_shard(folder, k, marker, rep, check_records)

    for k, name in sorted(tar_names.items()):
        if k in marker_names:
            continue
        detail = ""
        try:
            with folder.open_read(name, block_size=64 * 1024) as f:
                _, index_doc = read_tar_members(f)
            ids = sorted((index_doc or {}).get("index", {}))
            if ids:
                detail = f" ({len(ids)} images: {', '.join(map(str, ids[:5]))}{', ...' if len(ids) > 5 else ''})"
        except (ArchiveError, OSError):
            detail = " (unreadable)"
        rep.uncommitted.append(f"{name}: no marker: uncommitted shard{detail}; its images are not in the archive")

    _verify_manifest(folder, markers, rep)
    committed = set(owner)
    staged = {i: r for i, r in read_staged(folder).items() if i not in committed}
    rep.staged = len(staged)
    size = run.get("listing_size")
    if isinstance(size, int):
        rep.pending = max(0, size - len(committed) - len(staged))
    return rep


#: verify streams each shard in chunks of this size (memory: one chunk + the records it overlaps).
CHUNK_BYTES = 8 * 2**20


def _verify_shard(folder, k: int, marker: dict[str, Any], rep: VerifyReport, check_records: bool) -> None:
    """Stream the shard once: its size and sha256, and each record (sliced at the marker's offsets) with its
    sha256 and the codec's decode; then parse the tar's headers and __index__.json (seeking, not reading the
    records again)."""
    damaged = rep.damaged.append
    tar = marker["tar"]
    rows = {r["id"]: r for r in marker["rows"]}
    entries = sorted(marker["index"].items(), key=lambda kv: kv[1]["offset"])

    def check(image_id: str, rec: bytes) -> None:
        e = marker["index"][image_id]
        rep.records += 1
        if len(rec) != e["length"]:
            damaged(f"{tar}: record {image_id!r} is truncated ({len(rec)} of {e['length']} bytes)")
            return
        if sha256_hex(rec) != e["sha256"]:
            damaged(f"{tar}: record {image_id!r} is damaged (sha256 mismatch)")
            return
        if not check_records:
            return
        try:
            meta = check_record(rec, full=True)
        except RecordError as err:
            damaged(f"{tar}: record {image_id!r} does not decode: {err}")
            return
        rep.records_decoded = True
        row = rows.get(image_id, {})
        hw = (meta.height, meta.width)
        if row.get("height") is not None and hw != (row.get("height"), row.get("width")):
            damaged(f"{tar}: record {image_id!r} is {hw[0]}x{hw[1]}, its row says "
                    f"{row.get('height')}x{row.get('width')}")

    whole = hashlib.sha256()
    pos = 0
    nxt = 0
    active: dict[str, bytearray] = {}
    try:
        with folder.open_read(tar, block_size=CHUNK_BYTES) as f:
            while pos <= marker["size"]:  # never more than the marker promises (+1 byte to see "longer")
                chunk = f.read(min(CHUNK_BYTES, marker["size"] + 1 - pos))
                if not chunk:
                    break
                whole.update(chunk)
                end = pos + len(chunk)
                while nxt < len(entries) and entries[nxt][1]["offset"] < end:
                    active[entries[nxt][0]] = bytearray()
                    nxt += 1
                for image_id in list(active):
                    e = marker["index"][image_id]
                    lo, hi = max(e["offset"], pos), min(e["offset"] + e["length"], end)
                    if hi > lo:
                        active[image_id] += chunk[lo - pos: hi - pos]
                    if e["offset"] + e["length"] <= end:
                        check(image_id, bytes(active.pop(image_id)))
                pos = end
    except FileNotFoundError:
        damaged(f"{tar}: missing (shard {k} is committed; its {len(marker['index'])} records are lost)")
        return
    except OSError as err:
        damaged(f"{tar}: cannot be read ({err})")
        return
    for image_id in list(active) + [i for i, _ in entries[nxt:]]:
        check(image_id, bytes(active.pop(image_id, b"")))
    if pos > marker["size"]:
        damaged(f"{tar}: longer than the {marker['size']} bytes its marker says (overwritten or not a file)")
    elif pos != marker["size"]:
        damaged(f"{tar}: {pos} bytes, its marker says {marker['size']} (truncated or overwritten)")
    elif whole.hexdigest() != marker["sha256"]:
        damaged(f"{tar}: sha256 does not match its marker (bytes changed)")

    try:
        with folder.open_read(tar, block_size=64 * 1024) as f:
            members, index_doc = read_tar_members(f)
    except ArchiveError as err:
        damaged(f"{tar}: {err}")
        return
    expected = {f"{i}{RECORD_EXT}": (e["offset"], e["length"]) for i, e in marker["index"].items()}
    for name, where in expected.items():
        if members.get(name) != where:
            damaged(f"{tar}: tar member {name!r} is {'missing' if name not in members else 'elsewhere'} "
                    f"(marker: offset {where[0]}, length {where[1]})")
    extra = sorted(set(members) - set(expected) - {INDEX_MEMBER})
    if extra:
        damaged(f"{tar}: tar members not in its marker: {', '.join(extra[:5])}")
    if index_doc is None:
        damaged(f"{tar}: no {INDEX_MEMBER}")
    elif _canon(index_doc) != _canon(tar_index_doc(k, marker["index"])):
        damaged(f"{tar}: {INDEX_MEMBER} disagrees with the marker")


def _canon(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True).encode()


def _verify_manifest(folder, markers: dict[int, dict[str, Any]], rep: VerifyReport) -> None:
    damaged = rep.damaged.append
    try:
        rows = read_manifest(folder)
    except ArchiveError as err:
        damaged(str(err))
        return
    if rows is None:
        if markers:
            rep.notes.append(f"{MANIFEST}: missing (rebuilt from the markers at the end of a run)")
        return
    truth = {r["id"]: order_row(r) for k in markers for r in markers[k]["rows"]}
    seen: set[str] = set()
    stray = []
    for row in rows:
        rid = row["id"]
        if rid in seen:
            damaged(f"{MANIFEST}: image {rid!r} has two rows")
            continue
        seen.add(rid)
        want = truth.get(rid)
        if want is None:
            stray.append(rid)
            continue
        diff = [f for f in sorted(set(row) | set(want)) if row.get(f) != want.get(f)]
        if diff:
            damaged(f"{MANIFEST}: row of {rid!r} disagrees with shard {want.get('shard')}'s marker ({', '.join(diff)})")
    if stray:
        damaged(f"{MANIFEST}: {len(stray)} rows name images in no committed shard (e.g. {', '.join(stray[:5])}; "
                "a marker is missing or the manifest belongs to another archive)")
    missing = set(truth) - seen
    if missing:
        rep.notes.append(f"{MANIFEST}: lacks {len(missing)} committed images (stale; rebuilt at the end of a run)")
