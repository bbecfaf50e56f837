"""Shard tars and their commit markers.

A shard tar is a POSIX (ustar/pax) tar of ``<id>.rec`` members followed by ``__index__.json``; its bytes are
deterministic (fixed mtime, owner, mode, member order), so two committers of the same staged records write the
same tar. The marker (``shard-NNNNN.json``) says where each record lies and how to check it:

```
{"format": "smartsplat-shard", "version": 1, "shard": 42, "tar": "shards/shard-00042.tar",
 "size": <tar bytes>, "sha256": <tar sha256>,
 "index": {"<id>": {"offset": <data offset in the tar>, "length": <bytes>, "sha256": <record sha256>}, ...},
 "rows": [<manifest row of every image of the shard, failed ones included>], "committed_at": "<UTC ISO>"}
```
"""
from __future__ import annotations

import hashlib
import io
import tarfile
from typing import Any, Iterable

from ..errors import ArchiveError
from .layout import (
    FORMAT_VERSION, INDEX_MEMBER, MARKER_FORMAT, RECORD_EXT, STATUSES, check_id, dumps, loads, shard_tar_name,
)

_TAR_MTIME = 946684800  # 2000-01-01T00:00:00Z: fixed, so the tar bytes depend only on the records
_HEX = set("0123456789abcdef")
MAX_INDEX_BYTES = 256 * 2**20  # bound before reading an __index__.json from untrusted storage


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = _TAR_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


class _HashingWriter:
    """A write-only file object that forwards to ``raw`` and keeps the sha256 and size of what went through."""

    def __init__(self, raw):
        self.raw, self.size, self.hash = raw, 0, hashlib.sha256()

    def write(self, data) -> int:
        self.raw.write(data)
        self.hash.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.raw.flush()


