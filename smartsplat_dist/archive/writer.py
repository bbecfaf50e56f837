"""Writing an archive: run.json, staging, shard commits, the manifest (docs/design.md §6).

Commit protocol: ``stage`` writes ``staging/<id>.rec`` then ``staging/<id>.json`` (its row; the row's presence
means "staged"). ``commit_shard`` builds the tar from staged records, writes it (overwriting any half-written
one), writes the marker LAST and only if absent, then deletes the staging files. A shard exists once its marker
exists; resume = marker present → skip; all staged → commit; else fit. The manifest is rebuilt from markers.

Replacing a committed shard (``compress --retry-failed``) writes generation g+1 beside generation g: its tar,
then its marker (only if absent), and only then deletes g's marker and tar. The highest generation with a marker
is the shard, so a kill at any moment leaves the old or the new shard whole; files of a lower generation left
by an interrupted replacement are deleted by the next commit of that shard (:meth:`ArchiveWriter.cleanup`).
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Iterable

from .. import __version__
from ..errors import ArchiveError, RecordError
from ..io.storage import Folder
from .layout import (
    FORMAT_VERSION,
    MANIFEST,
    MARKER_FORMAT,
    RUN_FORMAT,
    RUN_JSON,
    SHARDS,
    STAGING,
    check_id,
    current_markers,
    dumps,
    listing_digest,
    loads,
    order_row,
    parse_shard_name,
    shard_marker_name,
    shard_tar_name,
    staged_record_name,
    staged_row_name,
    superseded_shard_files,
)
from .markers import as_folder, manifest_rows, read_markers, read_run_json, read_staged
from .records import check_record
from .shard import parse_marker, sha256_hex, write_shard_tar

#: Staged records are read (and held) at most this many bytes at a time while a shard tar is written.
READ_BATCH_BYTES = 64 * 2**20


class StagingError(ArchiveError):
    """Some images of a shard are not staged, or their staged record and row disagree (two attempts at the same
    image interleaved). ``image_ids``: the images to re-encode (``unstage`` them first)."""

    def __init__(self, message: str, image_ids: list[str]):
        super().__init__(message)
        self.image_ids = list(image_ids)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _code_version() -> str:
    try:
        return str(__version__)
    except ImportError:
        return "unknown"


# -- staging (usable from any process: only needs the folder) -----------------------------------------------------
def stage(folder: Folder, image_id: str, record: bytes, row: dict[str, Any]) -> dict[str, Any]:
    """Stage a finished image: write its record, then its row (status ok). Rewriting is harmless.

    ``row``: the image's stats (source, height, width, n_gaussians, psnr, ssim, seconds, ... extra keys kept);
    ``length``, ``sha256`` and (given height and width) ``real_cr = 3·H·W / length`` are set here.
    Returns the stored row."""
    check_id(image_id)
    record = bytes(record)
    if not record:
        raise ArchiveError(f"{image_id}: empty record")
    out = loads(dumps(dict(row)), f"row of {image_id}")
    out.update(id=image_id, status="ok", error=None, shard=None, offset=None, length=len(record),
               sha256=sha256_hex(record))
    h, w = out.get("height"), out.get("width")
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        out["real_cr"] = 3 * h * w / len(record)
    out = order_row(out)
    data = dumps(out)
    folder.write_bytes(staged_record_name(image_id), record)
    folder.write_bytes(staged_row_name(image_id), data)
    return out


def stage_failure(folder: Folder, image_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """Stage a failed image: its row with status "failed" and ``row["error"]`` (a reason string)."""
    check_id(image_id)
    out = loads(dumps(dict(row)), f"row of {image_id}")
    error = out.get("error")
    out.update(id=image_id, status="failed", error=str(error) if error else "unknown error",
               shard=None, offset=None, length=None, sha256=None)
    out = order_row(out)
    folder.write_bytes(staged_row_name(image_id), dumps(out))
    folder.delete(staged_record_name(image_id))
    return out


def unstage(folder: Folder, image_id: str) -> None:
    """Forget a staged image (row first, so a half-removed one is simply not staged)."""
    folder.delete(staged_row_name(image_id))
    folder.delete(staged_record_name(image_id))


def manifest_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(dumps(r) + b"\n" for r in rows)


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            p = f"{path}.{k}" if path else str(k)
            if k not in a:
                out.append(f"{p}: not in the archive's config, this run has {b[k]!r}")
            elif k not in b:
                out.append(f"{p}: archive has {a[k]!r}, not set in this run")
            else:
                out.extend(_diff(a[k], b[k], p))
        return out
    return [] if a == b else [f"{path or 'config'}: archive has {a!r}, this run has {b!r}"]


class ArchiveWriter:
    """Writes one archive. ``run_config``: the run's settings as a JSON-able dict (``EncodeConfig.to_dict()``
    plus shard size etc.); ``listing``: the sorted input URIs. ``open()`` must be called before committing.

    ``check_records``: check each record with the codec's ``read_meta`` at commit."""

    def __init__(
        self,
        folder: Folder | str,
        run_config: dict[str, Any],
        listing: list[str],
        *,
        storage_options: dict[str, Any] | None = None,
        check_records: bool = True,
    ):
        self.folder = as_folder(folder, storage_options)
        self.run_config = loads(dumps(run_config), "run config")
        self.listing = [str(u) for u in listing]
        self.check_records = check_records
        self.run: dict[str, Any] | None = None

    # -- run.json ---------------------------------------------------------------------------------------------
    def open(self) -> dict[str, Any]:
        """Create run.json, or check that the existing one has this run's config and input listing.

        ArchiveError naming every differing setting otherwise. Returns the run.json document."""
        doc = {
            "format": RUN_FORMAT, "version": FORMAT_VERSION, "code_version": _code_version(),
            "created_at": _now(), "listing_size": len(self.listing),
            "listing_digest": listing_digest(self.listing), "config": self.run_config,
        }
        if not self.folder.exists(RUN_JSON) and self.folder.write_if_absent(RUN_JSON, dumps(doc, indent=1)):
            self.run = doc
            return doc
        existing = read_run_json(self.folder)
        problems = _diff(existing.get("config"), self.run_config)
        if existing.get("listing_digest") != doc["listing_digest"]:
            problems.append(
                f"input listing: archive was made from {existing.get('listing_size')} images "
                f"(digest {str(existing.get('listing_digest'))[:12]}), this run has {len(self.listing)} "
                f"(digest {doc['listing_digest'][:12]})"
            )
        if problems:
            raise ArchiveError(
                f"{self.folder.url} was made with different settings; use a new archive or the same settings: "
                + "; ".join(problems)
            )
        self.run = existing
        return existing

    # -- staging ----------------------------------------------------------------------------------------------
    def stage(self, image_id: str, record: bytes, row: dict[str, Any]) -> dict[str, Any]:
        """See :func:`stage`."""
        return stage(self.folder, image_id, record, row)

    def stage_failure(self, image_id: str, row: dict[str, Any]) -> dict[str, Any]:
        """See :func:`stage_failure`."""
        return stage_failure(self.folder, image_id, row)

    def unstage(self, image_id: str) -> None:
        unstage(self.folder, image_id)

    def staged(self) -> dict[str, dict[str, Any]]:
        """id -> staged row (ok or failed), images staged but not yet in a committed shard included."""
        return read_staged(self.folder)

    def committed(self) -> dict[int, dict[str, Any]]:
        """shard index -> marker of every committed shard."""
        return read_markers(self.folder)

    # -- commit -----------------------------------------------------------------------------------------------
    def commit_shard(self, index: int, image_ids: list[str], generation: int = 0) -> dict[str, Any]:
        """Commit shard ``index`` holding ``image_ids`` (all staged, ok or failed); returns its marker.

        ``generation`` > 0 replaces the shard's current generation (which must be lower): the new tar and marker
        are written first, the older generations' files are deleted after.
        Idempotent: an existing marker with the same ids → no-op (leftover staging files are removed); a tar
        without a marker is overwritten. ArchiveError if an image is not staged, its staged record does not
        match its row (sha256/length) or fails the codec's header check: :class:`StagingError` (an ArchiveError)
        whose ``image_ids`` are the images to unstage and re-encode."""
        ids = [check_id(i) for i in image_ids]
        if not ids:
            raise ArchiveError(f"shard {index}: no images")
        if len(set(ids)) != len(ids):
            raise ArchiveError(f"shard {index}: an image id is given twice")
        tar_name, marker_name = shard_tar_name(index, generation), shard_marker_name(index, generation)
        if self.folder.exists(marker_name):
            marker = parse_marker(self.folder.read_bytes(marker_name), index, marker_name, generation)
            self._check_same_ids(index, marker, ids)
            self._drop_staging(ids)
            self.cleanup(index)
            return marker
        if generation:
            have = current_markers(self.folder.list(SHARDS, suffix=".json")).get(index)
            if have is not None and have[0] >= generation:
                raise ArchiveError(f"shard {index}: generation {have[0]} exists, cannot commit generation "
                                   f"{generation} over it")

        rows_data = self.folder.read_many([staged_row_name(i) for i in ids])
        missing = [i for i in ids if staged_row_name(i) not in rows_data]
        if missing:
            raise StagingError(f"shard {index}: {len(missing)} image(s) not staged: {', '.join(missing[:10])}", missing)
        rows = {}
        for i in ids:
            row = loads(rows_data[staged_row_name(i)], staged_row_name(i))
            if not isinstance(row, dict) or row.get("id") != i or row.get("status") not in ("ok", "failed"):
                raise StagingError(f"{staged_row_name(i)}: not a staged row of {i!r}", [i])
            rows[i] = row
        ok_ids = [i for i in ids if rows[i]["status"] == "ok"]
        with self.folder.writing_path(tar_name) as tmp:
            with open(tmp, "wb") as raw:
                entries, tar_size, tar_sha = write_shard_tar(index, self._checked_records(index, ok_ids, rows), raw)
        final_rows = []
        for i in ids:
            row = dict(rows[i])
            row["shard"] = index
            if i in entries:
                row["offset"], row["length"] = entries[i]["offset"], entries[i]["length"]
            final_rows.append(order_row(row))
        marker = {
            "format": MARKER_FORMAT, "version": FORMAT_VERSION, "shard": index, "generation": generation,
            "tar": tar_name,
            "size": tar_size, "sha256": tar_sha, "index": entries, "rows": final_rows,
            "committed_at": _now(),
        }
        marker = parse_marker(dumps(marker), index, marker_name, generation)  # never write one we would not accept
        if not self.folder.write_if_absent(marker_name, dumps(marker, indent=1)):
            existing = parse_marker(self.folder.read_bytes(marker_name), index, marker_name, generation)
            if existing["sha256"] != marker["sha256"]:
                raise ArchiveError(
                    f"shard {index} was committed concurrently with different contents; run `smartsplat verify`"
                )
            marker = existing
        self._drop_staging(ids)
        self.cleanup(index)
        return marker

    def cleanup(self, index: int | None = None) -> list[str]:
        """Delete superseded generations' files (of shard ``index``, or of all shards): each marker before its
        tar, so a half-done cleanup leaves at most a tar that verify reports as superseded. Returns the names."""
        gone = []
        for name in sorted(superseded_shard_files(self.folder.list(SHARDS)), key=lambda n: not n.endswith(".json")):
            parsed = parse_shard_name(name)
            if index is None or (parsed is not None and parsed[0] == index):
                self.folder.delete(name)
                gone.append(name)
        return gone

    def _checked_records(self, index: int, ok_ids: list[str], rows: dict[str, dict[str, Any]]):
        """Yield (id, record) of the staged records, checked against their rows (and the codec's header
        check), reading a batch of at most ``READ_BATCH_BYTES`` at a time (concurrent GETs on S3)."""
        batch: list[str] = []
        total = 0
        for pos, i in enumerate(ok_ids):
            batch.append(i)
            total += int(rows[i].get("length") or 0)
            if total < READ_BATCH_BYTES and pos + 1 < len(ok_ids):
                continue
            recs = self.folder.read_many([staged_record_name(j) for j in batch])
            for j in batch:
                data = recs.pop(staged_record_name(j), None)
                if data is None:
                    raise StagingError(f"shard {index}: staged record of {j!r} is missing ({staged_record_name(j)})",
                                       [j])
                self._check_record(index, j, data, rows[j])
                yield j, data
            batch, total = [], 0

    def _check_record(self, index: int, i: str, data: bytes, row: dict[str, Any]) -> None:
        if len(data) != row.get("length") or sha256_hex(data) != row.get("sha256"):
            raise StagingError(
                f"shard {index}: staged record of {i!r} does not match its staged row (rewritten by another "
                "attempt?); unstage and re-encode it", [i]
            )
        if not self.check_records:
            return
        try:
            meta = check_record(data)
        except RecordError as err:
            raise StagingError(f"shard {index}: staged record of {i!r} is malformed: {err}", [i]) from None
        hw = (meta.height, meta.width)
        if row.get("height") is not None and hw != (row.get("height"), row.get("width")):
            raise StagingError(f"shard {index}: record of {i!r} is {hw[0]}x{hw[1]}, its row says "
                               f"{row.get('height')}x{row.get('width')}", [i])

    def _check_same_ids(self, index: int, marker: dict[str, Any], ids: list[str]) -> None:
        have = [r["id"] for r in marker["rows"]]
        if set(have) != set(ids):
            raise ArchiveError(
                f"shard {index} is already committed with other images ({len(have)} images, e.g. "
                f"{', '.join(sorted(set(have) ^ set(ids))[:5])} differ): the shard plan changed"
            )

    def _drop_staging(self, ids: list[str]) -> None:
        present = set(self.folder.list(STAGING))
        for i in ids:
            for name in (staged_row_name(i), staged_record_name(i)):
                if name in present:
                    self.folder.delete(name)

    # -- manifest ---------------------------------------------------------------------------------------------
    def write_manifest(self, markers: dict[int, dict[str, Any]] | None = None) -> int:
        """Rewrite manifest.jsonl (atomically) from ``markers`` (default: read them all); returns its rows."""
        rows = manifest_rows(self.committed() if markers is None else markers)
        self.folder.write_bytes(MANIFEST, manifest_bytes(rows))
        return len(rows)
