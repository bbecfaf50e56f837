"""Reading an archive: ids, rows, and records by id with one ranged, sha256-checked read each."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from ..errors import ArchiveError
from ..io.storage import Folder
from .layout import MANIFEST, loads, order_row
from .markers import as_folder, manifest_rows, read_markers, read_run_json, read_staged
from .shard import check_member_header, member_header_span, sha256_hex


class MissingImageError(ArchiveError, KeyError):
    """No committed record with this id (unknown, not yet committed, or failed)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Location:
    """Where one record lies: ``tar`` (relative name), ``offset``, ``length``, ``sha256``, shard index."""

    image_id: str
    shard: int
    tar: str
    offset: int
    length: int
    sha256: str


def read_record(folder: Folder, loc: Location) -> bytes:
    """One ranged read of a record and the tar header before it: the header must name ``<id>.rec`` (so an
    index cannot point one id at another's member) and the data must match its sha256 (ArchiveError naming
    shard and id)."""
    span = member_header_span(loc.image_id)
    try:
        data = folder.read_range(loc.tar, max(0, loc.offset - span), loc.offset + loc.length)
    except FileNotFoundError:
        raise ArchiveError(
            f"shard {loc.shard} ({loc.tar}) is missing; record {loc.image_id!r} cannot be read"
        ) from None
    except OSError as err:
        raise ArchiveError(f"shard {loc.shard} ({loc.tar}): record {loc.image_id!r} cannot be read: {err}") from None
    head, data = data[: min(span, loc.offset)], data[min(span, loc.offset):]
    problem = check_member_header(head, loc.image_id, loc.length) if len(data) == loc.length else None
    if problem:
        raise ArchiveError(f"shard {loc.shard} ({loc.tar}): the index puts record {loc.image_id!r} at offset "
                           f"{loc.offset}, but {problem} (damaged or tampered marker)")
    if len(data) != loc.length:
        raise ArchiveError(
            f"shard {loc.shard} ({loc.tar}): record {loc.image_id!r} is truncated ({len(data)} of {loc.length} bytes)"
        )
    if sha256_hex(data) != loc.sha256:
        raise ArchiveError(f"shard {loc.shard} ({loc.tar}): record {loc.image_id!r} is damaged (sha256 mismatch)")
    return data


class Archive:
    """A committed archive, as of when it was opened (markers are read once, validated).

    ``run`` (run.json), ``run_config``, ``markers`` (shard index -> marker), ``folder``, ``url``, ``damaged``
    (a line per invalid marker, whose shard is left out)."""

    def __init__(self, folder: Folder):
        self.folder = folder
        self.url = folder.url
        self.run = read_run_json(folder)
        self.run_config: dict[str, Any] = self.run["config"]
        #: one line per damaged commit marker; its shard is left out, the rest of the archive stays readable
        self.damaged: list[str] = []
        self.markers = read_markers(folder, self.damaged)
        self._locations: dict[str, Location] = {}
        self._rows: dict[str, dict[str, Any]] = {}
        for k, marker in self.markers.items():
            for row in marker["rows"]:  # rows keep the shard plan's order (the index is a JSON object)
                image_id = row["id"]
                self._rows[image_id] = row
                e = marker["index"].get(image_id)
                if e is not None:
                    self._locations[image_id] = Location(image_id, k, marker["tar"], e["offset"], e["length"],
                                                         e["sha256"])

    def __len__(self) -> int:
        return len(self._locations)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._locations

    def ids(self) -> list[str]:
        """Ids of the committed, successfully encoded images, shard by shard."""
        return list(self._locations)

    def failed(self) -> dict[str, str]:
        """id -> error of the committed failed images."""
        return {i: r.get("error") or "" for i, r in self._rows.items() if r["status"] == "failed"}

    def location(self, image_id: str) -> Location:
        loc = self._locations.get(image_id)
        if loc is None:
            row = self._rows.get(image_id)
            if row is not None:
                raise MissingImageError(f"image {image_id!r} failed to encode: {row.get('error')}")
            raise MissingImageError(f"no image {image_id!r} in {self.url}")
        return loc

    def get(self, image_id: str) -> bytes:
        """The record of ``image_id``: one ranged read of its shard, sha256-verified."""
        return read_record(self.folder, self.location(image_id))

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        """(id, record) for every committed image; one read per record."""
        for image_id in self.ids():
            yield image_id, self.get(image_id)

    def row(self, image_id: str) -> dict[str, Any]:
        row = self._rows.get(image_id)
        if row is None:
            raise MissingImageError(f"no image {image_id!r} in {self.url}")
        return dict(row)

    def rows(self) -> list[dict[str, Any]]:
        """Manifest rows of every committed image (failed ones included), shard by shard. Built from the
        markers, which are authoritative (manifest.jsonl is their copy for other tools; it may lag a running
        job); identical to manifest.jsonl once the job wrote it."""
        return manifest_rows(self.markers)

    def manifest_file_rows(self) -> list[dict[str, Any]] | None:
        """The rows of manifest.jsonl as stored, or None if it does not exist."""
        return read_manifest(self.folder)

    def staged(self) -> dict[str, dict[str, Any]]:
        """Images staged but not yet committed: id -> row."""
        return {i: r for i, r in read_staged(self.folder).items() if i not in self._rows}


def read_manifest(folder: Folder) -> list[dict[str, Any]] | None:
    """Rows of ``manifest.jsonl`` (None if absent); ArchiveError on a malformed line."""
    try:
        data = folder.read_bytes(MANIFEST)
    except FileNotFoundError:
        return None
    rows = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        row = loads(line, f"{MANIFEST} line {n}")
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise ArchiveError(f"{MANIFEST} line {n}: not a manifest row")
        rows.append(order_row(row))
    return rows


def open_archive(url: str | Folder, storage_options: dict[str, Any] | None = None) -> Archive:
    """Open the archive at ``url`` (local folder or ``s3://`` prefix) for reading."""
    return Archive(as_folder(url, storage_options))