def write_shard_tar(
    index: int, records: Iterable[tuple[str, bytes]], raw
) -> tuple[dict[str, dict[str, Any]], int, str]:
    """Write the shard tar of ``records`` ([(id, record bytes)], consumed one at a time, in order) followed
    by ``__index__.json`` to the binary file ``raw``. Returns (index ``{id: {"offset", "length", "sha256"}}``
    with offset = first data byte of the member in the tar, tar size, tar sha256)."""
    out = _HashingWriter(raw)
    entries: dict[str, dict[str, Any]] = {}
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for image_id, data in records:
            check_id(image_id)
            if image_id in entries:
                raise ArchiveError(f"shard {index}: image id {image_id!r} given twice")
            tar.addfile(_tarinfo(image_id + RECORD_EXT, len(data)), io.BytesIO(data))
            # tarfile leaves ``offset_data`` unset when writing: the data is the last run of padded blocks
            offset = tar.offset - -(-len(data) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            entries[image_id] = {"offset": offset, "length": len(data), "sha256": sha256_hex(data)}
        index_bytes = dumps(tar_index_doc(index, entries), indent=1)
        tar.addfile(_tarinfo(INDEX_MEMBER, len(index_bytes)), io.BytesIO(index_bytes))
    out.flush()
    return entries, out.size, out.hash.hexdigest()


def build_shard_tar(index: int, records: list[tuple[str, bytes]]) -> tuple[bytes, dict[str, dict[str, Any]]]:
    """In memory: (tar bytes, index) of :func:`write_shard_tar`."""
    buf = io.BytesIO()
    entries, _, _ = write_shard_tar(index, records, buf)
    return buf.getvalue(), entries


def tar_index_doc(index: int, entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The content of a shard's ``__index__.json``."""
    return {"format": MARKER_FORMAT + "-index", "version": FORMAT_VERSION, "shard": index, "index": entries}


def read_tar_members(source) -> tuple[dict[str, tuple[int, int]], dict[str, Any] | None]:
    """Parse a tar (bytes, or a seekable binary file: only headers and ``__index__.json`` are read):
    ({member name: (data offset, size)}, parsed ``__index__.json`` or None).

    Raises ArchiveError if it is not a readable tar."""
    fileobj = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    members: dict[str, tuple[int, int]] = {}
    index_doc = None
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as tar:
            for m in tar:
                if not m.isreg():
                    raise ArchiveError(f"member {m.name!r} is not a regular file")
                members[m.name] = (m.offset_data, m.size)
                if m.name == INDEX_MEMBER:
                    if m.size > MAX_INDEX_BYTES:
                        raise ArchiveError(f"{INDEX_MEMBER} is implausibly large ({m.size} bytes)")
                    f = tar.extractfile(m)
                    raw = f.read() if f is not None else b""
                    if len(raw) != m.size:
                        raise ArchiveError(f"{INDEX_MEMBER} is truncated")
                    index_doc = loads(raw, INDEX_MEMBER)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ArchiveError(f"not a readable tar ({err})") from None
    return members, index_doc


def _is_sha(v: Any) -> bool:
    return isinstance(v, str) and len(v) == 64 and set(v) <= _HEX


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def validate_marker(doc: Any, expected_index: int, where: str, generation: int = 0) -> dict[str, Any]:
    """Check a parsed marker's schema and safety; returns it. ArchiveError naming ``where`` and the problem.

    Ids must be safe (:func:`check_id`), every record must lie inside the tar, rows must have unique safe ids
    and a known status, and every committed record must have an ``ok`` row (and vice versa)."""

    def bad(msg: str) -> ArchiveError:
        return ArchiveError(f"{where}: invalid marker: {msg}")

    if not isinstance(doc, dict):
        raise bad("not a JSON object")
    if doc.get("format") != MARKER_FORMAT or doc.get("version") != FORMAT_VERSION:
        raise bad(f"unknown format/version {doc.get('format')!r}/{doc.get('version')!r}")
    if doc.get("shard") != expected_index or isinstance(doc.get("shard"), bool):
        raise bad(f"shard number {doc.get('shard')!r} does not match its name (shard {expected_index})")
    if doc.get("generation", 0) != generation or isinstance(doc.get("generation"), bool):
        raise bad(f"generation {doc.get('generation', 0)!r} does not match its name (generation {generation})")
    if doc.get("tar") != shard_tar_name(expected_index, generation):
        raise bad(f"tar name {doc.get('tar')!r} is not {shard_tar_name(expected_index, generation)!r}")
    size = doc.get("size")
    if not _is_count(size) or not _is_sha(doc.get("sha256")):
        raise bad("size or sha256 missing or malformed")
    index = doc.get("index")
    if not isinstance(index, dict):
        raise bad("index is not an object")
    for image_id, e in index.items():
        try:
            check_id(image_id)
        except ArchiveError as err:
            raise bad(str(err)) from None
        if not isinstance(e, dict) or not _is_count(e.get("offset")) or not _is_count(e.get("length")):
            raise bad(f"index entry of {image_id!r} lacks a valid offset/length")
        if not _is_sha(e.get("sha256")):
            raise bad(f"index entry of {image_id!r} lacks a valid sha256")
        if e["offset"] % 512 or e["offset"] + e["length"] > size:
            raise bad(f"record {image_id!r} at [{e['offset']}, +{e['length']}) is not inside the {size}-byte tar")
    rows = doc.get("rows")
    if not isinstance(rows, list):
        raise bad("rows is not a list")
    seen: set[str] = set()
    for row in rows:
        if not isinstance(row, dict):
            raise bad("a row is not an object")
        rid = row.get("id")
        try:
            check_id(rid)
        except ArchiveError as err:
            raise bad(str(err)) from None
        if rid in seen:
            raise bad(f"image {rid!r} has two rows")
        seen.add(rid)
        status = row.get("status")
        if status not in STATUSES:
            raise bad(f"row of {rid!r} has unknown status {status!r}")
        if (status == "ok") != (rid in index):
            raise bad(f"image {rid!r}: status {status!r} but {'in' if rid in index else 'not in'} the index")
        if status == "ok":
            e = index[rid]
            if (row.get("shard"), row.get("offset"), row.get("length")) != (expected_index, e["offset"], e["length"]):
                raise bad(f"row of {rid!r} disagrees with the index (shard/offset/length)")
    if set(index) - seen:
        raise bad(f"records without a row: {sorted(set(index) - seen)[:5]}")
    return doc


def parse_marker(data: bytes, expected_index: int, where: str, generation: int = 0) -> dict[str, Any]:
    """Parse and validate marker bytes (see :func:`validate_marker`)."""
    return validate_marker(loads(data, where), expected_index, where, generation)


def _pax_path_record(name: str) -> bytes:
    """The pax ``path`` record tarfile writes for ``name`` (``"%d path=%s\n"``, length counting itself)."""
    body = f" path={name}\n".encode("utf-8")
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:
        n += 1
    return str(n).encode() + body


def member_header_span(image_id: str) -> int:
    """Bytes of tar headers our writer puts before the data of ``<id>.rec``: one ustar block, plus a pax
    header (a block + its data) when the name is longer than ustar's 100 bytes or not ASCII."""
    name = image_id + RECORD_EXT
    if name.isascii() and len(name) <= 100:
        return tarfile.BLOCKSIZE
    data = len(_pax_path_record(name))
    return tarfile.BLOCKSIZE * (2 + -(-data // tarfile.BLOCKSIZE))


def check_member_header(head: bytes, image_id: str, length: int) -> str | None:
    """None if ``head`` (the :func:`member_header_span` bytes before a record's offset) is the tar header of a
    regular member named ``<id>.rec`` of ``length`` bytes; else what is wrong. This binds an index entry to
    the member it points at: a marker whose entries were swapped names the wrong member."""
    name = image_id + RECORD_EXT
    bs = tarfile.BLOCKSIZE
    if len(head) != member_header_span(image_id):
        return "no tar header before it"
    try:
        info = tarfile.TarInfo.frombuf(head[-bs:], "utf-8", "surrogateescape")
        found = info.name
        if len(head) > bs:
            pax = tarfile.TarInfo.frombuf(head[:bs], "utf-8", "surrogateescape")
            if pax.type != tarfile.XHDTYPE:
                return "no pax header before its long name"
            record = _pax_path_record(name)
            found = name if head[bs: bs + len(record)] == record else f"(pax path other than {name!r})"
    except tarfile.TarError as err:
        return f"no valid tar header before it ({err})"
    if not info.isreg() or found != name or info.size != length:
        return f"the tar member there is {found!r} ({info.size} bytes), not {name!r} ({length} bytes)"
    return None
